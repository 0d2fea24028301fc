"""Evaluate: how good a saved model is on digits it never trained on, where it errs, how far its
confidence can be trusted, how it learned, and how it compares with the other saved models."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core import eval_rows, evaluation, prediction, registry, training
from core.charts import evaluation as charts
from studio import datasets, guards, model_cache, tables
from studio import evaluation_cache as cache
from studio import evaluation_ui as ui

MAX_SHOWN = 40  # digits per gallery: enough to see a pattern, few enough to load fast
DATA_TRAIN = "The model's unseen digits of the training data"
DATA_TEST = "The test digits with known answers"
TABS = ["Confusion matrix", "Per digit", "Mistakes", "Calibration", "Training history", "Compare models"]

st.set_page_config(page_title="Evaluate · Digit Recognizer Studio", page_icon="📊", layout="wide")
st.title("📊 Evaluate a model")

infos = guards.require_models()
names = list(infos)
if st.session_state.get("eval_model") not in names:
    wanted = st.query_params.get("model")
    st.session_state["eval_model"] = wanted if wanted in names else names[0]

c1, c2 = st.columns([2, 3])
name = c1.selectbox("Model", names, key="eval_model", format_func=lambda n: model_cache.label(infos[n]))
st.query_params["model"] = name

# ---- the digits to evaluate on
with guards.data_guard():
    train = datasets.train_set()
    test = datasets.test_set()
    answers = datasets.test_answers()
sources = [DATA_TRAIN] + ([DATA_TEST] if test is not None and answers is not None else [])
which = c2.radio("Evaluate on", sources, key="eval_data", horizontal=True)
ds = evaluation.with_answers(test, answers) if which == DATA_TEST else train
VIEWS = prediction.TTA_VIEWS
tta = c2.toggle("Test-time augmentation", key="eval_tta",
                help=f"Read each digit {len(VIEWS)} ways ({', '.join(VIEWS)}) and "
                     "average the probabilities, as Submit's toggle does: it costs that many predictions, "
                     "and this page shows what it gains.")

version = cache.model_version(name)
try:
    rows = cache.unseen_rows(name, version, ds.fingerprint, ds)
except ValueError as exc:
    st.error(f"{name} cannot be evaluated on {ds.name}: {exc}.")
    st.stop()
if rows.refusal:
    st.error(f"{name} cannot be evaluated on {ds.name}: {rows.refusal}.")
    st.stop()
cache.predict_with_progress(name, version, ds.fingerprint, ds, tta=tta)
ev = cache.evaluate(name, version, ds.fingerprint, ds, tta)
evaluated = rows.indices  # rows of the evaluated digits, in the order of ev.labels / ev.proba (no copy)

m = st.columns(5)
low, high = evaluation.accuracy_interval(ev.n - ev.n_errors, ev.n)
m[0].metric("Accuracy", f"{ev.accuracy:.2%}", delta=f"95%: {100 * low:.2f}–{100 * high:.2f}%",
            delta_color="off", delta_arrow="off",
            help="Share of the evaluated digits read right. The interval (Wilson, 95%) is what this many "
                 "digits can tell: two models whose intervals overlap may not really differ.")
m[1].metric("Log loss", f"{ev.log_loss:.4f}",
            help="Mean −log(probability given to the true digit); lower is better, 0 is perfect.")
m[2].metric("Calibration error (ECE)", f"{ev.ece:.4f}",
            help=f"Gap between confidence and accuracy over {evaluation.DEFAULT_BINS} equal-width bins.")
m[3].metric("Mistakes", f"{ev.n_errors:,}")
m[4].metric("Digits evaluated", f"{ev.n:,}")
recorded = infos[name].val_accuracy if name in infos else None
st.caption(
    f"Evaluated on {rows.note}"
    + (f", each read {len(prediction.TTA_VIEWS)} ways (test-time augmentation)." if tta else ".")
    + (f" Validation accuracy recorded at training time: {recorded:.2%}." if recorded is not None
       and rows.kind == eval_rows.KIND_VALIDATION else "")
)

tabs = st.tabs(TABS, key="eval_tab", on_change="rerun")


def _gallery(pictures: np.ndarray, captions: list[str], key: str, *, cols: int = 10, row_height: int = 70):
    st.plotly_chart(charts.gallery_figure(pictures, captions, cols=cols, row_height=row_height), key=key)


# ---- confusion matrix: click a cell (or pick a pair) to see its digits
with tabs[0]:
    if tabs[0].open:
        cells = ui.confusion_cells(ev.confusion)
        ui.follow_click(st.session_state, cells)  # a new click on the heatmap becomes the picked pair
        left, right_col = st.columns(2)
        with left:
            mode = st.radio("Show", ["counts", "share of each true digit"], key="eval_cm_mode",
                            horizontal=True)
            st.plotly_chart(
                charts.confusion_figure(ev.confusion, normalised=mode != "counts",
                                        selected=st.session_state.get(ui.PAIR_KEY)),
                key=ui.CHART_KEY, on_select="rerun", selection_mode="points",
            )
        with right_col:
            st.selectbox("Digits of one cell (or click the matrix)", [None, *cells], key=ui.PAIR_KEY,
                         format_func=lambda c: ui.cell_label(c, cells))
            pair = st.session_state.get(ui.PAIR_KEY)
            empty = st.session_state.get(ui.EMPTY_CLICK_KEY)
            if pair is None:
                if empty is not None:
                    st.info(f"No digit {empty[0]} was read as {empty[1]}.")
                else:
                    st.caption("Click a cell of the matrix, or pick a pair above, to see those digits "
                               "with the probabilities the model gave them. Mistakes are listed first.")
            else:
                t, p = pair
                found = evaluation.pair_indices(ev.labels, ev.proba, t, p)
                shown = found[:MAX_SHOWN]
                more = f" (the {len(shown)} most confident shown)" if len(found) > len(shown) else ""
                st.markdown(f"**True {t}, predicted {p}: {len(found):,} digits**{more}")
                caps = [f"{p}: {ev.proba[i, p]:.0%}" + (f" · {t}: {ev.proba[i, t]:.0%}" if t != p else "")
                        for i in shown]
                _gallery(ds.images[evaluated[shown]], caps, "eval_pair_digits", cols=5, row_height=110)
                st.caption(f"Under each digit: the probability the model gave to {p}"
                           + (f", then to the true digit {t}." if t != p else "."))

# ---- per digit
with tabs[1]:
    if tabs[1].open:
        st.plotly_chart(charts.per_class_figure(ev.per_class), key="eval_per_class_chart")
        st.dataframe(
            ev.per_class, hide_index=True, key="eval_per_class_table",
            column_config={
                "precision": st.column_config.NumberColumn(
                    format="%.4f", help="Of the digits read as d, the share that are d"),
                "recall": st.column_config.NumberColumn(
                    format="%.4f", help="Of the true d, the share read as d"),
                "f1": st.column_config.NumberColumn("F1", format="%.4f", help="Harmonic mean of the two"),
                "support": st.column_config.NumberColumn(format="localized", help="True d evaluated"),
            },
        )
        worst = ev.per_class.sort_values("f1").iloc[0]
        st.caption(f"Hardest digit here: {int(worst.digit)} (F1 {worst.f1:.4f}). Precision falls when other "
                   "digits are mistaken for it; recall when it is mistaken for others.")

# ---- the most confident mistakes
with tabs[2]:
    if tabs[2].open:
        if ev.n_errors == 0:
            st.success("No mistakes on these digits.")
        else:
            k = st.slider("Mistakes shown", 10, 100, 30, step=10, key="eval_mistakes_k")
            worst = evaluation.confident_mistakes(ev.labels, ev.proba, k=k)
            st.markdown(f"**The {len(worst)} most confident of {ev.n_errors:,} mistakes** "
                        "(caption: true → predicted, confidence)")
            captions = [f"{ev.labels[i]}→{ev.pred[i]} {ev.confidence[i]:.0%}" for i in worst]
            _gallery(ds.images[evaluated[worst]], captions, "eval_mistakes")
            st.caption("Confident mistakes are often badly written or mislabelled digits: look before "
                       "blaming the model.")

# ---- calibration
with tabs[3]:
    if tabs[3].open:
        n_bins = st.select_slider("Bins", [5, 10, 15, 20, 30], value=evaluation.DEFAULT_BINS,
                                  key="eval_bins")
        bins = evaluation.calibration_bins(ev.labels, ev.proba, n_bins=n_bins)
        ece = evaluation.expected_calibration_error(ev.labels, ev.proba, n_bins=n_bins)
        st.plotly_chart(charts.reliability_figure(bins, ece=ece), key="eval_reliability")
        gap = float(ev.confidence.mean() - ev.accuracy)
        st.caption(
            f"Expected calibration error with {n_bins} bins: {ece:.4f}. Mean confidence "
            f"{ev.confidence.mean():.2%} against accuracy {ev.accuracy:.2%}: the model is "
            + ("over-confident" if gap > 0 else "under-confident") + f" by {abs(gap):.2%} on average. "
            "Bars on the dashed diagonal would mean that a digit read with 90% confidence is right 90% "
            "of the time."
        )

# ---- training history
with tabs[4]:
    if tabs[4].open:
        history = evaluation.history_frame(registry.read_history(name))
        if history.empty:
            st.info(f"{name} has no training history (history.csv).")
        else:
            st.plotly_chart(charts.history_figure(history), key="eval_history")
            meta = infos[name].meta if name in infos else {}
            bits = [f"{len(history)} epoch(s)"]
            if meta.get("best_epoch"):
                rule = training.kept_rule(meta)
                bits.append(f"{rule} epoch {meta['best_epoch']} (the one saved)")
                if rule == "last" and meta.get("val_best_epoch") not in (None, meta["best_epoch"]):
                    bits.append(f"validation scored epoch {meta['val_best_epoch']} highest")
            if meta.get("training_time_s") is not None:
                bits.append(f"{meta['training_time_s']:,.0f} s of training")
            st.caption(" · ".join(bits) + ". Validation far below training means over-fitting.")

# ---- compare several models on the same digits
with tabs[5]:
    if tabs[5].open:
        if len(names) < 2:
            st.info("Only one model is saved: train another (the random-forest baseline takes a minute) "
                    "to compare them.")
        else:
            chosen = st.multiselect("Models to compare", names, default=ui.default_comparison(name, infos),
                                    key="eval_compare")
            usable, skipped, common = ui.compared_rows(chosen, ds)
            for why in skipped:
                st.warning(f"Left out of the comparison — {why}.")
            if len(usable) < 2:
                st.info("Pick at least two models that can be evaluated on this data.")
            elif len(common) == 0:
                st.warning("These models have no unseen digit in common: no fair comparison is possible.")
            else:
                st.caption(eval_rows.explain_common_rows(usable, common, ds.name))
                probas = ui.aligned_predictions(usable, common, ds, tta=tta)
                labels = ds.labels[common]
                table = evaluation.compare(labels, probas, {n: infos[n].meta for n in probas})
                st.plotly_chart(charts.comparison_figure(table), key="eval_compare_chart")
                st.dataframe(
                    table, hide_index=True, key="eval_compare_table",
                    column_config=tables.number_columns({
                        "accuracy": "%.4f", "log loss": "%.4f", "ECE": "%.4f", "parameters": "localized",
                        "training time (s)": "%.1f",
                    }),
                )
                preds = {n: p.argmax(axis=1) for n, p in probas.items()}
                differ = evaluation.disagreements(preds)
                st.markdown(f"**The models disagree on {len(differ):,} of {len(common):,} digits "
                            f"({len(differ) / len(common):.1%}).**")
                st.plotly_chart(charts.disagreement_figure(evaluation.pairwise_disagreement(preds)),
                                key="eval_disagreement")
                if len(differ):
                    shown = differ[:MAX_SHOWN]
                    order = list(preds)
                    caps = [f"{labels[i]}: " + " ".join(str(preds[n][i]) for n in order) for i in shown]
                    _gallery(ds.images[common[shown]], caps, "eval_disagree_digits")
                    st.caption("Caption: the true digit, then what each model read, in this order: "
                               + ", ".join(order) + ".")
