"""Memory of the Streamlit server with Kaggle-sized data and every page used, and around a training job.

    python benchmarks/bench_memory.py            # the five pages, then a 1-epoch dr-cnn job from Train
    python benchmarks/bench_memory.py --quick    # the same, the job a 1-epoch mlp (seconds, not minutes)
    python benchmarks/bench_memory.py --no-job   # the five pages only
    python benchmarks/bench_memory.py --job-only # Home, then the job (on a server that did nothing else)
    python benchmarks/bench_memory.py --no-job --server-env MALLOC_ARENA_MAX=2   # try a setting

Writes a 42,000-row train.csv and a 28,000-row test.csv (Kaggle's sizes) into a private data
folder: the training rows are 42,000 distinct MNIST digits the shipped model never trained on
(rows 10,001-42,000 of the shared 42k file and the first 10,000 of the 18k holdout), so Evaluate
has all 42,000 to predict; the test rows are the rest of the holdout and the sample's 1,000 test
digits, tiled to 28,000, none of them in train.csv or seen by the model, so Submit predicts them
all. (Without the shared files, the sample's test digits are tiled for both.) Then it starts
`streamlit run Home.py` on that folder with a private copy of `models/`, cache and signing key,
and drives Chromium through Home, Explore (every tab: statistics, PCA, t-SNE, quality checks),
Draw (one digit drawn with the mouse), Evaluate (42,000 digits predicted, every tab) and Submit
(28,000 digits predicted); it prints the server's resident memory after each step (VmRSS, and
the peak VmHWM, from /proc/<pid>/status). Target: peak <= 350 MB.

Then, unless --no-job, it opens Train, starts a job there (architecture, epochs and name typed in
the page, the Start button clicked), reads the server's memory while the job runs (the page
polls its files and redraws the live chart every second), and again once the job has ended and
the page has shown its result; both readings are taken once the server's memory has settled (two
readings a second apart within 1 MB, at most 20 s). Target: after - before at most 30 MB (memory
given back counts as met). The job runs in its own process; it, and every other process started
here, is ended when the script ends.

--server-env KEY=VALUE (repeatable) starts the server with that environment variable too: a way
to try allocator settings (MALLOC_ARENA_MAX, ARROW_DEFAULT_MEMORY_POOL, ...) without changing code.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import benchkit  # noqa: E402

TARGET_MB = 350
TARGET_JOB_DELTA_MB = 30
READING = '[aria-label="predicted digit"]'
EXPLORE_TABS = ("Samples", "Mean & spread", "Pixels", "Train vs test", "2-D map", "Quality")
EVALUATE_TABS = ("Per digit", "Mistakes", "Calibration", "Training history", "Compare models")
SEVEN = [[(75, 65), (205, 65)], [(205, 65), (170, 130), (135, 225)]]


def write_data(folder: Path) -> str:
    """train.csv (42,000 labelled digits) and test.csv (28,000), none seen by the shipped model."""
    kit = benchkit
    if kit.TRAIN_42K.is_file() and kit.HOLDOUT_18K.is_file():
        header, rows42 = kit.csv_lines(kit.TRAIN_42K)
        _, held = kit.csv_lines(kit.HOLDOUT_18K)
        test_header, sample_test = kit.csv_lines(kit.SAMPLE / "test.csv.gz")
        kit.write_rows(folder / "train.csv", header, rows42[10_000:] + held[:10_000], kit.KAGGLE_TRAIN)
        unlabelled = [line.split(b",", 1)[1] for line in held[10_000:]] + sample_test
        kit.write_rows(folder / "test.csv", test_header, unlabelled, kit.KAGGLE_TEST)
        return (f"train.csv: rows 10,001-42,000 of {kit.TRAIN_42K.name} + first 10,000 of "
                f"{kit.HOLDOUT_18K.name}; test.csv: the other 8,000 of the holdout + the sample's 1,000 "
                "test digits, tiled")
    from core import data

    header, sample_test = kit.csv_lines(kit.SAMPLE / "test.csv.gz")
    answers = data.sample_answers()
    labelled = [b"%d," % label + line for label, line in zip(answers, sample_test, strict=True)]
    kit.write_rows(folder / "train.csv", b"label," + header, labelled, kit.KAGGLE_TRAIN)
    kit.write_rows(folder / "test.csv", header, sample_test, kit.KAGGLE_TEST)
    return "the sample's 1,000 test digits (labelled with its answers) tiled into both files"


def settled_rss(server: benchkit.Server, max_s: float = 20) -> float:
    """The server's RSS once two readings a second apart differ by at most 1 MB (or after `max_s`)."""
    last, deadline = server.memory_mb()[0], time.time() + max_s
    while time.time() < deadline:
        time.sleep(1)
        now = server.memory_mb()[0]
        if abs(now - last) <= 1:
            return now
        last = now
    return last


