"""The Draw page under AppTest: the canvas sends nothing here, so pictures go in through the upload."""

from __future__ import annotations

import csv
import time

import draw_support
import numpy as np
import pytest
from app_support import app
from streamlit.testing.v1 import AppTest

from core import inference, prediction, registry
from studio import guards

UPLOAD = "🖼️ Upload a picture"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with draw_support.private_env(tmp_path_factory, "drawpage") as dirs:
        model = prediction.load(dirs.name)
        # A redrawn held-out digit the model reads right (the page must show that digit).
        canvases, labels = draw_support.redrawn(20, seed=11)
        for rgba, label in zip(canvases, labels, strict=True):
            if inference.read_digit(model, rgba)[1].label == label:
                dirs.png, dirs.label = draw_support.png_bytes(rgba), int(label)
                break
        yield dirs


def _app() -> AppTest:
    at = app("Draw")
    at.run()
    assert not at.exception, at.exception
    return at


def _upload(at: AppTest, payload: bytes, name: str = "digit.png") -> AppTest:
    at.radio(key="draw_input").set_value(UPLOAD).run()
    at.file_uploader(key="draw_upload").upload(name, payload, "image/png")
    at.run()
    assert not at.exception, at.exception
    return at


def _shown_digit(at: AppTest) -> str | None:
    """The big predicted digit (None when no prediction is shown)."""
    for m in at.markdown:
        if 'aria-label="predicted digit"' in m.value:
            return m.value.split(">")[1].split("<")[0]
    return None


def test_no_model_says_so(tmp_dirs):
    at = app("Draw").run()
    assert not at.exception
    assert [i.value for i in at.info] == [guards.NO_MODEL]


@pytest.mark.slow  # its module's Keras model is trained here
def test_empty_canvas_asks_for_a_digit_not_a_guess(env):
    at = _app()
    assert at.selectbox(key="draw_model").value == env.name
    assert [i.value for i in at.info] == ["Draw a digit"]
    assert _shown_digit(at) is None  # no prediction shown


@pytest.mark.slow  # its module's Keras model is trained here
def test_uploaded_digit_is_read_and_shown(env):
    at = _upload(_app(), env.png)
    assert _shown_digit(at) == str(env.label)
    assert any(f"the model reads <b>{env.label}</b>" in m.value for m in at.markdown)
    assert any(c.value.startswith("Top 3: ") and f"**{env.label}**" in c.value for c in at.caption)
    assert not at.error


@pytest.mark.slow  # its module's Keras model is trained here
def test_not_an_image_gives_one_error_line(env):
    at = _upload(_app(), b"GIF89a but not really", name="broken.png")
    assert len(at.error) == 1
    assert "Could not read the picture" in at.error[0].value and "broken.png" in at.error[0].value
    assert _shown_digit(at) is None


@pytest.mark.slow  # its module's Keras model is trained here
def test_blank_upload_is_not_guessed(env):
    at = _upload(_app(), draw_support.png_bytes(np.zeros((100, 100), dtype=np.uint8)), name="black.png")
    assert any("Nothing to read" in i.value for i in at.info)
    assert _shown_digit(at) is None


@pytest.mark.slow  # its module's Keras model is trained here
def test_saving_a_taught_digit_appends_it(env):
    at = _upload(_app(), env.png)
    wrong = (env.label + 1) % 10
    at.selectbox(key="draw_true_label").set_value(wrong)
    at.button(key="draw_save").click().run()
    assert not at.exception
    with open(env.data / "user_digits.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:2] == ["label", "pixel0"] and len(rows[0]) == 785
    assert len(rows) == 2 and rows[1][0] == str(wrong)
    assert any("Taught digits so far: **1**" in c.value for c in at.caption)
    assert any(f"Saved as a {wrong}" in s.value for s in at.success)


@pytest.mark.slow  # its module's Keras model is trained here
def test_random_forest_cannot_be_fine_tuned(env, tmp_path_factory):
    name = draw_support.small_model(
        env.model_cache, env.models, arch="random-forest",
        name="draw-forest", n_estimators=20,
    )
    at = _app()
    at.selectbox(key="draw_model").set_value(name).run()
    at = _upload(at, env.png)
    assert at.button(key="draw_finetune").disabled
    assert any("random forest" in i.value for i in at.info)
    registry.delete_model(name)


@pytest.mark.slow  # its module's Keras model is trained here
def test_the_fine_tune_poll_runs_only_while_a_fine_tune_does(env, monkeypatch):
    """The progress fragment reruns every second: a page showing a digit must not start it for nothing."""
    from studio import draw as helpers

    calls = []
    monkeypatch.setattr(helpers, "finetune_progress", lambda: calls.append(1))
    at = _upload(_app(), env.png)
    assert _shown_digit(at) == str(env.label)
    assert calls == []
    at.session_state[helpers.FINETUNE_KEY] = "a-run"
    at.run()
    assert not at.exception, at.exception
    assert calls == [1]


@pytest.mark.slow
def test_fine_tune_button_teaches_and_switches_to_the_new_model(env):
    at = _upload(_app(), env.png)
    at.selectbox(key="draw_true_label").set_value(env.label)
    at.button(key="draw_save").click().run()
    assert not at.button(key="draw_finetune").disabled
    at.button(key="draw_finetune").click().run()
    assert not at.exception, at.exception
    taught = f"{env.name}-taught"
    assert registry.read_meta(taught)["job"] == {"kind": "finetune", "base": env.name}  # a job of its own
    deadline = time.monotonic() + 180
    while at.selectbox(key="draw_model").value != taught and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()  # as the progress fragment's timer does
    assert not at.exception, at.exception
    assert at.selectbox(key="draw_model").value == taught
    assert (env.models / taught / "model.keras").is_file()
    assert any(s.value.startswith(f"Now using **{taught}**") for s in at.success)
    assert _shown_digit(at) is not None  # the same picture, read again by the new model
    registry.delete_model(taught)


@pytest.mark.slow  # its module's Keras model is trained here
def test_a_serving_copy_that_does_not_match_its_model_is_made_again_and_the_page_says_so(env):
    import json

    import streamlit as st

    from core import serving

    sidecar_path = env.models / env.name / serving.EXPORT_FILE
    sidecar = json.loads(sidecar_path.read_text())
    sidecar_path.write_text(json.dumps({**sidecar, "keras_digest": "0" * 32}))
    st.cache_resource.clear()  # as after a server restart
    at = _app()
    notes = [i.value for i in at.info if i.value.startswith("Note:")]
    assert notes == [f"Note: {env.name}: model.tflite was made from another model.keras: it was made again "
                     "from model.keras."]
    at = _upload(at, env.png)
    assert _shown_digit(at) == str(env.label)  # and the digit is read as before
    assert not [i for i in at.info if i.value.startswith("Note:")]  # said once, not on every rerun
    assert serving.is_current(env.models / env.name)
