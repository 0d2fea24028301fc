"""Submit: predict the test set with one model or an ensemble and download a valid submission.csv."""

from __future__ import annotations

import streamlit as st

from core import submission, submission_records
from core.charts import submission as charts
from studio import datasets, guards, model_cache, tables
from studio import submit_cache as cache

GRID_SIZE = 40  # least confident digits shown

st.set_page_config(page_title="Submit · Digit Recognizer Studio", page_icon="📤", layout="wide")
st.title("📤 Submit to Kaggle")
st.caption(
    "Predict the test set, check the file the way Kaggle will, and download `submission.csv` "
    "(ImageId 1..n in test order, Label 0..9). Each file is recorded with the models and settings "
    "that made it in `data/submissions/`."
)

# ---- guards: test data and models
with guards.data_guard():
    test = datasets.test_set()
if test is None:
    st.info("No test set: put Kaggle's `test.csv` in `data/` or upload it on the Home page.")
    st.stop()
infos = guards.require_models()
choices = list(infos)

# ---- inputs
if [n for n in st.session_state.get("submit_models", []) if n not in choices]:
    st.session_state["submit_models"] = [n for n in st.session_state["submit_models"] if n in choices]
st.session_state.setdefault("submit_models", choices[:1])


c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
names = c1.multiselect(
    "Models (several = an ensemble: their probabilities are averaged)", choices,
    format_func=lambda n: model_cache.label(infos[n]),
    key="submit_models",
)
tta = c2.toggle("Test-time augmentation", key="submit_tta",
                help="Also predict each digit rotated by ±8° and average the three: 3x the time.")
st.caption(f"Test set: {datasets.describe(test)}")
if not names:
    st.info("Choose at least one model.")
    st.stop()

# ---- leakage guard
findings = cache.leakage(names, test)
if findings:
    for finding in findings:
        st.error(f"Leakage: {finding['message']}.")
    st.error(
        "Kaggle's test digits are MNIST digits: a model that has seen them scores near 100% on Kaggle "
        "without being any good. Such a score says nothing about the model."
    )
    if not st.checkbox("I understand; produce this submission anyway (the leak is recorded with it)",
                       key="submit_allow_leakage"):
        st.stop()

# ---- predict (cached per models, model versions, test set and TTA)
key = cache.prediction_key(names, test, tta)
result = cache.cached(key)
if result is None:
    slot = st.empty()
    if not slot.button("Predict the test set", key="submit_predict", type="primary"):
        st.stop()
    bar = slot.progress(0.0, text="Loading the models…")

    def _progress(done: int, total: int) -> None:
        bar.progress(min(1.0, done / total), text=f"Predicting {test.n:,} digits… {done / total:.0%}")

    try:
        result = cache.predict(names, test, tta=tta, leakage=findings, allow_leakage=bool(findings),
                               progress=_progress)
    except (ValueError, OSError) as exc:
        bar.empty()
        st.error(f"Prediction failed: {exc}")
        st.stop()
    bar.empty()
    for name in names:
        model_cache.show_notice(model_cache.load(name))

prediction, done = result.prediction, result.done
labels, confidence = prediction.labels, prediction.confidence
answers = done.answers

# ---- the file
problems = submission.validate_submission(done.csv_bytes, test.n)
m1, m2, m3, m4 = st.columns(4)
m1.metric("Rows", f"{test.n:,}")
m2.metric("Models", len(prediction.models))
m3.metric("Mean confidence", f"{confidence.mean():.2%}")
if done.score is not None:
    m4.metric(f"Score (accuracy vs {answers.source} answers)", f"{done.score:.5f}")
else:
    m4.metric("Score", "unknown", help="The answers of this test set are not known here.")

if problems:
    for problem in problems:
        st.error(f"Invalid submission: {problem}")
else:
    st.success(
        f"Valid submission: header ImageId,Label, {test.n:,} rows, ImageId 1..{test.n:,} in order, "
        f"labels 0..9. Predicted in {prediction.seconds:.1f} s"
        f"{' with TTA' if prediction.tta else ''}. File fingerprint `{done.sidecar['file']['fingerprint']}`."
    )
st.download_button(
    "Download submission.csv", data=done.csv_bytes, file_name="submission.csv", mime="text/csv",
    key="submit_download", type="primary", icon="📥", disabled=bool(problems), on_click="ignore",
)
st.caption(f"A copy and its record: `{done.path.name}` and `{done.sidecar_path.name}` in data/submissions/.")

# ---- what the model made of the test set
left, right = st.columns(2)
try:
    train_labels = datasets.train_set().labels
except ValueError:
    train_labels = None
left.plotly_chart(charts.label_distribution_figure(labels, train_labels), key="submit_distribution")
correct = labels == answers.labels if answers is not None else None
right.plotly_chart(charts.confidence_histogram(confidence, correct), key="submit_confidence")
st.plotly_chart(
    charts.least_confident_figure(test.images, labels, confidence, k=GRID_SIZE,
                                  answers=answers.labels if answers is not None else None),
    key="submit_grid",
)

# ---- local leaderboard (only meaningful where the answers are known)
if answers is not None:
    st.subheader("Local leaderboard")
    st.caption("Submissions on this test set, best score first (data/submissions/leaderboard.jsonl).")
    rows = submission_records.leaderboard_rows(test.fingerprint)
    st.dataframe(
        rows, hide_index=True, key="submit_leaderboard",
        column_config=tables.number_columns({"score": "%.5f"}),
    )
