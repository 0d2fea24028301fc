"""How long the Evaluate page's work takes for a 42,000-digit labelled set (Kaggle's train.csv size).

Builds the set from the shared 42,000-digit MNIST file (the committed sample tiled when it is
missing; see `benchkit`), then times, separately (median of --runs): the model's predictions
(`prediction.predict_proba`, served by LiteRT: the whole set, the same with the page's progress
reports, and a 10% validation split, what the page predicts when the set is the model's own
training data), the leakage check, all metrics, and every figure builder plus the JSON encoding
Streamlit sends to the browser. With --page it also times the Evaluate page itself under AppTest
on that set: the first run (predicting) and a rerun (served from the cache), then each tab.

    .venv/bin/python benchmarks/bench_evaluate.py [--model NAME] [--runs 3] [--page]

Models are read from a private copy of `models/` (the best saved one without --model); with none
saved, a 1-epoch dr-cnn is trained there first by `python -m core train` (prediction cost does
not depend on how well it was trained). Figures are printed, never asserted; the load average
is printed with them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import benchkit  # noqa: E402
import numpy as np  # noqa: E402

from core import data, evaluation, kaggle_csv, prediction, registry, serving  # noqa: E402
from core.charts import evaluation as charts  # noqa: E402

TARGET_S = 3.0


def timed(fn, runs: int) -> tuple[float, object]:
    """Median wall time of `runs` calls, and the last result."""
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def kaggle_sized_set(folder: Path) -> data.Dataset:
    """42,000 labelled digits, as the page loads them (parsed once, then from the cache)."""
    path, what = benchkit.kaggle_train_csv(folder / "train.csv")
    print(f"data: {what}")
    return data.load_csv(path, expect_labels=True)


def ensure_model(name: str | None) -> str:
    if name or registry.best_model_name():
        return registry.resolve_name(name)
    print("no saved model: training a 1-epoch dr-cnn on the sample (python -m core train)", file=sys.stderr)
    cmd = [sys.executable, "-m", "core", "train", "--arch", "dr-cnn", "--epochs", "1", "--name", "bench-cnn",
           "--quiet"]
    subprocess.run(cmd, cwd=ROOT, env=dict(os.environ), check=True, capture_output=True)
    return "bench-cnn"


def bench_predict(model: prediction.Predictor, images: np.ndarray, runs: int) -> tuple[np.ndarray, float]:
    print(f"\npredict {len(images):,} digits with {model.name} ({model.meta.get('arch')}), "
          f"{serving.BATCH} images per LiteRT call:")
    model.predict_proba(images[:serving.BATCH * 2])  # warm-up: the interpreter's tensors
    cpu0 = time.process_time()
    t, proba = timed(lambda: model.predict_proba(images), runs)
    cpu = (time.process_time() - cpu0) / runs
    print(f"  predictor.predict_proba, all at once: {t:6.2f} s wall ({len(images) / t:,.0f} digits/s), "
          f"{cpu:6.2f} s CPU (all threads)")
    reports: list[int] = []
    t, _ = timed(lambda: prediction.predict_proba(model, images, progress=lambda d, n: reports.append(d)),
                 runs)
    print(f"  prediction.predict_proba with progress every {prediction.CHUNK} (the page's bar): {t:6.2f} s")
    return proba, t


def bench_metrics(
    ds: data.Dataset, proba: np.ndarray, meta: dict, runs: int
) -> tuple[evaluation.Evaluation, float]:
    labels = ds.labels
    t_eval, ev = timed(lambda: evaluation.evaluate(labels, proba), runs)
    t_err, worst = timed(lambda: evaluation.confident_mistakes(labels, proba, k=30), runs)
    t_pair, _ = timed(lambda: evaluation.pair_indices(labels, proba, 4, 9), runs)
    t_cal, _ = timed(lambda: evaluation.calibration_bins(labels, proba, n_bins=20), runs)
    other = np.roll(proba, 1, axis=0)  # a stand-in second model for the comparison
    probas = {"a": proba, "b": other}
    t_cmp, _ = timed(lambda: (evaluation.compare(labels, probas, {}),
                              evaluation.pairwise_disagreement({k: p.argmax(1) for k, p in probas.items()}),
                              evaluation.disagreements({k: p.argmax(1) for k, p in probas.items()})), runs)
    t_hash, hashes = timed(lambda: data.row_hashes(ds.images), runs)
    empty = np.zeros(0, dtype=np.uint64)
    t_rows, _ = timed(lambda: evaluation.unseen_rows(meta, ds, train_hashes=empty, data_hashes=hashes), runs)
    t_val, _ = timed(lambda: data.split_indices(labels, val_fraction=0.1, seed=0), runs)
    total = t_eval + t_err + t_pair + t_cal + t_cmp
    print(f"\nmetrics on {len(labels):,} digits (accuracy {ev.accuracy:.4f}, {ev.n_errors:,} mistakes):")
    print(f"  evaluate (accuracy, log-loss, confusion, per-class P/R/F1, ECE): {t_eval * 1000:7.1f} ms")
    print(f"  most confident mistakes:                                       {t_err * 1000:7.1f} ms")
    print(f"  one confusion cell's digits:                                   {t_pair * 1000:7.1f} ms")
    print(f"  calibration bins (another bin count):                          {t_cal * 1000:7.1f} ms")
    print(f"  comparison of 2 models (table, disagreements):                 {t_cmp * 1000:7.1f} ms")
    print(f"  all metrics:                                                   {total * 1000:7.1f} ms")
    print(f"  leakage check on other data: row hashes {t_hash * 1000:.1f} ms + unseen rows "
          f"{t_rows * 1000:.1f} ms; validation split rebuild {t_val * 1000:.1f} ms")
    return ev, total + t_hash + t_rows


def bench_figures(ds: data.Dataset, ev: evaluation.Evaluation, history: list[dict], runs: int) -> float:
    import plotly.io as pio

    worst = evaluation.confident_mistakes(ev.labels, ev.proba, k=30)
    cell = evaluation.pair_indices(ev.labels, ev.proba, *evaluation.confusion_pairs(ev.confusion)[0][:2])[:40]
    table = evaluation.compare(ev.labels, {"a": ev.proba, "b": np.roll(ev.proba, 1, axis=0)}, {})
    preds = {"a": ev.pred, "b": np.roll(ev.pred, 1)}
    differ = evaluation.disagreements(preds)[:40]
    hist = evaluation.history_frame(history or [{"epoch": 1, "loss": 0.5, "accuracy": 0.9,
                                                 "val_loss": 0.4, "val_accuracy": 0.92}])
    builders = {
        "confusion (counts)": lambda: charts.confusion_figure(ev.confusion),
        "confusion (row-normalised)": lambda: charts.confusion_figure(ev.confusion, normalised=True,
                                                                      selected=(4, 9)),
        "per-class bars": lambda: charts.per_class_figure(ev.per_class),
        "reliability diagram": lambda: charts.reliability_figure(ev.calibration, ece=ev.ece),
        "training history": lambda: charts.history_figure(hist),
        "mistakes gallery (30)": lambda: charts.gallery_figure(ds.images[worst], ["x"] * len(worst)),
        "cell gallery (40)": lambda: charts.gallery_figure(ds.images[cell], ["x"] * len(cell), cols=5),
        "comparison bars": lambda: charts.comparison_figure(table),
        "disagreement heatmap": lambda: charts.disagreement_figure(evaluation.pairwise_disagreement(preds)),
        "disagreement gallery (40)": lambda: charts.gallery_figure(ds.images[differ], ["x"] * len(differ)),
    }
    print("\nfigure builders (build + JSON encoding as st.plotly_chart does):")
    total_build = total_json = 0.0
    for label, build in builders.items():
        t_build, fig = timed(build, runs)
        t_json, _ = timed(lambda f=fig: pio.to_json(f, validate=False), runs)
        total_build += t_build
        total_json += t_json
        print(f"  {label:28s} build {t_build * 1000:6.1f} ms, JSON {t_json * 1000:6.1f} ms")
    print(f"  {'all figures':28s} build {total_build * 1000:6.1f} ms, JSON {total_json * 1000:6.1f} ms")
    return total_build + total_json


def bench_page(name: str, ds: data.Dataset) -> None:
    """The Evaluate page on the 42k set under AppTest, cold (empty caches) then warm, two ways:
    as the model's own training data (its 4,200-digit validation split is evaluated) and as data it
    never saw (all 42,000). The model's record is rewritten in a temporary copy for each: what it
    costs to evaluate does not depend on what the weights learned."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    base = Path(tempfile.mkdtemp(prefix="bench-eval-page-"))
    base_env = {k: os.environ[k] for k in ("DRS_MODELS_DIR", "DRS_DATA_DIR", "DRS_CACHE_DIR")}
    try:
        (base / "data").mkdir()
        kaggle_csv.write_kaggle_csv(base / "data" / "train.csv", ds.images, ds.labels)
        source = registry.model_dir(name)
        for scenario in ("own training data: its validation split", "unseen data: all of it"):
            models_dir = base / f"models-{len(scenario)}"
            shutil.copytree(source, models_dir / name)
            os.environ.update(DRS_MODELS_DIR=str(models_dir), DRS_DATA_DIR=str(base / "data"),
                              DRS_CACHE_DIR=str(base / f"cache-{len(scenario)}"))
            meta = registry.read_meta(name)
            if scenario.startswith("own"):
                _, val_idx = data.split_indices(ds.labels, val_fraction=0.1, seed=0)
                meta["data"] = {"name": "train.csv", "source": "kaggle", "fingerprint": ds.fingerprint,
                                "n_rows": ds.n, "split": data.describe_split(ds.labels, val_idx,
                                                                             val_fraction=0.1, seed=0)}
            else:
                registry.save_train_hashes(name, np.zeros(0, dtype=np.uint64))  # nothing seen
            registry.write_meta(name, meta)
            st.cache_data.clear()
            st.cache_resource.clear()
            at = AppTest.from_file(str(ROOT / "pages" / "3_📊_Evaluate.py"), default_timeout=600)
            at.session_state["eval_model"] = name
            print(f"\nEvaluate page under AppTest, {ds.n:,}-digit train.csv, model {name}, {scenario}:")
            for label in ("first run (parse CSV, load model, predict, metrics, charts)", "rerun (cached)"):
                t0 = time.perf_counter()
                at.run()
                print(f"  {label}: {time.perf_counter() - t0:6.2f} s"
                      + (f"  EXCEPTION {at.exception[0].message}" if at.exception else "")
                      + (f"  ERROR {at.error[0].value}" if at.error else ""))
            print(f"  shown: {', '.join(f'{m.label} {m.value}' for m in at.metric)}")
            for tab in TABS:
                at.session_state["eval_tab"] = tab
                t0 = time.perf_counter()
                at.run()
                print(f"  tab {tab!r}: {time.perf_counter() - t0:6.2f} s")
    finally:
        os.environ.update(base_env)
        shutil.rmtree(base, ignore_errors=True)