class Recorder:
    """Prints and keeps the server's memory after each step."""

    def __init__(self, server: benchkit.Server):
        self.server, self.rows, self.t0 = server, [], time.time()

    def __call__(self, step: str, page=None) -> tuple[float, float]:
        errors = benchkit.shown_errors(page) if page is not None else ""
        if errors:
            step += f" [the page shows an error: {errors[:200]}]"
        rss, hwm = self.server.memory_mb()
        self.rows.append((step, rss, hwm))
        print(f"{step:<58} RSS {rss:6.0f} MB   peak {hwm:6.0f} MB   ({time.time() - self.t0:5.0f} s)",
              flush=True)
        return rss, hwm


def draw(page, strokes) -> None:
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for()
    box = canvas.bounding_box()
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
        page.mouse.up()
        page.wait_for_timeout(300)


def visit_pages(page, url: str, record: Recorder) -> None:
    page.goto(url)
    benchkit.wait_idle(page)
    record("Home (train and test loaded)", page)

    page.goto(f"{url}/Explore")
    benchkit.wait_idle(page)
    for tab in EXPLORE_TABS:
        page.get_by_role("tab", name=tab).click()
        benchkit.wait_idle(page, network=False)
    benchkit.wait_idle(page)
    record("Explore (stats, PCA, t-SNE, quality checks)", page)

    page.goto(f"{url}/Draw")
    benchkit.wait_idle(page)
    draw(page, SEVEN)
    page.locator(READING).wait_for()
    benchkit.wait_idle(page)
    record(f"Draw (model loaded, a drawn 7 read as {page.locator(READING).inner_text().strip()})", page)

    page.goto(f"{url}/Evaluate")
    page.locator('[data-testid="stMetric"]').filter(has_text="Digits evaluated").wait_for()
    benchkit.wait_idle(page)
    evaluated = page.locator('[data-testid="stMetric"]').filter(has_text="Digits evaluated").inner_text()
    for tab in EVALUATE_TABS:
        page.get_by_role("tab", name=tab).click()
        benchkit.wait_idle(page, network=False)
    benchkit.wait_idle(page)
    record(f"Evaluate ({' '.join(evaluated.split())}, every tab)", page)

    page.goto(f"{url}/Submit")
    benchkit.wait_idle(page)
    page.get_by_role("button", name="Predict the test set").click()
    page.get_by_role("button", name="Download submission.csv").wait_for()
    benchkit.wait_idle(page)
    record(f"Submit ({benchkit.KAGGLE_TEST:,} test digits predicted)", page)


