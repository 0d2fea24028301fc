"""What the benchmarks share: private folders, Kaggle-sized files, /proc readings, a Streamlit server
and a headless Chromium, and cleaning up after all of them. Not a benchmark itself.

- `private_env(base)`: models (a copy of the shipped ones), data, cache and signing key in a
  temporary folder, set for this process and returned for child processes, so no benchmark ever
  touches the repository's `models/` or `data/`.
- `kaggle_train_csv` / `kaggle_test_csv`: 42,000 labelled / 28,000 unlabelled rows (Kaggle's
  sizes) from the shared MNIST files beside the repository (`../shared/data/`), or the committed
  sample tiled when those are missing.
- `memory_mb`, `cpu_seconds`, `descendants`: what /proc says of a process.
- `Server`: `streamlit run Home.py` on a free port, stopped with everything it started.
- `chromium()`, `wait_idle()`: Debian's Chromium through Playwright (optionally niced), and
  waiting for a page.
- `cleanup_on_exit()`: SIGTERM/SIGINT run the `finally` blocks; at exit every process this one
  started (and is still running) is ended, by pid.
"""

from __future__ import annotations

import atexit
import contextlib
import gzip
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
TRAIN_42K = SHARED / "mnist-train-42k.csv.gz"
HOLDOUT_18K = SHARED / "mnist-holdout-18k.csv.gz"
SAMPLE = ROOT / "data" / "sample"
KAGGLE_TRAIN, KAGGLE_TEST = 42_000, 28_000

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- the machine


def loadavg() -> str:
    """`/proc/loadavg` as it is now (1, 5 and 15 minute load, runnable/all tasks)."""
    return Path("/proc/loadavg").read_text().strip()


def machine_line() -> str:
    return f"load average {loadavg()} on {os.cpu_count()} cores"


# --------------------------------------------------------------------------- private folders


def private_env(base: Path, *, models: bool = True) -> dict[str, str]:
    """Point models, data, cache and the signing key into `base` (a copy of the repository's
    `models/` when `models`), for this process (`os.environ`) and its children (the returned env)."""
    base = Path(base)
    (base / "data").mkdir(parents=True, exist_ok=True)
    if models:
        shutil.copytree(ROOT / "models", base / "models", dirs_exist_ok=True)
    else:
        (base / "models").mkdir(parents=True, exist_ok=True)
    env = {
        "DRS_MODELS_DIR": str(base / "models"),
        "DRS_DATA_DIR": str(base / "data"),
        "DRS_CACHE_DIR": str(base / "cache"),
        "DRS_KEY_FILE": str(base / "model-signing.key"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    os.environ.update(env)
    return dict(os.environ)


# --------------------------------------------------------------------------- Kaggle-sized files


def csv_lines(path: Path) -> tuple[bytes, list[bytes]]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    header, body = raw.replace(b"\r", b"").split(b"\n", 1)
    return header, body.rstrip(b"\n").split(b"\n")


def write_rows(out: Path, header: bytes, lines: list[bytes], rows: int) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tiled = [lines[i % len(lines)] for i in range(rows)]
    out.write_bytes(header + b"\n" + b"\n".join(tiled) + b"\n")
    return out


def kaggle_train_csv(out: Path, rows: int = KAGGLE_TRAIN) -> tuple[Path, str]:
    """A labelled `train.csv` of `rows` rows: the shared 42k MNIST file (repeated if more are
    asked), else the committed sample's 9,000 training digits tiled. Returns (path, what it is)."""
    if TRAIN_42K.is_file():
        header, lines = csv_lines(TRAIN_42K)
        what = f"first {min(rows, len(lines)):,} rows of {TRAIN_42K.name}"
    else:
        header, lines = csv_lines(SAMPLE / "train.csv.gz")
        what = f"the sample's {len(lines):,} training digits tiled (no {TRAIN_42K})"
    return write_rows(out, header, lines[:rows], rows), what


def kaggle_test_csv(out: Path, rows: int = KAGGLE_TEST) -> tuple[Path, str]:
    """An unlabelled `test.csv` of `rows` rows that no shipped model trained on: the shared 18k
    holdout and the sample's 1,000 test digits, tiled (the sample's test digits alone when the
    holdout is missing). Returns (path, what it is)."""
    header, lines = csv_lines(SAMPLE / "test.csv.gz")
    what = f"the sample's {len(lines):,} test digits"
    if HOLDOUT_18K.is_file():
        _, held = csv_lines(HOLDOUT_18K)
        lines = [line.split(b",", 1)[1] for line in held] + lines  # drop the label column
        what = f"{HOLDOUT_18K.name} + {what}"
    if rows > len(lines):
        what += f", tiled to {rows:,}"
    return write_rows(out, header, lines, rows), what


# --------------------------------------------------------------------------- /proc


def _stat_fields(pid: int) -> list[str]:
    """Fields 3.. of /proc/<pid>/stat (after the command, which may hold spaces and brackets)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB: its resident memory now and at its peak."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (its threads included); 0 if gone."""
    try:
        f = _stat_fields(pid)
    except OSError:
        return 0.0
    return (int(f[11]) + int(f[12])) / CLOCK_TICKS


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry.name))[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def cpu_snapshot(pids: list[int]) -> dict[int, float]:
    return {p: cpu_seconds(p) for p in pids}


def cpu_since(before: dict[int, float], pids: list[int]) -> float:
    """CPU seconds `pids` used since `before` was taken (a process born since counts from 0; one
    that ended in between is lost: its parent's reaped-children time is not read)."""
    return sum(max(0.0, cpu_seconds(p) - before.get(p, 0.0)) for p in pids)


def chromium_pids() -> list[int]:
    """This process's Chromium processes (not other people's browsers on the same machine)."""
    return [p for p in descendants(os.getpid()) if "chromium" in command(p).split(" ", 1)[0]]


# --------------------------------------------------------------------------- cleaning up


def _end(pids: list[int], grace_s: float = 5.0) -> None:
    for p in pids:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGTERM)
    deadline = time.time() + grace_s
    while time.time() < deadline and any(Path(f"/proc/{p}").exists() and _state(p) not in "ZX" for p in pids):
        time.sleep(0.1)
    for p in pids:
        if Path(f"/proc/{p}").exists() and _state(p) not in "ZX":
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)