TABS = ["Per digit", "Mistakes", "Calibration", "Training history", "Compare models", "Confusion matrix"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="saved model (default: the best one)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--page", action="store_true", help="also time the page under AppTest")
    args = parser.parse_args()
    benchkit.cleanup_on_exit()
    with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as tmp:
        benchkit.private_env(Path(tmp))
        run(args, Path(tmp))


def run(args: argparse.Namespace, tmp: Path) -> None:
    name = ensure_model(args.model)
    ds = kaggle_sized_set(tmp / "data")
    t0 = time.perf_counter()
    model = prediction.load(name)
    print(f"{ds.n:,} digits; model {name} loaded in {time.perf_counter() - t0:.2f} s "
          f"(LiteRT, no TensorFlow); {benchkit.machine_line()}")
    proba, t_predict = bench_predict(model, ds.images, args.runs)
    _, val_idx = data.split_indices(ds.labels, val_fraction=0.1, seed=0)
    t_val, _ = timed(lambda: prediction.predict_proba(model, ds.images[val_idx]), args.runs)
    print(f"  validation split only ({len(val_idx):,} digits): {t_val:6.2f} s")
    ev, t_metrics = bench_metrics(ds, proba, registry.read_meta(name), args.runs)
    t_figures = bench_figures(ds, ev, registry.read_history(name), args.runs)
    total = t_predict + t_metrics + t_figures
    verdict = "met" if total <= TARGET_S else "MISSED"
    print(f"\nall numbers and charts for {ds.n:,} unseen digits, model loaded: predict {t_predict:.2f} s + "
          f"metrics and leakage check {t_metrics:.2f} s + figures {t_figures:.2f} s = {total:.2f} s "
          f"(target {TARGET_S:g} s: {verdict})")
    if args.page:
        bench_page(name, ds)
    print(f"end: {benchkit.machine_line()}")


if __name__ == "__main__":
    main()