def run_job(page, url: str, record: Recorder, server: benchkit.Server, arch: str, epochs: int) -> float:
    """Start a job from the Train page, follow it to its end; returns after - before (MB)."""
    from core import runs, status

    page.goto(f"{url}/Train")
    benchkit.wait_idle(page, network=False)
    if arch != "dr-cnn":
        page.click(".st-key-train_arch")
        page.get_by_role("option", name=arch, exact=True).click()
        benchkit.wait_idle(page, network=False)
    for key, text in (("train_epochs", str(epochs)), ("train_name", "bench-job")):
        page.fill(f".st-key-{key} input", text)
        page.keyboard.press("Enter")
        benchkit.wait_idle(page, network=False)
    settled_rss(server)
    before, _ = record(f"Train, before the job ({arch}, {epochs} epoch(s) on train.csv)", page)
    page.click(".st-key-train_start button")
    t0, highest, view = time.time(), before, None
    while time.time() - t0 < 3600:
        rss, _ = server.memory_mb()
        highest = max(highest, rss)
        view = runs.read_run("bench-job")
        if view.meta and view.status in status.FINISHED:
            break
        if not view.meta and time.time() - t0 > 30:
            raise SystemExit(f"no job started after 30 s; the page says: {benchkit.shown_errors(page)!r}")
        time.sleep(0.5)
    job_s = time.time() - t0
    shown = "?" if view is None else view.status
    speeds = [h.get("images_per_s") for h in view.history] if view else "?"
    print(f"  the job ended: {shown} after {job_s:.0f} s; highest server RSS while it ran: {highest:.0f} MB; "
          f"job images/s per epoch: {speeds}")
    page.locator('[data-testid="stAlertContentSuccess"]').filter(has_text="Saved model").wait_for(
        timeout=120_000)
    benchkit.wait_idle(page)
    settled_rss(server)
    after, _ = record("Train, after the job ended (result shown)", page)
    return after - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the job is a 1-epoch mlp")
    parser.add_argument("--no-job", action="store_true", help="the five pages only, no training job")
    parser.add_argument("--job-only", action="store_true", help="Home, then the job: no other page")
    parser.add_argument("--job-arch", help="architecture of the job (default dr-cnn; mlp with --quick)")
    parser.add_argument("--job-epochs", type=int, default=1)
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra environment variable for the server (repeatable)")
    args = parser.parse_args()
    arch = args.job_arch or ("mlp" if args.quick else "dr-cnn")
    benchkit.cleanup_on_exit()

    delta = None
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        base = Path(tmp)
        env = benchkit.private_env(base)
        extra = dict(item.split("=", 1) for item in args.server_env)
        env.update(extra)
        t = time.time()
        what = write_data(base / "data")
        files = sorted((base / "data").glob("*.csv"))
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 2**20:.0f} MB" for p in files)
        print(f"data ({time.time() - t:.1f} s): {what}; {sizes}")
        print(f"start: {benchkit.machine_line()}" + (f"; server environment adds {extra}" if extra else ""))
        with benchkit.Server(env, base / "server.log") as server:
            record = Recorder(server)
            record(f"server started ({server.startup_s:.1f} s to healthy)")
            with benchkit.chromium() as browser:
                page = benchkit.new_page(browser)
                if args.job_only:
                    page.goto(server.url)
                    benchkit.wait_idle(page)
                    record("Home (train and test loaded)", page)
                else:
                    visit_pages(page, server.url, record)
                pages_peak = None if args.job_only else max(r[2] for r in record.rows)
                if not args.no_job:
                    delta = run_job(page, server.url, record, server, arch, args.job_epochs)
                page.context.close()
            time.sleep(2)
            record("all sessions closed")
    peak = max(r[2] for r in record.rows)
    print(f"\nend: {benchkit.machine_line()}")
    if pages_peak is not None:
        verdict = "met" if pages_peak <= TARGET_MB else "MISSED"
        print(f"server with Kaggle-sized data, all five pages used: peak {pages_peak:.0f} MB "
              f"(target <= {TARGET_MB} MB: {verdict}); peak over the whole run {peak:.0f} MB")
    if delta is not None:
        verdict = "met" if delta <= TARGET_JOB_DELTA_MB else "MISSED"
        print(f"server RSS after the job minus before it: {delta:+.0f} MB "
              f"(target at most +{TARGET_JOB_DELTA_MB} MB: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
