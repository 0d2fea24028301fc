"""core.submission: the file format and every way it goes wrong, prediction (ensembles, TTA),
scoring, the leakage guard, sidecars and the local leaderboard. Models are trained into
temporary folders; the shipped models/default-cnn is only read (and only if it is there)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from core import data, kaggle_csv, leakage, paths, prediction, registry, submission
from core import submission_records as records
from core.charts import submission as charts

MLP_BOUND = 0.88  # two mlp epochs on the sample score 0.935 on its test digits (measured); margin
DEFAULT_CNN_BOUND = 0.98  # the shipped default CNN on the sample's test digits
SHIPPED_ENSEMBLE = "sample-drv"
SHIPPED_ENSEMBLE_BOUND = 0.99  # the shipped ensemble on the same 1,000 digits
N = 5  # rows of the small hand-written submissions below


@pytest.fixture
def env(tiny_models_env):
    """Private data/cache folders and a private copy of the tiny models: `mlp-a` (Keras, 2 epochs on
    the sample) and `forest` (10 trees); see conftest."""
    return tiny_models_env


SAMPLE_TEST = paths.sample_dir() / "test.csv.gz"


# --------------------------------------------------------------------------- the file format


def test_build_submission_is_kaggle_format():
    frame = submission.build_submission(np.array([3, 0, 9, 1]))
    assert list(frame.columns) == ["ImageId", "Label"]
    assert frame["ImageId"].tolist() == [1, 2, 3, 4]
    assert frame["Label"].tolist() == [3, 0, 9, 1]
    assert submission.submission_bytes(frame) == b"ImageId,Label\n1,3\n2,0\n3,9\n4,1\n"
    assert submission.validate_submission(frame, 4) == []
    assert submission.validate_submission(submission.submission_bytes(frame), 4) == []


def test_the_file_written_without_pandas_is_the_frames_byte_for_byte():
    labels = np.random.default_rng(0).integers(0, 10, 28_000)
    frame = submission.build_submission(labels)
    assert submission.labels_csv(labels) == submission.submission_bytes(frame)
    assert submission.labels_csv(np.array([7], dtype=np.uint8)) == b"ImageId,Label\n1,7\n"


@pytest.mark.parametrize("labels", [np.array([1, 10]), np.array([-1, 2]), np.array([1.5, 2.0]), np.array([])])
def test_build_submission_refuses_bad_labels(labels):
    with pytest.raises(ValueError):
        submission.build_submission(labels)
    with pytest.raises(ValueError):
        submission.labels_csv(labels)


def _csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


GOOD_ROWS = [f"{i},{(i * 3) % 10}" for i in range(1, N + 1)]

BAD_SUBMISSIONS = [
    ("empty file", b"", "the file is empty"),
    ("only whitespace", b"\n\n  \n", "the file is empty"),
    ("byte-order mark", b"\xef\xbb\xbf" + _csv("ImageId,Label", *GOOD_ROWS), "byte-order mark"),
    ("gzip", gzip.compress(_csv("ImageId,Label", *GOOD_ROWS)), "compressed"),
    ("not utf-8", b"ImageId,Label\n1,\xff\xfe\n", "not UTF-8"),
    ("semicolons", _csv("ImageId;Label", *[r.replace(",", ";") for r in GOOD_ROWS]), "semicolons"),
    ("no header", _csv(*GOOD_ROWS), "no header row"),
    ("missing Label", _csv("ImageId", *[str(i) for i in range(1, N + 1)]), "missing column 'Label'"),
    ("missing ImageId", _csv("Label", *["1"] * N), "missing column 'ImageId'"),
    ("extra column", _csv("ImageId,Label,Confidence", *[r + ",0.9" for r in GOOD_ROWS]),
     "unexpected extra column 'Confidence'"),
    ("index column", _csv(",ImageId,Label", *[f"{i - 1},{r}" for i, r in enumerate(GOOD_ROWS, 1)]),
     "unexpected extra column ''"),
    ("wrong case", _csv("imageid,label", *GOOD_ROWS), "'imageid' must be spelled exactly 'ImageId'"),
    ("wrong order", _csv("Label,ImageId", *GOOD_ROWS), "wrong order"),
    ("duplicated column", _csv("ImageId,Label,Label", *[r + ",1" for r in GOOD_ROWS]), "appears twice"),
    ("too few rows", _csv("ImageId,Label", *GOOD_ROWS[:-1]), "has 4 rows, expected 5"),
    ("too many rows", _csv("ImageId,Label", *GOOD_ROWS, "6,1"), "has 6 rows, expected 5"),
    ("ImageId from 0", _csv("ImageId,Label", *[f"{i - 1},1" for i in range(1, N + 1)]),
     "row 1 has ImageId 0, expected 1"),
    ("ImageId shuffled", _csv("ImageId,Label", "2,1", "1,1", "3,1", "4,1", "5,1"),
     "row 1 has ImageId 2, expected 1"),
    ("ImageId duplicated", _csv("ImageId,Label", "1,1", "2,1", "2,1", "4,1", "5,1"),
     "ImageId 2 appears 2 times"),
    ("ImageId float", _csv("ImageId,Label", "1.0,1", *GOOD_ROWS[1:]), "ImageId is a float, not an integer"),
    ("ImageId text", _csv("ImageId,Label", "a,1", *GOOD_ROWS[1:]), "ImageId is not a number"),
    ("Label float", _csv("ImageId,Label", "1,3.0", *GOOD_ROWS[1:]), "Label is a float, not an integer"),
    ("Label fraction", _csv("ImageId,Label", "1,3.5", *GOOD_ROWS[1:]), "Label is not a whole number"),
    ("Label text", _csv("ImageId,Label", "1,seven", *GOOD_ROWS[1:]), "Label is not a number"),
    ("Label 10", _csv("ImageId,Label", "1,1", "2,10", *GOOD_ROWS[2:]), "Label 10 in row 2 is out of range"),
    ("Label -1", _csv("ImageId,Label", "1,-1", *GOOD_ROWS[1:]), "Label -1 in row 1 is out of range"),
    ("Label empty", _csv("ImageId,Label", "1,", *GOOD_ROWS[1:]), "Label is empty or NaN in row 1"),
    ("Label NaN", _csv("ImageId,Label", "1,NaN", *GOOD_ROWS[1:]), "Label is empty or NaN in row 1"),
    ("three values", _csv("ImageId,Label", "1,1,1", *GOOD_ROWS[1:]), "row 1: expected 2 values"),
    ("one value", _csv("ImageId,Label", "1", *GOOD_ROWS[1:]), "row 1: expected 2 values"),
    ("frame with float labels", pd.DataFrame({"ImageId": range(1, N + 1), "Label": [1.0] * N}),
     "Label is a float, not an integer"),
    ("frame with NaN label", pd.DataFrame({"ImageId": range(1, N + 1), "Label": [1, np.nan, 2, 3, 4]}),
     "Label is empty or NaN in row 2"),
    ("frame with ImageId as index",
     pd.DataFrame({"Label": [1] * N}, index=pd.Index(range(1, N + 1), name="ImageId")),
     "missing column 'ImageId'"),
    ("frame with labels as text", pd.DataFrame({"ImageId": range(1, N + 1), "Label": ["one"] * N}),
     "Label is not a number"),
]


@pytest.mark.parametrize(("payload", "fragment"), [(p, f) for _, p, f in BAD_SUBMISSIONS],
                         ids=[name for name, _, _ in BAD_SUBMISSIONS])
def test_validate_submission_catches_each_kind_of_wrong_file(payload, fragment):
    problems = submission.validate_submission(payload, N)
    assert problems, "a bad file passed validation"
    assert any(fragment in p for p in problems), problems


def test_validate_submission_accepts_valid_file_in_any_form():
    good = _csv("ImageId,Label", *GOOD_ROWS)
    assert submission.validate_submission(good, N) == []
    assert submission.validate_submission(good.decode(), N) == []
    assert submission.validate_submission(good.replace(b"\n", b"\r\n"), N) == []
    assert submission.validate_submission(good.rstrip(b"\n"), N) == []  # no final newline


def test_validate_submission_counts_every_bad_row_once_per_kind():
    rows = ["ImageId,Label"] + [f"{i},{10 + i}" for i in range(1, 101)]
    problems = submission.validate_submission(_csv(*rows), 100)
    assert len(problems) == 1
    assert "Label 11 in rows 1, 2, 3, …" in problems[0] and "100 such row(s)" in problems[0]


# --------------------------------------------------------------------------- prediction


def test_predict_sample_with_mlp_beats_bound(env, sample_test, sample_answers):
    model = prediction.load("mlp-a")
    seen: list[tuple[int, int]] = []
    pred = submission.predict([model], sample_test.images, progress=lambda d, t: seen.append((d, t)))
    assert pred.probs.shape == (1000, 10) and pred.probs.dtype == np.float32
    np.testing.assert_allclose(pred.probs.sum(axis=1), 1.0, atol=1e-4)
    accuracy = submission.accuracy_score(pred.labels, sample_answers)
    assert accuracy > MLP_BOUND
    assert seen == [(1000, 1000)]  # one chunk (core.prediction's own tests check the chunking)
    np.testing.assert_allclose(pred.probs, model.predict_proba(sample_test.images), atol=1e-5)


def test_predict_to_file_scores_the_sample(env, sample_answers):
    out = env.data / "out" / "submission.csv"
    out.parent.mkdir()
    summary = submission.predict_to_file(SAMPLE_TEST, model_names=None, out=out, tta=False,
                                         allow_leakage=False)
    written = pd.read_csv(out)
    assert list(written.columns) == ["ImageId", "Label"]
    assert written["ImageId"].tolist() == list(range(1, 1001))
    expected = float((written["Label"].to_numpy() == sample_answers).mean())
    assert summary["models"] == ["mlp-a"]  # the best saved model by validation accuracy
    assert summary["rows"] == 1000 and summary["answers"] == "sample"
    assert summary["score"] == pytest.approx(expected) and expected > MLP_BOUND
    assert sorted(p.name for p in out.parent.iterdir()) == ["submission.csv", "submission.json"]


def test_default_cnn_accuracy_on_sample(monkeypatch, sample_test, sample_answers):
    if not (paths.ROOT / "models" / "default-cnn" / "meta.json").is_file():
        pytest.skip("models/default-cnn is not committed yet")
    monkeypatch.setenv("DRS_MODELS_DIR", str(paths.ROOT / "models"))
    model = prediction.load("default-cnn")
    pred = submission.predict([model], sample_test.images)
    assert submission.accuracy_score(pred.labels, sample_answers) >= DEFAULT_CNN_BOUND
    assert leakage.check_leakage(["default-cnn"], sample_test.images) == []


def test_shipped_ensemble_beats_the_shipped_cnn_on_sample(monkeypatch, sample_test, sample_answers):
    """The shipped sample-drv ensemble (five dr-v CNNs trained on the sample) is one model
    everywhere, never refused for leakage on the sample's held-out digits, and reads them better
    than default-cnn (on the 18,000-digit holdout: README)."""
    if not (paths.ROOT / "models" / SHIPPED_ENSEMBLE / "meta.json").is_file():
        pytest.skip(f"models/{SHIPPED_ENSEMBLE} is not committed")
    monkeypatch.setenv("DRS_MODELS_DIR", str(paths.ROOT / "models"))
    ensemble = prediction.load(SHIPPED_ENSEMBLE)
    assert ensemble.kind == registry.ENSEMBLE and len(ensemble.meta["members"]) == 5
    pred = submission.predict([ensemble], sample_test.images)
    single = submission.predict([prediction.load("default-cnn")], sample_test.images)
    assert submission.accuracy_score(pred.labels, sample_answers) >= SHIPPED_ENSEMBLE_BOUND
    assert submission.accuracy_score(pred.labels, sample_answers) > submission.accuracy_score(
        single.labels, sample_answers)
    assert leakage.check_leakage([SHIPPED_ENSEMBLE], sample_test.images) == []


def test_ensemble_averages_probabilities(env, sample_test):
    mlp, forest = prediction.load("mlp-a"), prediction.load("forest")
    pred = submission.predict([mlp, forest], sample_test.images)
    manual = (mlp.predict_proba(sample_test.images) + forest.predict_proba(sample_test.images)) / 2
    np.testing.assert_allclose(pred.probs, manual, atol=1e-5)
    assert pred.models == ("mlp-a", "forest")
    # The mean is neither model: somewhere the two disagree and the ensemble follows one of them.
    assert not np.allclose(pred.probs, mlp.predict_proba(sample_test.images), atol=1e-3)


def test_tta_views_and_prediction(env, sample_test, sample_answers):
    images = sample_test.images[:50]
    plain = prediction.views(images, tta=False)
    views = prediction.views(images, tta=True)
    assert len(plain) == 1 and len(views) == len(prediction.TTA_VIEWS) == 3
    np.testing.assert_array_equal(views[0], images.astype(np.float32))
    for view in views[1:]:
        assert view.shape == images.shape and view.min() >= 0 and view.max() <= 255
        assert not np.allclose(view, views[0])  # rotated: the ink moved
        # About the centre: the ink's centre of mass hardly moves, its amount is kept within 10%.
        assert abs(view.sum() / views[0].sum() - 1) < 0.1
    # Exactly scipy's bilinear rotation (the sparse matrix is only a faster way to apply it).
    from scipy import ndimage

    expected = ndimage.rotate(images.astype(np.float32), 8.0, axes=(2, 1), reshape=False, order=1)
    np.testing.assert_allclose(views[2], np.clip(expected, 0, 255), atol=1e-3)

    model = prediction.load("mlp-a")
    pred = submission.predict([model], sample_test.images, tta=True)
    manual = np.mean([model.predict_proba(v) for v in prediction.views(sample_test.images, tta=True)],
                     axis=0)
    np.testing.assert_allclose(pred.probs, manual, atol=1e-5)
    assert submission.accuracy_score(pred.labels, sample_answers) > MLP_BOUND - 0.02


def test_predict_refuses_bad_input(env):
    model = prediction.load("forest")
    with pytest.raises(ValueError, match="at least one model"):
        submission.predict([], np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ValueError, match=r"shape \(n, 28, 28\)"):
        submission.predict([model], np.zeros((2, 784), np.uint8))
    with pytest.raises(ValueError, match="no saved model"):
        submission.predict_to_file(SAMPLE_TEST, model_names=["nope"], out=env.data / "s.csv", tta=False,
                                   allow_leakage=False)
    with pytest.raises(ValueError, match="must be a .csv"):
        submission.predict_to_file(SAMPLE_TEST, model_names=None, out=env.data / "s.json", tta=False,
                                   allow_leakage=False)
    with pytest.raises(ValueError, match="training file"):
        submission.predict_to_file(paths.sample_dir() / "train.csv.gz", model_names=None,
                                   out=env.data / "s.csv", tta=False, allow_leakage=False)
    assert not (env.data / "s.csv").exists()


# --------------------------------------------------------------------------- answers


def test_known_answers_sample_and_mnist_download(tmp_dirs, sample_test, sample_answers, sample_train):
    found = submission.known_answers(sample_test)
    assert found is not None and found.source == "sample"
    np.testing.assert_array_equal(found.labels, sample_answers)

    # A "Kaggle" test set: some sample test digits, shuffled; their labels are in an MNIST download.
    order = np.random.default_rng(1).permutation(1000)[:300]
    kaggle_like = data.Dataset(sample_test.images[order], None, "test.csv", "kaggle",
                               data.fingerprint(sample_test.images[order]))
    assert submission.known_answers(kaggle_like) is None  # no download yet
    mnist_images = np.concatenate([sample_train.images[:500], sample_test.images])
    mnist_labels = np.concatenate([sample_train.labels[:500], sample_answers])
    kaggle_csv.write_kaggle_csv(tmp_dirs.data / "mnist-full.csv", mnist_images, mnist_labels)
    found = submission.known_answers(kaggle_like)
    assert found is not None and found.source == "mnist-download"
    np.testing.assert_array_equal(found.labels, sample_answers[order])

    unknown = data.Dataset(sample_train.images[600:610], None, "x", "kaggle", "f")
    assert submission.known_answers(unknown) is None  # digits not in the download
    # Hashes the caller already has are used as they are.
    given = submission.known_answers(kaggle_like, test_hashes=data.row_hashes(kaggle_like.images))
    np.testing.assert_array_equal(given.labels, sample_answers[order])


def test_predict_to_file_hashes_the_test_rows_once(tmp_dirs, sample_train, sample_test, sample_answers,
                                                   save_forest, monkeypatch):
    # A Kaggle-like test file whose digits are all in an MNIST download, and a model that recorded
    # its training digits: the leakage check and the answers both need the test rows' hashes.
    order = np.random.default_rng(2).permutation(1000)[:300]
    test_path = kaggle_csv.write_kaggle_csv(tmp_dirs.data / "kaggle-test.csv", sample_test.images[order])
    kaggle_csv.write_kaggle_csv(tmp_dirs.data / "mnist-full.csv", sample_test.images, sample_answers)
    save_forest("f", sample_train.images[:500], sample_train.labels[:500], n_estimators=5)
    hashed: list[int] = []
    real = data.row_hashes

    def counting(images):
        hashed.append(len(images))
        return real(images)

    monkeypatch.setattr(data, "row_hashes", counting)
    summary = submission.predict_to_file(test_path, model_names=["f"], out=tmp_dirs.data / "s.csv", tta=False,
                                         allow_leakage=False)
    assert summary["answers"] == "mnist-download" and summary["leakage"] == []
    assert hashed.count(300) == 1, hashed  # the test rows, once; the download's 1,000 rows once too
    assert hashed.count(1000) == 1, hashed


def test_accuracy_score():
    assert submission.accuracy_score(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 0.75
    with pytest.raises(ValueError, match="3 predictions but 2 answers"):
        submission.accuracy_score(np.array([1, 2, 3]), np.array([1, 2]))


# --------------------------------------------------------------------------- leakage


def test_leakage_guard_refuses_mnist_download_model(env, sample_train, save_forest):
    save_forest("mnist-model", sample_train.images[:1000], sample_train.labels[:1000],
                source="mnist-download", val_accuracy=0.99)
    out = env.data / "sub.csv"
    with pytest.raises(ValueError, match="full MNIST download") as err:
        submission.predict_to_file(SAMPLE_TEST, model_names=["mnist-model"], out=out, tta=False,
                                   allow_leakage=False)
    assert "--allow-leakage" in str(err.value) and "\n" not in str(err.value)
    assert not out.exists() and not (env.data / "submissions").exists()  # nothing written, nothing recorded
    # Without --model the best model is this one: refused all the same.
    with pytest.raises(ValueError, match="leakage"):
        submission.predict_to_file(SAMPLE_TEST, model_names=None, out=out, tta=False, allow_leakage=False)


def test_leakage_guard_refuses_overlapping_training_rows(env, sample_train, sample_test, save_forest):
    images = np.concatenate([sample_train.images[:1000], sample_test.images[:50]])
    labels = np.concatenate([sample_train.labels[:1000], np.zeros(50, dtype=np.int64)])
    save_forest("peeked", images, labels)
    findings = leakage.check_leakage(["mlp-a", "peeked"], sample_test.images)
    assert [(f["model"], f["kind"], f["overlap"]) for f in findings] == [("peeked", "overlap", 50)]
    assert "50 of the 1,000 test digits (5.0%)" in findings[0]["message"]
    with pytest.raises(ValueError, match="'peeked' was trained on 50 of the 1,000"):
        submission.predict_to_file(SAMPLE_TEST, model_names=["mlp-a", "peeked"], out=env.data / "s.csv",
                                   tta=False, allow_leakage=False)


def test_allow_leakage_writes_and_records_the_leak(env, sample_train, sample_test, save_forest):
    images = np.concatenate([sample_train.images[:1000], sample_test.images[:10]])
    labels = np.concatenate([sample_train.labels[:1000], np.zeros(10, dtype=np.int64)])
    save_forest("peeked", images, labels, source="mnist-download")
    out = env.data / "leaky.csv"
    summary = submission.predict_to_file(SAMPLE_TEST, model_names=["peeked"], out=out, tta=False,
                                         allow_leakage=True)
    assert out.is_file() and len(summary["leakage"]) == 2
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["leakage"]["allowed"] is True
    assert sorted(f["kind"] for f in side["leakage"]["findings"]) == ["mnist-download", "overlap"]
    assert side["models"][0]["data"]["source"] == "mnist-download"
    assert records.read_leaderboard()[-1]["leakage"] is True


def test_clean_models_pass_the_guard(env, sample_test):
    assert leakage.check_leakage(["mlp-a", "forest"], sample_test.images) == []


# --------------------------------------------------------------------------- records


def test_sidecar_records_what_made_the_file(env, sample_test):
    out = env.data / "s.csv"
    summary = submission.predict_to_file(SAMPLE_TEST, model_names=["mlp-a", "forest"], out=out, tta=True,
                                         allow_leakage=False)
    side = json.loads((env.data / "s.json").read_text())
    assert summary["sidecar"] == str(env.data / "s.json")
    assert [m["name"] for m in side["models"]] == ["mlp-a", "forest"]
    meta = registry.read_meta("mlp-a")
    assert side["models"][0]["data"] == {
        "source": "sample", "fingerprint": meta["data"]["fingerprint"], "name": meta["data"]["name"],
        "n_rows": meta["data"]["n_rows"],
    }
    assert side["test"] == {"name": "test.csv.gz", "source": "sample", "fingerprint": sample_test.fingerprint,
                            "rows": 1000}
    assert side["settings"]["tta"] is True and side["settings"]["tta_views"] == list(prediction.TTA_VIEWS)
    assert side["leakage"] == {"findings": [], "allowed": False}
    assert side["file"]["fingerprint"] == records.file_fingerprint(out.read_bytes())
    assert side["file"]["rows"] == 1000 and side["score"] == summary["score"]
    assert side["created_at"][:4].isdigit()
    assert sorted(p.name for p in env.data.iterdir() if p.name.startswith(".")) == []  # no temp files


def test_leaderboard_records_each_submission_once(env):
    for tta in (False, False, True):
        submission.predict_to_file(SAMPLE_TEST, model_names=["forest"], out=env.data / "s.csv", tta=tta,
                                   allow_leakage=False)
    entries = records.read_leaderboard()
    assert len(entries) == 2  # the same file from the same settings is one entry
    assert [e["settings"]["tta"] for e in entries] == [False, True]
    assert all(e["models"] == ["forest"] and e["score"] is not None for e in entries)
    lines = (env.data / "submissions" / "leaderboard.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0]) == entries[0]
    rows = records.leaderboard_rows(entries[0]["test_fingerprint"])
    assert [r["score"] for r in rows] == sorted((e["score"] for e in entries), reverse=True)
    assert records.leaderboard_rows("another test set") == []


def test_finish_submission_writes_page_exports(env, sample_test):
    model = prediction.load("forest")
    pred = submission.predict([model], sample_test.images)
    answers = submission.known_answers(sample_test)
    done = submission.finish_submission(pred, sample_test, leakage=[], allow_leakage=False, origin="page",
                                        answers=answers)
    assert done.path.parent == env.data / "submissions"
    assert done.path.read_bytes() == done.csv_bytes and done.sidecar_path.is_file()
    assert done.score == submission.accuracy_score(pred.labels, data.sample_answers())
    leak = [{"model": "forest", "kind": "overlap", "overlap": 1, "message": "model 'forest' peeked"}]
    with pytest.raises(ValueError, match="peeked"):
        submission.finish_submission(pred, sample_test, leakage=leak, allow_leakage=False, origin="page",
                                     answers=answers)
    unknown = submission.finish_submission(pred, sample_test, leakage=[], allow_leakage=False, origin="page",
                                           answers=None)
    assert unknown.score is None and unknown.sidecar["answers_source"] is None  # no answers, no score


# --------------------------------------------------------------------------- charts


def test_label_distribution_figure_shows_proportions():
    fig = charts.label_distribution_figure(np.array([0, 0, 1, 9]), np.array([0, 1, 1, 1, 2]))
    assert [t.name for t in fig.data] == ["predicted (test)", "training"]
    assert list(fig.data[0].y) == [0.5, 0.25, 0, 0, 0, 0, 0, 0, 0, 0.25]
    assert list(fig.data[1].y)[:3] == [0.2, 0.6, 0.2]
    assert fig.layout.barmode == "group"
    assert len(charts.label_distribution_figure(np.array([1]), None).data) == 1


def test_least_confident_figure_orders_least_sure_first():
    images = np.zeros((5, 28, 28), np.uint8)
    confidence = np.array([0.9, 0.3, 0.99, 0.5, 0.3])
    assert charts.least_confident_order(confidence, 3).tolist() == [1, 4, 3]
    fig = charts.least_confident_figure(images, np.array([1, 2, 3, 4, 5]), confidence, k=3,
                                        answers=np.array([1, 7, 3, 4, 5]))
    captions = [a.text for a in fig.layout.annotations]
    assert captions == ["2 · 30% ✗7", "5 · 30%", "4 · 50%"]


def test_confidence_histogram_splits_right_and_wrong():
    fig = charts.confidence_histogram(np.array([0.9, 0.5, 0.99]), np.array([True, False, True]))
    assert [t.name for t in fig.data] == ["right", "wrong"]
    assert list(fig.data[0].x) == [0.9, 0.99] and list(fig.data[1].x) == [0.5]
    assert fig.layout.barmode == "overlay"
    assert (fig.layout.yaxis.type, fig.layout.yaxis.dtick) == ("log", 1)  # 1, 10, 100: no 2s and 5s
