"""Does the Train page slow down with many saved runs? Time to its runs table with 50 runs vs 3 runs,
in a real Chromium; prints every page load, the medians and their ratio, asserts nothing.

    python benchmarks/bench_runs.py                 # 3 vs 50 runs, 7 page loads of each
    python benchmarks/bench_runs.py --repeats 11    # more loads
    python benchmarks/bench_runs.py --quick         # 3 vs 12 runs, 2 loads of each: a smoke run

Two private models folders are made, one per count: the shipped `models/default-cnn` copied as one
run, plus count - 1 saved runs written the way a job process writes them: `core.jobs.enqueue`
records the run (meta.json, queued), `core.job_process.Run` marks it running, records the split
(`core.training.arrays` on the committed sample, what the shipped model trained on), the best epoch
and the history (`Run.epochs_done`), the live view (`progress.json`, from `core.callbacks.
LiveProgress` fed one batch at a time with per-batch figures around each epoch's) and the end
(`Run.finish`, done). Each run's history is the shipped model's first 30 epochs adjusted (noise on
loss and accuracy, its own learning rate, timings for its batch size), its model files are copies of
the shipped model's (model.keras, its serving copy, train_hashes.npy: the Train page never loads
them), its settings vary (seed, learning rate, batch size, augmentation) and its dates are spread
over the weeks before; the folders are made in a child process (the callbacks import Keras; this
one does not). Both folders are checked to be listed by `core.runs.list_runs` as `count` done runs
without a problem, and `list_runs` itself is timed on each (what the page reads on every run of its
script). The smaller folder holds the shipped model and the newest runs of the larger one (two of
them for 3 runs), so both pages show the same run in their Progress section.

One `streamlit run Home.py` per folder (127.0.0.1, shared private data, cache and signing key),
both started before any timing. Each is warmed once: its Train page opened and run to the end, and
the time-estimate probe that page starts waited for. Then page loads alternate between the two
servers, the first of each pair alternating too (few, many; many, few; ...), so a drift in the
machine's load falls on both. Each load is a fresh browser context (a new Streamlit session, as a
new visitor): the time from `page.goto(<server>/Train)` to the runs section drawn: the runs table
(the page's one `st.dataframe`), its caption "N of N runs" (all N rows sent) and the overlay's run
picker below it, all visible. Also printed: the time until the page's script has finished
(everything drawn, the classic demo's button last). Target: the median with 50 runs at most 1.5x
the median with 3. The machine is shared: the load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import benchkit  # noqa: E402

TARGET_RATIO = 1.5
SHIPPED = "default-cnn"
EPOCHS = 30
MODEL_FILES = ("model.keras", "model.tflite", "model.tflite.json", "train_hashes.npy")
TABLE = '[data-testid="stMain"] [data-testid="stDataFrame"]'  # the page's only table (no st-key class)
OVERLAY = '.st-key-train_runs_overlay [data-testid="stMultiSelect"]'
DAY = 86_400


# --------------------------------------------------------------------------- the saved runs


def _history(template: list[dict], rng, *, lr: float, n_train: int, batch: int) -> list[dict]:
    """The shipped model's first EPOCHS epochs, as a run with these settings could have written them."""
    rows, elapsed = [], 0.0
    speed = 1.0 + 0.25 * math.log2(batch / 128)  # bigger batches: more images/s on a CPU
    lr_scale = lr / 0.003
    for t in template[:EPOCHS]:
        jitter = float(rng.normal(1.0, 0.03))
        ips = float(t["images_per_s"]) * speed * float(rng.uniform(0.9, 1.1))
        took = n_train / ips
        elapsed += took + 0.4  # validation and the checkpoint, outside the epoch's images/s
        rows.append({
            "epoch": len(rows) + 1,
            "loss": float(t["loss"]) * jitter,
            "accuracy": min(0.9999, float(t["accuracy"]) * float(rng.normal(1.0, 0.002))),
            "val_loss": float(t["val_loss"]) * float(rng.normal(1.0, 0.05)),
            "val_accuracy": min(0.9999, float(t["val_accuracy"]) * float(rng.normal(1.0, 0.002))),
            "learning_rate": float(t["learning_rate"]) * lr_scale,
            "time_s": round(took, 3),
            "elapsed_s": round(elapsed, 3),
            "images_per_s": round(n_train / took, 1),
        })
    return rows


