"""Draw: write a digit with the mouse (or upload a picture of one) and watch the model read it."""

from __future__ import annotations

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from core import data, jobs, preprocess, registry
from core.charts import draw as charts
from core.charts.common import digit_image
from studio import draw as helpers
from studio import guards, model_cache

CANVAS_SIDE = 280
UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]
DRAW, UPLOAD = "✏️ Draw", "🖼️ Upload a picture"

st.set_page_config(page_title="Draw · Digit Recognizer Studio", page_icon="✏️", layout="wide")
st.session_state.setdefault("draw_brush", 20)
st.session_state.setdefault("draw_canvas_n", 0)
st.session_state.setdefault("draw_input", DRAW)
if "draw_switch_to" in st.session_state:  # set by the fine-tune button, applied before the selectbox
    st.session_state["draw_model"] = st.session_state.pop("draw_switch_to")

st.title("✏️ Draw a digit")
choices = list(guards.require_models())
if st.session_state.get("draw_model") not in choices:
    st.session_state["draw_model"] = choices[0]  # the best saved model

left, right = st.columns([1, 1.35], gap="large")

with left:
    st.selectbox("Model", choices, key="draw_model", help="Saved models, best validation accuracy first.")
    st.radio("Input", [DRAW, UPLOAD], key="draw_input", horizontal=True, label_visibility="collapsed")
    source, name, preview = None, None, None
    if st.session_state["draw_input"] == DRAW:
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        c1.slider("Brush width", min_value=6, max_value=40, step=1, key="draw_brush")
        if c2.button("🧹 Clear", key="draw_clear", help="Start again with an empty canvas"):
            st.session_state["draw_canvas_n"] += 1  # a new canvas key: an empty canvas
        result = st_canvas(
            stroke_width=int(st.session_state["draw_brush"]),
            stroke_color="#FFFFFF",
            background_color="#000000",
            height=CANVAS_SIDE,
            width=CANVAS_SIDE,
            drawing_mode="freedraw",
            update_streamlit=True,
            return_image_data=True,
            key=f"draw_canvas_{st.session_state['draw_canvas_n']}",
        )
        st.caption("Draw one digit, big. Point at the canvas for its toolbar: ↶ undoes a stroke, 🗑 clears.")
        source = result.image_data
    else:
        upload = st.file_uploader(
            "A picture of one digit (a photo of paper works: dark ink on light, or light on dark)",
            type=UPLOAD_TYPES,
            key="draw_upload",
        )
        if upload is not None:
            source, name = upload.getvalue(), upload.name
            preview = st.empty()  # filled once the picture is known to be readable

try:
    model = model_cache.load(st.session_state["draw_model"])
except (ValueError, OSError) as exc:
    right.error(f"The model could not be loaded: {exc}")
    st.stop()

with right:
    model_cache.show_notice(model)
    if source is None:
        st.info("Draw a digit" if st.session_state["draw_input"] == DRAW else "Upload a picture of a digit")
        st.stop()
    try:
        steps, pred = helpers.read(model.name, source, name=name)
    except preprocess.BlankImageError:
        drawing = st.session_state["draw_input"] == DRAW
        st.info("Draw a digit" if drawing else "Nothing to read: the picture is blank")
        st.stop()
    except ValueError as exc:
        st.error(f"Could not read the picture: {exc}")
        st.stop()

    if preview is not None:
        preview.image(source, caption=name, width=CANVAS_SIDE)

    big, chart = st.columns([1, 2.2])
    with big:
        st.markdown(
            f'<div style="font-size:7rem;font-weight:700;line-height:1;text-align:center" '
            f'aria-label="predicted digit" title="predicted digit">{pred.label}</div>',
            unsafe_allow_html=True,
        )
        st.markdown(
            f'<div style="text-align:center">the model reads <b>{pred.label}</b>, '
            f"{pred.confidence:.1%} sure</div>",
            unsafe_allow_html=True,
        )
        if pred.confidence < 0.6:
            st.warning("Not sure: it could be another digit.")
    with chart:
        st.plotly_chart(charts.probability_bars(pred.probs), key="draw_probs")
        st.caption("Top 3: " + " · ".join(f"**{d}** {p:.1%}" for d, p in pred.top3))

    seen, teach = st.columns([1, 2.2])
    with seen:
        st.plotly_chart(digit_image(steps.centred, title="What the model saw", height=190), key="draw_seen")
    with teach:
        st.markdown("**Wrong? Teach the model.**")
        count = helpers.taught_count()
        t1, t2 = st.columns([1, 1], vertical_alignment="bottom")
        t1.selectbox("The right digit is", list(range(10)), index=pred.label, key="draw_true_label")
        if t2.button("💾 Save this digit", key="draw_save"):
            try:
                data.append_user_digit(steps.centred, int(st.session_state["draw_true_label"]))
            except (ValueError, OSError) as exc:
                st.error(f"Could not save the digit: {exc}")
                st.stop()
            count = helpers.taught_count()
            st.success(f"Saved as a {st.session_state['draw_true_label']}.")
        st.caption(f"Taught digits so far: **{count}** (saved in `data/user_digits.csv`, Kaggle format).")
        can_tune = model.kind == registry.KERAS
        if not can_tune:
            what = "a random forest" if model.kind == registry.SKLEARN else "an ensemble"
            st.info(f"{model.name} is {what}: fine-tuning works for single Keras models only.")
        if st.button(
            "🎓 Fine-tune on my digits",
            key="draw_finetune",
            disabled=not can_tune or count == 0,
            help="A few epochs on your digits mixed with training digits, in a job of its own; saved as "
                 "a new model.",
        ):
            try:
                st.session_state["draw_finetune_run"] = helpers.start_finetune(model, count)
            except (jobs.JobBusy, ValueError) as exc:
                st.error(f"Fine-tuning not started: {exc}")
        if st.session_state.get(helpers.FINETUNE_KEY):
            helpers.finetune_progress()  # it polls every second: only while this visitor's fine-tune runs
        if error := st.session_state.pop("draw_finetune_error", None):
            st.error(f"Fine-tuning failed: {error}. The model you had is unchanged.")
        done = st.session_state.get("draw_finetuned")
        if done and done["name"] == model.name:
            val = ""
            before, after = done.get("val_accuracy_before"), done.get("val_accuracy_after")
            if before is not None and after is not None:
                val = f"; validation accuracy {before:.2%} → {after:.2%}"
            st.success(
                f"Now using **{done['name']}** (fine-tuned from {done['base']} in {done['seconds']:.0f} s): "
                f"your {done['user_digits']} digits read right {done['user_accuracy_before']:.0%} → "
                f"{done['user_accuracy_after']:.0%}{val}."
            )

    with st.expander("How the picture became the model's 28x28 input"):
        st.plotly_chart(
            charts.steps_figure(
                {
                    "1. the ink": steps.grey,
                    "2. cropped": steps.cropped,
                    "3. fitted in 20×20": steps.fitted,
                    "4. centred in 28×28": steps.centred,
                }
            ),
            key="draw_steps",
        )
        st.caption(
            "As MNIST was made: 1. find the ink, bright on black"
            + (" (this picture was dark ink on light, so it was inverted)" if steps.inverted else "")
            + "; 2. crop to it; 3. scale its longer side to 20 pixels, keeping the shape (strokes "
            f"{steps.stroke_ratio:.0%} of its size here, brought towards MNIST's ~11%); 4. shift it "
            "so its centre of mass sits at the centre of the 28×28 frame."
        )
