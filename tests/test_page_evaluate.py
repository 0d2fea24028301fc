"""The Evaluate page under AppTest, with two tiny models trained into a private models folder:
the numbers it shows must equal the evaluation computed here on the same digits."""

from __future__ import annotations

import numpy as np
import pytest
from app_support import app, chart_spec, figure_array
from streamlit.testing.v1 import AppTest

from core import data, eval_rows, evaluation, job_process, jobs, kaggle_csv, prediction, registry
from studio import guards

pytestmark = pytest.mark.slow  # the page's models are trained here, a Keras MLP among them

N_ROWS = 1000  # the first 1,000 sample digits: the models' training data


@pytest.fixture(scope="module")
def env(tmp_path_factory, sample_train):
    """data/train.csv (1,000 sample digits), a 1-epoch MLP and a 10-tree forest trained on it."""
    from core import training

    base = tmp_path_factory.mktemp("evaluate-page")
    dirs = {k: base / k for k in ("data", "models", "cache", "empty")}
    for folder in dirs.values():
        folder.mkdir()
    path = kaggle_csv.write_kaggle_csv(dirs["data"] / "train.csv", sample_train.images[:N_ROWS],
                                 sample_train.labels[:N_ROWS])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRS_DATA_DIR", str(dirs["data"]))
        mp.setenv("DRS_MODELS_DIR", str(dirs["models"]))
        mp.setenv("DRS_CACHE_DIR", str(dirs["cache"]))
        ds = data.load_csv(path, expect_labels=True, source_kind=data.SOURCE_KAGGLE)
        for config in (training.TrainConfig(arch="mlp", epochs=1, name="tiny-mlp"),
                       training.TrainConfig(arch="random-forest", n_estimators=10, name="tiny-rf")):
            name = jobs.enqueue(config, jobs.DataRef.of(ds, path), owner="tests")
            assert job_process.run(name) is not None, registry.read_meta(name).get("error")
        yield {"ds": ds, **dirs}


def expected(name: str, ds: data.Dataset) -> evaluation.Evaluation:
    """The evaluation computed independently of the page: the model's validation split, predicted."""
    model = prediction.load(name)
    images, labels = eval_rows.validation_set(model.meta, ds)
    return evaluation.evaluate(labels, model.predict_proba(images))


def run_page(model: str = "tiny-mlp", **state) -> AppTest:
    return app("Evaluate", eval_model=model, **state).run()


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_metrics_are_those_of_the_validation_split(env):
    at = run_page()
    assert not at.exception
    want = expected("tiny-mlp", env["ds"])
    assert want.n == 100
    assert metrics(at) == {
        "Accuracy": f"{want.accuracy:.2%}",
        "Log loss": f"{want.log_loss:.4f}",
        "Calibration error (ECE)": f"{want.ece:.4f}",
        "Mistakes": f"{want.n_errors:,}",
        "Digits evaluated": "100",
    }
    low, high = evaluation.accuracy_interval(100 - want.n_errors, 100)
    accuracy = next(m for m in at.metric if m.label == "Accuracy")
    assert accuracy.delta == f"95%: {100 * low:.2f}–{100 * high:.2f}%"
    assert high - low > 0.05  # 100 digits: a wide interval
    note = "the 100 digits of train.csv held out for validation when 'tiny-mlp' was trained"
    assert note in at.caption[0].value
    cm = chart_spec(at, "eval_confusion")
    cells = next(t for t in cm["data"] if t["type"] == "scatter")
    custom = figure_array(cells["customdata"])
    assert custom.shape == (100, 4) and custom[33, 2] == want.confusion[3, 3]
    texts = np.asarray(cm["data"][0]["text"])
    assert texts[3, 3] == (f"{want.confusion[3, 3]:,}" if want.confusion[3, 3] else "")
    assert at.radio(key="eval_data").options == ["The model's unseen digits of the training data"]
    # The predictions are kept on disk too, so a restarted server does not predict again.
    saved = list((env["cache"] / "predictions").glob("tiny-mlp@*.npy"))
    assert len(saved) == 1
    np.testing.assert_allclose(np.load(saved[0]), want.proba, atol=1e-6)


def test_tta_toggle_scores_the_rotated_views_and_keeps_both(env):
    """With the toggle on, every number is that of the probabilities averaged over the TTA views
    (what Submit would write); both sets of predictions stay saved, neither replaces the other."""
    model = prediction.load("tiny-mlp")
    images, labels = eval_rows.validation_set(model.meta, env["ds"])
    want = evaluation.evaluate(labels, prediction.predict_proba(model, images, tta=True))
    plain = expected("tiny-mlp", env["ds"])
    assert want.log_loss != pytest.approx(plain.log_loss)  # the views change the probabilities
    assert metrics(run_page())["Log loss"] == f"{plain.log_loss:.4f}"
    at = run_page(eval_tta=True)
    assert not at.exception
    assert metrics(at)["Log loss"] == f"{want.log_loss:.4f}"
    assert metrics(at)["Accuracy"] == f"{want.accuracy:.2%}"
    assert f"each read {len(prediction.TTA_VIEWS)} ways (test-time augmentation)" in at.caption[0].value
    saved = sorted(p.name for p in (env["cache"] / "predictions").glob("tiny-mlp@*.npy"))
    assert len(saved) == 2 and sum(n.endswith("-tta.npy") for n in saved) == 1, saved
    at = run_page(eval_tta=True, eval_tab="Compare models")
    table = at.dataframe[0].value.set_index("model")
    assert table.loc["tiny-mlp", "log loss"] == pytest.approx(want.log_loss, abs=1e-5)
    assert metrics(run_page())["Log loss"] == f"{plain.log_loss:.4f}"  # off again: the plain figures
    assert len(list((env["cache"] / "predictions").glob("tiny-mlp@*.npy"))) == 2