class _Clock:
    """The time as the simulated job sees it (seconds of training so far)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_runs(count: int) -> None:
    """Write `count` saved runs into `$DRS_MODELS_DIR` beside the shipped model, as job processes
    write them (see the module's docstring). Runs in a child process: it imports Keras."""
    import numpy as np

    from core import callbacks, data, job_process, jobs, paths, registry, status
    from core.training import TrainConfig, arrays

    shipped = registry.read_meta(SHIPPED)
    template = registry.read_history(SHIPPED)
    sample_path = paths.sample_dir() / "train.csv.gz"
    sample = data.load_csv(sample_path, expect_labels=True, source_kind=data.SOURCE_SAMPLE)
    ref = jobs.DataRef.of(sample, sample_path)
    owners = ["cli", "visitor-7f3a", "visitor-c21e", "visitor-09bd"]
    now = time.time()
    for i in range(1, count + 1):
        rng = np.random.default_rng(i)
        created = now - (count + 1 - i) * 0.7 * DAY  # oldest first, the newest about a day ago
        config = TrainConfig(
            arch="dr-cnn", epochs=EPOCHS, batch_size=int(rng.choice([64, 128, 256])),
            learning_rate=float(rng.choice([0.001, 0.002, 0.003, 0.005])), augment=bool(rng.random() < 0.8),
            seed=i, name=f"dr-cnn-{time.strftime('%Y%m%d-%H%M%S', time.localtime(created))}",
        ).validate()
        name = jobs.enqueue(config, ref, owner=owners[i % len(owners)])
        run = job_process.Run(name)
        run.save_meta(status=status.RUNNING, started_at=registry.timestamp())
        settings = run.meta["params"]
        split = arrays(sample, settings)
        run.meta["data"].update(n_train=len(split.x_train), split=split.split)
        run.save_meta(param_count=int(shipped["param_count"]))
        batch, n_train = int(settings["batch_size"]), len(split.x_train)
        steps = math.ceil(n_train / batch)
        rows = _history(template, rng, lr=float(settings["learning_rate"]), n_train=n_train, batch=batch)

        clock = _Clock()
        views: list[dict] = []
        live = callbacks.LiveProgress(views.append, steps_per_epoch=steps, epochs=EPOCHS, batch_size=batch,
                                      clock=clock)
        for epoch, row in enumerate(rows):
            live.on_epoch_begin(epoch)
            for b in range(steps):
                clock.now += row["time_s"] / steps
                share = b / steps  # per-batch figures drift towards the epoch's own, with noise
                loss = row["loss"] * (1.3 - 0.3 * share) * float(rng.normal(1.0, 0.08))
                acc = min(1.0, row["accuracy"] * (0.98 + 0.02 * share) * float(rng.normal(1.0, 0.01)))
                live.on_train_batch_end(b, {"loss": loss, "accuracy": acc})
            live.on_epoch_end(epoch)
            clock.now += 0.4
        folder = registry.model_dir(name)
        for file in MODEL_FILES:  # what BestCheckpoint, the export and save_train_hashes leave
            shutil.copy2(registry.model_dir(SHIPPED) / file, folder / file)
        best = int(np.argmax([r["val_accuracy"] for r in rows])) + 1
        run.t0 = time.monotonic() - rows[-1]["elapsed_s"]  # so training_time_s is the run's own
        run.epochs_done(rows, lambda best=best: best)
        run.progress({**views[-1], "learning_rate": rows[-1]["learning_rate"]})  # a live view's last
        run.finish(status.DONE)
        meta = registry.read_meta(name)  # dates as if it ran then
        stamp = "%Y-%m-%dT%H:%M:%S%z"
        meta.update(created_at=time.strftime(stamp, time.localtime(created)),
                    started_at=time.strftime(stamp, time.localtime(created + 5)),
                    ended_at=time.strftime(stamp, time.localtime(created + 5 + rows[-1]["elapsed_s"])))
        registry.write_meta(name, meta)


def models_folders(base: Path, few: int, many: int, env: dict) -> tuple[Path, Path]:
    """The two models folders (see the module's docstring), checked through `core.runs.list_runs`."""
    many_dir, few_dir = base / f"models-{many}", base / f"models-{few}"
    many_dir.mkdir()
    shutil.copytree(ROOT / "models" / SHIPPED, many_dir / SHIPPED)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--make-runs", str(many - 1)], cwd=ROOT, check=True,
                   env=dict(env, DRS_MODELS_DIR=str(many_dir)))
    made = time.perf_counter() - t0
    from core import runs

    def listed(folder: Path) -> list:
        os.environ["DRS_MODELS_DIR"] = str(folder)
        return runs.list_runs()

    newest = [v.name for v in listed(many_dir) if v.name != SHIPPED][: few - 1]
    few_dir.mkdir()
    for name in [SHIPPED, *newest]:
        shutil.copytree(many_dir / name, few_dir / name)
    for folder, count in ((few_dir, few), (many_dir, many)):
        views = listed(folder)
        wrong = [f"{v.name}: {v.status} {v.problems}" for v in views if v.status != "done" or v.problems]
        if len(views) != count or wrong:
            raise SystemExit(f"{folder}: list_runs sees {len(views)} runs, expected {count} done; "
                             f"{wrong[:3]}")
    reads = {}
    for folder, count in ((few_dir, few), (many_dir, many)):
        listed(folder)  # the files in the OS cache, as on a server that has shown them
        reads[count] = statistics.median(_ms(lambda f=folder: listed(f)) for _ in range(15))
    sizes = sum(f.stat().st_size for f in many_dir.glob("*/*") if f.suffix in (".json", ".csv"))
    print(f"runs: {many - 1} made in {made:.1f} s (a child process, Keras imported); list_runs sees "
          f"{few} and {many} done runs, no problem; meta/history/progress files of the {many}: "
          f"{sizes / 1024:.0f} KB")
    print(f"core.runs.list_runs() in this process (every run's meta, history and progress read), median of "
          f"15: {few} runs {reads[few]:.1f} ms, {many} runs {reads[many]:.1f} ms")
    return few_dir, many_dir


