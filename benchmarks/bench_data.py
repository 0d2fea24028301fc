"""How fast is loading a Kaggle-sized train.csv? Prints medians; asserts nothing.

Builds a 42,000-row train.csv (Kaggle's size, ~73 MB) in a temporary folder from the shared 42,000
MNIST digits (`../shared/data/mnist-train-42k.csv.gz` beside the repository; the 10,000-digit
file there, or `--source FILE`, or the committed 9,000-digit sample, tiled, if that is missing),
then times:

- pandas' default `read_csv` (the usual way; it neither validates nor reshapes),
- our cold load: `load_csv(..., use_cache=False)` (parse + validate + reshape + fingerprint),
- our first load with an empty cache (cold + writing the cache),
- our warm load (cache hit),
- how long a file whose last row is bad takes to be refused (with the row and column named).

Targets: cold <= 1.0 s, warm <= 0.1 s. The machine is shared, so the load average is printed
too: read the figures with it in mind.

    python benchmarks/bench_data.py [--rows 42000] [--runs 5] [--source FILE]
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import data, paths  # noqa: E402

SHARED_FILES = [ROOT.parent / "shared" / "data" / f"mnist-train-{size}.csv.gz" for size in ("42k", "10k")]
TARGET_COLD_S = 1.0
TARGET_WARM_S = 0.1


def pick_source(requested: str | None) -> Path:
    """The CSV to tile: --source, else the shared 42k (or 10k) digits, else the committed sample."""
    if requested:
        path = Path(requested)
        if not path.is_file():
            sys.exit(f"--source {path}: no such file")
        return path
    for shared in SHARED_FILES:
        if shared.is_file():
            return shared
    fallback = paths.sample_dir() / "train.csv.gz"
    print(
        f"note: {SHARED_FILES[0].parent} has no MNIST file (expected the shared data folder beside the "
        f"repository); tiling the committed sample {fallback.relative_to(ROOT)} instead",
        file=sys.stderr,
    )
    return fallback


def build_train_csv(source: Path, rows: int, out: Path) -> Path:
    """Kaggle-sized train.csv: the source's rows repeated until there are `rows` of them."""
    raw = source.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    header, body = raw.split(b"\n", 1)
    if not header.startswith(b"label,pixel0"):
        sys.exit(f"{source}: not a Kaggle train file (header {header[:30]!r})")
    lines = body.rstrip(b"\n").replace(b"\r", b"").split(b"\n")
    tiled = [lines[i % len(lines)] for i in range(rows)]
    out.write_bytes(header + b"\n" + b"\n".join(tiled) + b"\n")
    return out


def median_time(
    fn: Callable[[], object], runs: int, before: Callable[[], None] | None = None
) -> tuple[float, float]:
    """Median wall time and median CPU time (all threads) of `fn` over `runs` runs; `before`
    runs untimed ahead of each. CPU time is steadier than wall time on a busy machine."""
    walls, cpus = [], []
    for _ in range(runs):
        if before is not None:
            before()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return statistics.median(walls), statistics.median(cpus)


def machine_load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "load average unknown"
    cores = os.cpu_count() or 1
    busy = "busy" if one > 0.5 * cores else "quiet"
    raw = Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").is_file() else ""
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {cores} cores: {busy} [{raw}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=42_000, help="rows in the built train.csv")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (median shown)")
    parser.add_argument("--source", help="a Kaggle-format train CSV (or .csv.gz) to tile")
    args = parser.parse_args()

    import pandas as pd  # imported here so its import time is not in any figure

    source = pick_source(args.source)
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        tmp = Path(tmp)
        os.environ["DRS_CACHE_DIR"] = str(tmp / "cache")  # never the real data/.cache
        csv = build_train_csv(source, args.rows, tmp / "train.csv")
        print(f"source: {source} -> {csv.name}: {args.rows} rows, {csv.stat().st_size / 2**20:.1f} MB")
        print(f"before: {machine_load()}")

        # Warm up imports and the page cache once, untimed.
        pd.read_csv(csv, nrows=10)
        data.parse_csv(csv.read_bytes()[:200_000].rsplit(b"\n", 1)[0] + b"\n")

        def clear_cache() -> None:
            for f in (tmp / "cache").glob("*"):
                f.unlink()

        def load(use_cache: bool) -> data.Dataset:
            return data.load_csv(csv, expect_labels=True, use_cache=use_cache)

        results = {
            "pandas read_csv (default)": median_time(lambda: pd.read_csv(csv), args.runs),
            "ours cold (use_cache=False)": median_time(lambda: load(False), args.runs),
            "ours first load, empty cache": median_time(lambda: load(True), args.runs, before=clear_cache),
        }
        load(True)
        results["ours warm (cache hit)"] = median_time(lambda: load(True), args.runs)

        # How long a user waits to be told what is wrong with a big file whose last row is bad.
        bad = tmp / "bad.csv"
        body = csv.read_bytes()
        bad.write_bytes(body[:-6] + b"x" + body[-5:])

        said: list[str] = []

        def refuse() -> None:
            try:
                data.parse_csv(bad, expect_labels=True)
            except ValueError as exc:
                said.append(str(exc))

        results["ours refusing a bad last row"] = median_time(refuse, max(1, args.runs // 2))

        ds = load(True)
        assert ds.images.shape == (args.rows, 28, 28) and ds.labels.shape == (args.rows,)
        print(f"after:  {machine_load()}")
        print(f"\nmedian of {args.runs} runs:")
        pandas_s = results["pandas read_csv (default)"][0]
        print(f"  {'':32s} {'wall':>9s}   {'vs pandas':>11s}   {'CPU (all threads)':>17s}")
        for label, (seconds, cpu) in results.items():
            print(f"  {label:32s} {seconds:7.3f} s   {seconds / pandas_s:9.2f}x   {cpu:15.3f} s")
        print(f"  (the refusal said: {said[-1]})")
        cold, warm = results["ours cold (use_cache=False)"][0], results["ours warm (cache hit)"][0]
        verdict = {True: "met", False: "MISSED"}
        print(
            f"\ntargets: cold {cold:.3f} s <= {TARGET_COLD_S} s: {verdict[cold <= TARGET_COLD_S]}; "
            f"warm {warm:.3f} s <= {TARGET_WARM_S} s: {verdict[warm <= TARGET_WARM_S]}"
        )


if __name__ == "__main__":
    main()