def test_pair_picker_shows_that_cell_with_probabilities(env):
    want = expected("tiny-mlp", env["ds"])
    t, p, count = evaluation.confusion_pairs(want.confusion)[0]
    at = run_page()
    picker = at.selectbox(key="eval_pair")
    assert picker.value is None and f"true {t} → predicted {p} ({count:,} digits)" in picker.options
    picker.set_value((t, p)).run()
    assert not at.exception
    assert any(m.value.startswith(f"**True {t}, predicted {p}: {count:,} digits**") for m in at.markdown)
    gallery = chart_spec(at, "eval_pair_digits")
    found = evaluation.pair_indices(want.labels, want.proba, t, p)
    first = found[0]
    caption = f"{p}: {want.proba[first, p]:.0%} · {t}: {want.proba[first, t]:.0%}"
    assert [a["text"] for a in gallery["layout"]["annotations"]][0] == caption
    assert len(gallery["layout"]["annotations"]) == min(count, 40)
    # The chosen cell is outlined on the matrix.
    shape = chart_spec(at, "eval_confusion")["layout"]["shapes"][0]
    assert (shape["x0"], shape["y0"]) == (p - 0.5, t - 0.5)


def test_row_normalised_toggle(env):
    want = expected("tiny-mlp", env["ds"])
    at = run_page(eval_cm_mode="share of each true digit")
    spec = chart_spec(at, "eval_confusion")
    assert "share of each true digit" in spec["layout"]["title"]["text"]
    d = int(np.argmax(np.diag(want.confusion)))
    share = want.confusion[d, d] / want.confusion[d].sum()
    assert np.asarray(spec["data"][0]["text"])[d, d] == f"{share:.1%}"


def test_tabs_show_the_same_numbers(env):
    want = expected("tiny-mlp", env["ds"])
    at = run_page(eval_tab="Per digit")
    table = at.dataframe[0].value
    np.testing.assert_allclose(table.f1, want.per_class.f1)
    assert table.support.tolist() == want.per_class.support.tolist()

    at.session_state["eval_tab"] = "Mistakes"
    at.run()
    shown = min(30, want.n_errors)
    assert any(f"The {shown} most confident of {want.n_errors:,} mistakes" in m.value for m in at.markdown)
    worst = evaluation.confident_mistakes(want.labels, want.proba, k=30)[0]
    first = chart_spec(at, "eval_mistakes")["layout"]["annotations"][0]["text"]
    assert first == f"{want.labels[worst]}→{want.pred[worst]} {want.confidence[worst]:.0%}"

    at.session_state["eval_tab"] = "Calibration"
    at.run()
    assert at.caption[-1].value.startswith(f"Expected calibration error with 15 bins: {want.ece:.4f}.")

    at.session_state["eval_tab"] = "Training history"
    at.run()
    history = chart_spec(at, "eval_history")
    val = next(t for t in history["data"] if t["name"] == "validation")
    assert figure_array(val["y"])[0] == pytest.approx(registry.read_history("tiny-mlp")[0]["val_loss"])
    assert not at.exception


def test_compare_models_on_common_digits(env):
    ds = env["ds"]
    at = run_page(eval_tab="Compare models")
    assert not at.exception
    assert at.multiselect(key="eval_compare").value == ["tiny-mlp", "tiny-rf"]  # the forest baseline
    a, b = expected("tiny-mlp", ds), expected("tiny-rf", ds)  # same seed: the same validation split
    np.testing.assert_array_equal(a.labels, b.labels)
    table = at.dataframe[0].value.set_index("model")
    assert table.loc["tiny-mlp", "accuracy"] == pytest.approx(a.accuracy)
    assert table.loc["tiny-rf", "accuracy"] == pytest.approx(b.accuracy)
    assert table.loc["tiny-rf", "errors"] == b.n_errors
    differ = int((a.pred != b.pred).sum())
    assert any(m.value.startswith(f"**The models disagree on {differ:,} of 100 digits") for m in at.markdown)
    assert "intersection of their validation splits" in at.caption[1].value


def test_query_parameter_picks_the_model(env):
    at = app("Evaluate")
    at.query_params["model"] = "tiny-rf"
    at.run()
    assert at.selectbox(key="eval_model").value == "tiny-rf"
    assert metrics(at)["Accuracy"] == f"{expected('tiny-rf', env['ds']).accuracy:.2%}"


def test_data_the_model_trained_on_is_refused_and_test_answers_offered(env, monkeypatch, sample_test,
                                                                         sample_answers):
    monkeypatch.setenv("DRS_DATA_DIR", str(env["empty"]))  # the committed sample: 9,000 + 1,000 digits
    at = run_page()
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert "900 of the 9,000 digits in train.csv.gz are among the digits model 'tiny-mlp' trained" in message
    assert not at.metric
    at.radio(key="eval_data").set_value("The test digits with known answers").run()
    assert not at.exception and not at.error
    model = prediction.load("tiny-mlp")
    want = evaluation.evaluate(sample_answers, model.predict_proba(sample_test.images))
    assert metrics(at)["Accuracy"] == f"{want.accuracy:.2%}"
    assert metrics(at)["Digits evaluated"] == "1,000"
    assert "all 1,000 digits of test.csv.gz (with answers)" in at.caption[0].value


def test_without_models_the_page_says_what_to_do(env, monkeypatch):
    monkeypatch.setenv("DRS_MODELS_DIR", str(env["empty"]))
    at = app("Evaluate").run()
    assert not at.exception
    assert [i.value for i in at.info] == [guards.NO_MODEL]