def _ms(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


# --------------------------------------------------------------------------- the page


def load_once(server: benchkit.Server, browser, count: int, timeout_ms: float) -> tuple[float, float]:
    """One visit of Train in a new session: seconds to the runs table, and to the script's end."""
    page = benchkit.new_page(browser, timeout_ms)
    try:
        caption = page.get_by_text(re.compile(rf"^{count} of {count} runs\."))
        t0 = time.perf_counter()
        page.goto(f"{server.url}/Train")
        for shown in (page.locator(TABLE), caption, page.locator(OVERLAY)):
            shown.first.wait_for(state="visible")
        table_s = time.perf_counter() - t0
        page.wait_for_function(benchkit.IDLE)
        idle_s = time.perf_counter() - t0
        tables, errors = page.locator(TABLE).count(), benchkit.shown_errors(page)
        if tables != 1 or errors:
            raise SystemExit(f"{server.url}/Train: {tables} tables (expected 1); errors: {errors[:300]!r}")
    finally:
        page.context.close()
    return table_s, idle_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 vs 12 runs, 2 loads of each")
    parser.add_argument("--many", type=int, default=None, help="runs in the larger folder (default 50)")
    parser.add_argument("--few", type=int, default=3, help="runs in the smaller folder (default 3)")
    parser.add_argument("--repeats", type=int, default=None, help="page loads of each (default 7)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between two page loads")
    parser.add_argument("--make-runs", type=int, help=argparse.SUPPRESS)  # the child that writes runs
    args = parser.parse_args()
    if args.make_runs is not None:
        make_runs(args.make_runs)
        return
    many = args.many or (12 if args.quick else 50)
    repeats = args.repeats or (2 if args.quick else 7)
    few = args.few
    if not 3 <= few < many:
        raise SystemExit("--few must be at least 3 (the shipped model and two runs) and below --many")
    benchkit.cleanup_on_exit()
    print(f"start: {benchkit.machine_line()}", flush=True)

    times: dict[int, list[tuple[float, float]]] = {few: [], many: []}
    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
        base = Path(tmp)
        env = benchkit.private_env(base, models=False)
        few_dir, many_dir = models_folders(base, few, many, env)
        with (benchkit.Server(dict(env, DRS_MODELS_DIR=str(few_dir)), base / "server-few.log") as s_few,
              benchkit.Server(dict(env, DRS_MODELS_DIR=str(many_dir)), base / "server-many.log") as s_many,
              benchkit.chromium() as browser):
            servers = {few: s_few, many: s_many}
            for count, server in servers.items():
                t0 = time.perf_counter()
                benchkit.warm_up_train(server, browser)
                print(f"server with {count} runs: started in {server.startup_s:.1f} s, warmed in "
                      f"{time.perf_counter() - t0:.1f} s ({server.url})", flush=True)
            for r in range(repeats):
                order = (few, many) if r % 2 == 0 else (many, few)
                for count in order:
                    time.sleep(args.pause)
                    table_s, idle_s = load_once(servers[count], browser, count, timeout_ms=120_000)
                    times[count].append((table_s, idle_s))
                    print(f"  load {r + 1}/{repeats}, {count:3d} runs: runs table shown {table_s:6.2f} s, "
                          f"script ended {idle_s:6.2f} s (load {benchkit.loadavg().split()[0]})", flush=True)
    print(f"end: {benchkit.machine_line()}")
    medians = {}
    for count in (few, many):
        tables = [t for t, _ in times[count]]
        ends = [e for _, e in times[count]]
        medians[count] = (statistics.median(tables), statistics.median(ends))
        print(f"{count:3d} runs: runs table shown, median {medians[count][0]:.2f} s "
              f"(min {min(tables):.2f}, max {max(tables):.2f}, n={len(tables)}); "
              f"script ended, median {medians[count][1]:.2f} s")
    ratio = medians[many][0] / medians[few][0]
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    ended = medians[many][1] / medians[few][1]
    print(f"ratio {many}/{few} runs, runs table shown: {ratio:.2f}x "
          f"(target <= {TARGET_RATIO:g}x: {verdict}); script ended: {ended:.2f}x")


if __name__ == "__main__":
    main()