def _state(pid: int) -> str:
    try:
        return _stat_fields(pid)[0]
    except (OSError, IndexError):
        return "X"


def end_descendants(root: int | None = None) -> None:
    """End every process below `root` (this process by default), by pid."""
    _end(descendants(os.getpid() if root is None else root))


def _raise_exit(signum, frame) -> None:
    raise SystemExit(128 + signum)


def cleanup_on_exit() -> None:
    """On SIGTERM/SIGINT run the `finally` blocks; at exit end every process started from here."""
    signal.signal(signal.SIGTERM, _raise_exit)
    signal.signal(signal.SIGINT, _raise_exit)
    atexit.register(end_descendants)


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`streamlit run Home.py` on a free port with `env`; `stop()` ends it and whatever it started
    (job processes, probes) by pid. `startup_s` is the time from spawn to a healthy answer."""

    def __init__(self, env: dict[str, str], log: Path, *, timeout_s: float = 120):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = open(log, "w")  # noqa: SIM115 - closed in stop()
        cmd = [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(self.port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", "--server.runOnSave", "false"]
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2):
                    break
            except OSError:
                if self.proc.poll() is not None or time.perf_counter() - t0 > timeout_s:
                    self.stop()
                    raise SystemExit(f"the server did not start; see {log}") from None
                time.sleep(0.1)
        self.startup_s = time.perf_counter() - t0

    def memory_mb(self) -> tuple[float, float]:
        return memory_mb(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            started = descendants(self.pid)
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            _end(started, grace_s=2.0)
        self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------- the browser


@contextlib.contextmanager
def chromium(*, nice: int = 0) -> Iterator:
    """A headless Debian Chromium through Playwright (closed on exit); with `nice`, started at that
    niceness (through a small wrapper script), so it takes CPU only when the rest leaves some."""
    from playwright.sync_api import sync_playwright

    executable, wrapper_dir = CHROMIUM, None
    if nice:
        wrapper_dir = tempfile.mkdtemp(prefix="chromium-nice-")
        executable = os.path.join(wrapper_dir, "chromium")
        Path(executable).write_text(f'#!/bin/sh\nexec nice -n {int(nice)} {CHROMIUM} "$@"\n')
        os.chmod(executable, 0o755)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            if wrapper_dir:
                shutil.rmtree(wrapper_dir, ignore_errors=True)


def new_page(browser, timeout_ms: float = 300_000):
    """A page in a fresh context (its own cookies: its own Streamlit session)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(timeout_ms)
    return context.new_page()


IDLE = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
        && !document.querySelector('[data-testid="stSkeleton"]');
}"""


def wait_idle(page, timeout_ms: float = 300_000, *, network: bool = True) -> None:
    """Until the script has run to the end (idle twice, half a second apart) and, with `network`,
    the network is quiet (a page with live parts may never be: then after at most 30 s)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    deadline = time.time() + timeout_ms / 1000
    while True:
        page.wait_for_function(IDLE, timeout=max(1_000, (deadline - time.time()) * 1000))
        page.wait_for_timeout(500)
        if page.evaluate(IDLE) or time.time() > deadline:
            break
    if network:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        with contextlib.suppress(PlaywrightTimeout):
            page.wait_for_load_state("networkidle", timeout=30_000)


def shown_errors(page) -> str:
    """The texts of error and exception boxes on the page (a step that shows one did less work)."""
    texts = []
    for test_id in ("stAlertContentError", "stException"):
        boxes = page.get_by_test_id(test_id)
        texts += [boxes.nth(i).inner_text().strip() for i in range(boxes.count())]
    return " | ".join(texts)


def wait_for_probes(server: Server, timeout_s: float = 300) -> None:
    """Until no `python -m core probe` started by the server is running (the Train page starts one
    to estimate a run's time; it must not fall into a measured window)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if not any(" probe " in command(p) for p in descendants(server.pid)):
            return
        time.sleep(0.5)


def warm_up_train(server: Server, browser) -> None:
    """Open the Train page once and close it, then wait for the speed probe it started."""
    page = new_page(browser)
    page.goto(f"{server.url}/Train")
    wait_idle(page, network=False)
    page.wait_for_timeout(1000)
    page.context.close()
    wait_for_probes(server)
    time.sleep(1)
