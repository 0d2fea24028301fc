"""Memory of the Streamlit server with a Kaggle-sized data set: is it under ~1.5 GB?

    python benchmarks/bench_memory.py            # Home, Explore, Draw (with a drawn digit)
    python benchmarks/bench_memory.py --all      # then Evaluate (42,000 digits) and Submit (28,000)

Makes a 42,000-row train.csv and a 28,000-row test.csv (Kaggle's sizes) by tiling the committed
sample into a temporary data folder (with --all the training rows are the sample's test digits,
which the shipped model never saw, so Evaluate has all 42,000 to predict), starts
`streamlit run Home.py` on it with a copy of models/, opens the pages in Chromium so the data,
the model and their caches are loaded, and prints the server's resident memory after each step
(VmRSS, and the peak VmHWM, from /proc/<pid>/status).
Streamlit Community Cloud's limit is about 2.7 GB; the design target is 1.5 GB.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core import data, kaggle_csv  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
TARGET_MB = 1536
KAGGLE_TRAIN, KAGGLE_TEST = 42_000, 28_000
IDLE = """() => document.querySelector('[data-testid="stApp"]')
    ?.getAttribute('data-test-script-state') === 'notRunning'"""
READING = '[aria-label="predicted digit"]'



def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB: its resident memory now and at its peak."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def make_kaggle_sized(folder: Path, *, unseen: bool) -> tuple[Path, Path]:
    """train.csv (42,000 labelled rows) and test.csv (28,000 rows), tiled from the sample.

    The training rows repeat the sample's 9,000 training digits; with `unseen`, its 1,000 test
    digits (labelled with the kept answers) instead: a model trained on the sample never saw
    those, so the Evaluate page (which refuses data overlapping a model's training digits) has
    all 42,000 to evaluate."""
    sample = data.paths.sample_dir()
    test = data.parse_csv(sample / "test.csv.gz", expect_labels=False)
    if unseen:
        pool, pool_labels = test.images, data.sample_answers()
    else:
        train = data.parse_csv(sample / "train.csv.gz", expect_labels=True)
        pool, pool_labels = train.images, train.labels
    rows_train = np.arange(KAGGLE_TRAIN) % len(pool)
    rows_test = np.arange(KAGGLE_TEST) % test.n
    train_path = kaggle_csv.write_kaggle_csv(folder / "train.csv", pool[rows_train], pool_labels[rows_train])
    test_path = kaggle_csv.write_kaggle_csv(folder / "test.csv", test.images[rows_test])
    return train_path, test_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_idle(page, timeout_ms: float = 300_000) -> None:
    """Until the script has run to the end (twice idle, half a second apart) and the network is quiet."""
    deadline = time.time() + timeout_ms / 1000
    while True:
        page.wait_for_function(IDLE, timeout=max(1_000, (deadline - time.time()) * 1000))
        page.wait_for_timeout(500)
        if page.evaluate(IDLE):
            break
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):  # a page with live parts may never go quiet
        page.wait_for_load_state("networkidle", timeout=30_000)


def shown_errors(page) -> str:
    """The texts of st.error boxes on the page (a step that shows one did less work than it says)."""
    boxes = page.get_by_test_id("stAlertContentError")
    texts = [boxes.nth(i).inner_text().strip() for i in range(boxes.count())]
    return " | ".join(texts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="also Evaluate and Submit (predict the data sets)")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    base = Path(tempfile.mkdtemp(prefix="drs-mem-"))
    server = None
    rows: list[tuple[str, float, float, float]] = []
    try:
        data_dir, cache_dir, models_dir = base / "data", base / "cache", base / "models"
        data_dir.mkdir()
        t = time.time()
        train_path, test_path = make_kaggle_sized(data_dir, unseen=args.all)
        print(f"data: {train_path.name} {train_path.stat().st_size / 2**20:.0f} MB ({KAGGLE_TRAIN:,} rows), "
              f"{test_path.name} {test_path.stat().st_size / 2**20:.0f} MB ({KAGGLE_TEST:,} rows), "
              f"written in {time.time() - t:.1f} s")
        shutil.copytree(ROOT / "models", models_dir)
        models = sorted(p.name for p in models_dir.iterdir() if (p / "meta.json").is_file())
        print(f"models: {', '.join(models) or 'none'}")

        port = free_port()
        env = dict(os.environ, DRS_DATA_DIR=str(data_dir), DRS_CACHE_DIR=str(cache_dir),
                   DRS_MODELS_DIR=str(models_dir), TF_CPP_MIN_LOG_LEVEL="2")
        log = open(base / "server.log", "w")  # noqa: SIM115 - closed with the server
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(port),
             "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        t0 = time.time()
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.time() - t0 > 120:
                    raise SystemExit(f"the server did not start; see {base / 'server.log'}") from None
                time.sleep(0.3)

        def record(step: str, page=None) -> None:
            errors = shown_errors(page) if page is not None else ""
            if errors:
                step += f" [page shows an error: {errors[:200]}]"
            rss, hwm = memory_mb(server.pid)
            rows.append((step, rss, hwm, time.time() - t0))
            print(f"{step:<48} RSS {rss:7.0f} MB   peak {hwm:7.0f} MB   ({time.time() - t0:5.0f} s)",
                  flush=True)

        record("server started")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(300_000)
            page.goto(url)
            wait_idle(page)
            record("Home (data loaded)", page)
            page.goto(f"{url}/Explore")
            wait_idle(page)
            for tab in ("Samples", "Mean & spread", "Pixels", "Train vs test", "2-D map", "Quality"):
                page.get_by_role("tab", name=tab).click()
            wait_idle(page)
            record("Explore (stats, PCA, t-SNE, quality checks)", page)
            page.goto(f"{url}/Draw")
            wait_idle(page)
            canvas = page.locator("canvas").last
            box = canvas.bounding_box()
            x, y = box["x"] + box["width"] / 2, box["y"] + 50
            page.mouse.move(x, y)
            page.mouse.down()
            for i in range(1, 21):
                page.mouse.move(x, y + 9 * i)
            page.mouse.up()
            page.locator(READING).wait_for()
            wait_idle(page)
            digit = page.locator(READING).inner_text().strip()
            record(f"Draw (model loaded, drawn digit read as {digit})", page)
            if args.all:
                page.goto(f"{url}/Evaluate")
                wait_idle(page)
                record("Evaluate (predictions on unseen digits)", page)
                page.goto(f"{url}/Submit")
                wait_idle(page)
                page.get_by_role("button", name="Predict the test set").click()
                page.get_by_role("button", name="Download submission.csv").wait_for()
                wait_idle(page)
                record(f"Submit (predicted {KAGGLE_TEST:,} test digits)", page)
            browser.close()
        time.sleep(1)
        record("all sessions closed")
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(base, ignore_errors=True)

    peak = max(r[2] for r in rows)
    now = rows[-1][1]
    verdict = "under" if peak < TARGET_MB else "OVER"
    print(f"\nserver memory with Kaggle-sized data: {now:.0f} MB resident at the end, peak {peak:.0f} MB "
          f"-> {verdict} the {TARGET_MB} MB target")
    return 0 if peak < TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
