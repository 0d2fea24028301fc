"""Digit Recognizer Studio — landing page: which data, which models, where to go next.

Thin by design: it reads `core` and renders. It never imports TensorFlow (a test checks).
"""

from pathlib import Path

import streamlit as st

from core import data, mnist_download, runs, status
from studio import datasets, guards, runs_ui

st.set_page_config(page_title="Digit Recognizer Studio", page_icon="✍️", layout="wide")

st.title("✍️ Digit Recognizer Studio")
st.caption(
    "Explore Kaggle's Digit Recognizer data (MNIST), train Keras models and watch them learn, "
    "find where they fail, draw digits for them to read, and export a valid submission.csv."
)

# ---- data
st.subheader("Data")
train, test = datasets.train_and_test()

files = datasets.files()
c1, c2, c3, c4 = st.columns(4)
c1.metric("Training digits", f"{train.n:,}")
c2.metric("Classes", int((train.class_counts() > 0).sum()))
c3.metric("Test digits", f"{test.n:,}" if test is not None else "—")
c4.metric("Source", train.source)
st.write(f"**Train:** {datasets.describe(train)}  \n**Test:** {datasets.describe(test)}")
if train.source == data.SOURCE_SAMPLE:
    st.info(
        "Using the committed sample (10,000 real MNIST digits split 9,000 train / 1,000 test, "
        "test answers kept aside for scoring). Put Kaggle's `train.csv` and `test.csv` "
        "(or `digit-recognizer.zip`) in `data/`, or upload them below."
    )
elif train.source == data.SOURCE_MNIST:
    st.warning(
        "Training on the full MNIST download. Kaggle's test digits are MNIST digits: models "
        "trained on it would score ~100% on Kaggle by leakage, so the Submit page refuses them."
    )

with st.expander("Bring your own data (upload Kaggle's train.csv / test.csv)"):
    st.caption("Uploads stay in your session only. Files up to 200 MB; csv or csv.gz.")
    for kind in ("train", "test"):
        up = st.file_uploader(f"{kind}.csv", type=["csv", "gz"], key=f"upload_{kind}_file")
        if up is not None:
            try:
                ds, changed = datasets.accept_upload(kind, up.getvalue(), up.name)
                if changed:
                    st.rerun()  # the Data section above must show the new file at once
                st.success(f"{kind}: {datasets.describe(ds)}")
            except ValueError as exc:
                st.error(f"{exc} — nothing was changed.")
    st.markdown(
        "**Full MNIST (70,000 digits, ~11 MB download).** Saved in `data/` in Kaggle's format and "
        "used when there is no `train.csv`. Models trained on it are flagged: Kaggle's test digits "
        "are MNIST digits, so their Kaggle score would be inflated by leakage."
    )
    if st.button("Download full MNIST", key="download_mnist"):
        try:
            with st.spinner("Downloading MNIST…"):
                path = mnist_download.download_mnist(mnist_download.MNIST_URL)
            st.success(f"Saved {path.name}. It is used when `data/train.csv` is absent.")
        except ValueError as exc:
            st.error(f"{exc} — nothing was changed.")
    if st.button("Use the files in data/ again", key="forget_uploads"):
        datasets.forget_uploads()
        st.rerun()

# ---- runs
st.subheader("Runs and saved models")
views = runs.list_runs()
if not views:
    st.info(guards.NO_MODEL)
else:
    runs_ui.runs_table(views, key="home_runs", best_first=True)
    if any(v.status == status.INTERRUPTED for v in views):
        st.caption(
            "**interrupted**: the training process was killed before the end. The epoch it had "
            "saved is kept and can be evaluated and used like any other model."
        )

# ---- where next
st.subheader("Where next")
cols = st.columns(5)
pages = [
    ("pages/1_🔍_Explore.py", "Explore", "class balance, digit grids, PCA/t-SNE maps, data checks"),
    ("pages/2_🏋️_Train.py", "Train", "train Keras CNNs or a RandomForest, live curves"),
    ("pages/3_📊_Evaluate.py", "Evaluate", "confusion matrix, mistakes, calibration, comparison"),
    ("pages/4_✏️_Draw.py", "Draw", "draw a digit and watch the model read it"),
    ("pages/5_📤_Submit.py", "Submit", "predict test.csv, download submission.csv"),
]
here = Path(__file__).parent
for col, (path, label, blurb) in zip(cols, pages, strict=True):
    with col:
        if (here / path).is_file():
            st.page_link(path, label=label)
        else:
            st.markdown(f"**{label}** (not installed)")
        st.caption(blurb)
