"""Does watching a job slow it down? A job's images/s with a browser on the live Train page, as a share
of the same job unwatched; prints each pair's ratio and the median, asserts nothing.

    python benchmarks/bench_live.py            # dr-cnn, 1 epoch on 42,000 rows, 3 pairs
    python benchmarks/bench_live.py --quick    # 6,000 rows, 1 pair: a smoke run
    python benchmarks/bench_live.py --browser-nice 19   # Chromium at the lowest priority

One `streamlit run Home.py` serves the whole run (private models, data, cache and signing key).
It is warmed up first: the Train page opened once and closed, and the time-estimate probe that
page starts is waited for, so neither a first script run nor a probe falls into a measured
window. Then, for each pair, the same job (same architecture, data, epochs, seed) is started
twice with `core.jobs.start` (what the Train page's Start button calls: a `python -m core train
--run` process): once with no browser page open, once with a Chromium page open on Train from
start to end, polling and redrawing the live chart every second. The order alternates from pair
to pair so that a drift in the machine's load does not favour one side.

For each job it prints:
- images/s as the job measured it in `progress.json` (training steps since the first batch: the
  speed the page shows), from its last report before the epoch's end; and `history.csv`'s
  per-epoch images/s (the whole epoch, graph tracing and validation included);
- CPU seconds over the job's window (start to end) of the streamlit server process and of this
  script's Chromium processes (from /proc/<pid>/stat; other people's browsers are not counted),
  and of the job process itself.
In production the browser runs on the visitor's computer, not beside the job: --browser-nice 19
starts Chromium at the lowest priority, so that it takes little CPU from the job and the server.
Target: watched / unwatched images/s >= 90% (median of the pairs; a pair whose watched page never
showed the live chart is reported and left out).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import benchkit  # noqa: E402

TARGET_SHARE = 0.90
CHART = '.st-key-train_live_curves:not([data-stale="true"])'


def run_job(name: str, args: argparse.Namespace, ref, server: benchkit.Server, browser, *,
            watched: bool) -> dict:
    """Start one job, watch it or not, wait for its end; what it measured and what it cost."""
    from core import jobs, runs, status
    from core.training import TrainConfig

    load = benchkit.loadavg().split()[0]
    config = TrainConfig(arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, seed=0, name=name)
    server_cpu0 = server.cpu_seconds()
    browser_pids = benchkit.chromium_pids()
    browser_cpu0 = benchkit.cpu_snapshot(browser_pids)
    t0 = time.perf_counter()
    jobs.start(config, ref, owner="bench_live")
    page = None
    if watched:
        page = benchkit.new_page(browser)
        page.goto(f"{server.url}/Train")
    progress_file = Path(os.environ["DRS_MODELS_DIR"]) / name / runs.PROGRESS_FILE
    last_mid: dict = {}
    job_cpu, job_pid, chart_seen, view = 0.0, None, False, None
    next_look = 0.0
    while time.perf_counter() - t0 < 7200:
        with contextlib.suppress(OSError, ValueError):
            p = json.loads(progress_file.read_text())
            if p.get("images_per_s") and p.get("progress", 1.0) < 1.0:  # since the first batch
                last_mid = p
        view = runs.read_run(name)
        launched = view.meta.get(jobs.LAUNCH_KEY) or {}
        if launched.get("pid"):
            job_pid = launched["pid"]
            job_cpu = max(job_cpu, benchkit.cpu_seconds(job_pid))
        if page is not None and time.perf_counter() > next_look:
            chart_seen = chart_seen or page.locator(CHART).count() > 0
            next_look = time.perf_counter() + 5
        if view.status in status.FINISHED:
            break
        time.sleep(0.25)
    wall = time.perf_counter() - t0
    server_cpu = server.cpu_seconds() - server_cpu0
    browser_cpu = benchkit.cpu_since(browser_cpu0, benchkit.chromium_pids())
    problem = ""
    if page is not None:
        chart_seen = chart_seen or page.locator(CHART).count() > 0
        if not chart_seen:  # say what the page showed instead
            problem = (f"; the page ({page.url}) shows: errors {benchkit.shown_errors(page)[:200]!r}, "
                       f"text {page.inner_text('body')[:200]!r}")
        page.context.close()
    history = view.history if view is not None else []
    return {
        "watched": watched, "status": view.status if view else "?", "wall": wall, "load": load,
        "ips": last_mid.get("images_per_s"),
        "epoch_ips": history[-1].get("images_per_s") if history else None,
        "server_cpu": server_cpu, "browser_cpu": browser_cpu, "job_cpu": job_cpu, "chart_seen": chart_seen,
        "problem": problem,
    }


def show(r: dict) -> None:
    who = "watched  " if r["watched"] else "unwatched"
    ips = f"{r['ips']:7.0f}" if r["ips"] else "      ?"
    epoch = f"{r['epoch_ips']:7.0f}" if r["epoch_ips"] else "      ?"
    chart = ("; live chart seen" if r["chart_seen"] else "; live chart NOT seen") if r["watched"] else ""
    print(f"  {who}: {ips} images/s (progress.json), {epoch} images/s (history, whole epoch); "
          f"{r['wall']:5.0f} s; CPU s: server {r['server_cpu']:5.1f}, browser {r['browser_cpu']:5.1f}, "
          f"job {r['job_cpu']:6.1f}; {r['status']}; load {r['load']}{chart}{r['problem']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6,000 rows and one pair")
    parser.add_argument("--rows", type=int, default=None, help="training rows (default 42,000)")
    parser.add_argument("--pairs", type=int, default=None, help="watched/unwatched pairs (default 3)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--arch", default="dr-cnn")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the architecture's")
    parser.add_argument("--browser-nice", type=int, default=0,
                        help="run Chromium at this niceness (19: about as if it ran on another machine)")
    args = parser.parse_args()
    rows = args.rows or (6_000 if args.quick else benchkit.KAGGLE_TRAIN)
    pairs = args.pairs or (1 if args.quick else 3)
    benchkit.cleanup_on_exit()

    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        base = Path(tmp)
        env = benchkit.private_env(base, models=False)
        from core import data, jobs

        path, what = benchkit.kaggle_train_csv(base / "data" / "train.csv", rows)
        ds = data.load_csv(path, expect_labels=True)  # also fills the parse cache the jobs read
        ref = jobs.DataRef.of(ds, path)
        print(f"data: {rows:,} rows ({what}); {args.arch}, {args.epochs} epoch(s), seed 0, {pairs} pair(s); "
              f"Chromium niceness {args.browser_nice}")
        print(f"start: {benchkit.machine_line()}")
        results: list[tuple[dict, dict]] = []
        with (benchkit.Server(env, base / "server.log") as server,
              benchkit.chromium(nice=args.browser_nice) as browser):
            benchkit.warm_up_train(server, browser)
            for i in range(pairs):
                order = (False, True) if i % 2 == 0 else (True, False)
                print(f"pair {i + 1}:")
                done = {}
                for watched in order:
                    name = f"live-{i + 1}-{'w' if watched else 'u'}"
                    r = run_job(name, args, ref, server, browser, watched=watched)
                    show(r)
                    done[watched] = r
                results.append((done[True], done[False]))
    print(f"end: {benchkit.machine_line()}")
    shares = []
    for i, (w, u) in enumerate(results, 1):
        if not w["chart_seen"]:
            print(f"pair {i}: left out: the watched page never showed the live chart")
        elif w["ips"] and u["ips"]:
            shares.append(w["ips"] / u["ips"])
            epoch = f"{w['epoch_ips'] / u['epoch_ips']:.1%}" if w["epoch_ips"] and u["epoch_ips"] else "?"
            print(f"pair {i}: watched / unwatched images/s = {shares[-1]:.1%} "
                  f"(whole-epoch figures: {epoch}); "
                  f"the watching cost {w['server_cpu'] - u['server_cpu']:+.1f} s of server CPU and "
                  f"{w['browser_cpu']:.1f} s of browser CPU over {w['wall']:.0f} s")
    if shares:
        median = statistics.median(shares)
        verdict = "met" if median >= TARGET_SHARE else "MISSED"
        print(f"median watched / unwatched: {median:.1%} (target >= {TARGET_SHARE:.0%}: {verdict})")


if __name__ == "__main__":
    main()
