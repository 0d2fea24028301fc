"""core.evaluation: metrics against hand-computed values, a test set with answers, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from core import data, eval_rows, evaluation, kaggle_csv, prediction, registry

# Six digits, three classes used; probabilities on digits 0..2 (7..9 get nothing).
#   row  true  probabilities (0, 1, 2)  predicted  confidence  right?
#   0    0     .70 .20 .10              0          .70         yes
#   1    0     .30 .60 .10              1          .60         no
#   2    1     .10 .80 .10              1          .80         yes
#   3    1     .05 .90 .05              1          .90         yes
#   4    2     .45 .15 .40              0          .45         no
#   5    2     .15 .05 .80              2          .80         yes
LABELS = np.array([0, 0, 1, 1, 2, 2])
P3 = np.array([[0.70, 0.20, 0.10], [0.30, 0.60, 0.10], [0.10, 0.80, 0.10],
               [0.05, 0.90, 0.05], [0.45, 0.15, 0.40], [0.15, 0.05, 0.80]])
PROBA = np.hstack([P3, np.zeros((6, 7))])


def test_accuracy_and_log_loss_by_hand():
    ev = evaluation.evaluate(LABELS, PROBA, n_bins=4)
    assert ev.accuracy == pytest.approx(4 / 6)
    expected = -np.mean(np.log([0.70, 0.30, 0.80, 0.90, 0.40, 0.80]))
    assert ev.log_loss == pytest.approx(expected, abs=1e-12)
    assert ev.n == 6 and ev.n_errors == 2
    assert ev.pred.tolist() == [0, 1, 1, 1, 0, 2]


def test_confusion_matrix_by_hand():
    cm = evaluation.confusion(LABELS, PROBA.argmax(1))
    want = np.zeros((10, 10), dtype=np.int64)
    want[:3, :3] = [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    np.testing.assert_array_equal(cm, want)
    norm = evaluation.row_normalise(cm)
    np.testing.assert_allclose(norm[:3, :3], [[0.5, 0.5, 0], [0, 1, 0], [0.5, 0, 0.5]])
    assert norm[3:].sum() == 0  # digits that never occur: a row of zeros, not NaN


def test_per_class_precision_recall_f1_by_hand():
    table = evaluation.per_class(LABELS, PROBA.argmax(1))
    assert list(table.columns) == ["digit", "precision", "recall", "f1", "support"]
    # Predicted 0: rows 0 and 4 (one right); predicted 1: rows 1, 2, 3 (two right); predicted 2: row 5.
    np.testing.assert_allclose(table.precision[:3], [1 / 2, 2 / 3, 1.0])
    np.testing.assert_allclose(table.recall[:3], [1 / 2, 2 / 2, 1 / 2])
    np.testing.assert_allclose(table.f1[:3], [0.5, 0.8, 2 / 3])
    assert table.support.tolist() == [2, 2, 2] + [0] * 7
    assert table.precision[3:].sum() == 0  # never predicted: 0, not NaN


def test_expected_calibration_error_by_hand():
    # 4 bins: (0,.25] (.25,.5] (.5,.75] (.75,1]
    #   (.25,.5]: row 4 (.45, wrong)                   -> gap .45,     1 digit
    #   (.5,.75]: rows 0 (.70, right), 1 (.60, wrong)  -> |.5 - .65|,  2 digits
    #   (.75,1]:  rows 2, 3, 5 (.8, .9, .8, all right)  -> |1 - .8333|, 3 digits
    want = (1 * 0.45 + 2 * 0.15 + 3 * (1 - 2.5 / 3)) / 6
    assert evaluation.expected_calibration_error(LABELS, PROBA, n_bins=4) == pytest.approx(want)
    bins = evaluation.calibration_bins(LABELS, PROBA, n_bins=4)
    assert bins.counts.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(bins.accuracy[1:], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(bins.confidence[1:], [0.45, 0.65, 2.5 / 3])
    assert math.isnan(bins.accuracy[0]) and math.isnan(bins.confidence[0])
    assert evaluation.evaluate(LABELS, PROBA, n_bins=4).ece == pytest.approx(want)


def test_perfectly_calibrated_and_perfectly_confident_cases():
    labels = np.arange(10)
    onehot = np.eye(10)
    assert evaluation.expected_calibration_error(labels, onehot) == 0.0
    wrong = np.roll(onehot, 1, axis=1)  # sure, and always wrong: ECE is 1
    assert evaluation.expected_calibration_error(labels, wrong) == pytest.approx(1.0)


def test_calibration_bins_agree_with_sklearn_calibration_curve():
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2000, 10)) * 3
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.where(rng.random(2000) < 0.7, proba.argmax(1), rng.integers(0, 10, 2000))
    bins = evaluation.calibration_bins(labels, proba, n_bins=10)
    correct = (proba.argmax(1) == labels).astype(int)
    prob_true, prob_pred = calibration_curve(correct, proba.max(1), n_bins=10, strategy="uniform")
    used = bins.counts > 0
    np.testing.assert_allclose(bins.accuracy[used], prob_true)
    np.testing.assert_allclose(bins.confidence[used], prob_pred)


def test_error_analysis_orders_by_confidence():
    assert evaluation.confident_mistakes(LABELS, PROBA, k=10).tolist() == [1, 4]
    assert evaluation.confident_mistakes(LABELS, PROBA, k=1).tolist() == [1]
    assert evaluation.pair_indices(LABELS, PROBA, 1, 1).tolist() == [3, 2]
    assert evaluation.pair_indices(LABELS, PROBA, 0, 1).tolist() == [1]
    assert evaluation.pair_indices(LABELS, PROBA, 5, 6).tolist() == []
    cm = evaluation.confusion(LABELS, PROBA.argmax(1))
    assert evaluation.confusion_pairs(cm) == [(0, 1, 1), (2, 0, 1)]
    with pytest.raises(ValueError, match="two digits"):
        evaluation.pair_indices(LABELS, PROBA, 10, 1)


def test_summary_is_plain_json():
    summary = evaluation.evaluate(LABELS, PROBA).summary()
    again = json.loads(json.dumps(summary))
    assert again["n"] == 6 and again["errors"] == 2
    assert again["per_class"]["1"] == {"precision": pytest.approx(2 / 3), "recall": 1.0,
                                       "f1": pytest.approx(0.8), "support": 2}
    assert again["confusion"][2][:3] == [1, 0, 1]


@pytest.mark.parametrize(
    ("labels", "proba", "message"),
    [
        ([0, 1], np.full((3, 10), 0.1), "shape"),
        ([0, 11], np.full((2, 10), 0.1), "digits 0..9"),
        ([0, 1], np.full((2, 10), 0.2), "sum to 1"),
        ([0, 1], np.full((2, 10), np.nan), "finite"),
        ([], np.zeros((0, 10)), "no digits"),
    ],
)
def test_bad_predictions_are_refused(labels, proba, message):
    with pytest.raises(ValueError, match=message):
        evaluation.evaluate(np.asarray(labels, dtype=np.int64), proba)


def test_float32_rounding_is_accepted():
    proba = (PROBA + 1e-7).astype(np.float32)  # rows sum to 1.000001
    assert evaluation.log_loss(LABELS, proba) == pytest.approx(evaluation.log_loss(LABELS, PROBA), abs=1e-5)


# --------------------------------------------------------------------------- a test set with answers


def _dataset(n: int = 300, seed: int = 0, name: str = "train.csv") -> data.Dataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = np.arange(n) % 10
    return data.Dataset(images, labels, name, "kaggle", data.fingerprint(images, labels))


def test_with_answers_labels_a_test_set():
    ds = _dataset(n=20)
    test = data.Dataset(ds.images, None, "test.csv", "sample", data.fingerprint(ds.images))
    labelled = evaluation.with_answers(test, ds.labels)
    assert labelled.fingerprint == ds.fingerprint and labelled.has_labels
    with pytest.raises(ValueError, match="20 test digits but 3 answers"):
        evaluation.with_answers(test, ds.labels[:3])


# --------------------------------------------------------------------------- comparison


def test_compare_and_disagreements():
    labels = np.array([0, 1, 2, 3])
    a = np.eye(10)[[0, 1, 2, 3]]  # all right
    b = np.eye(10)[[0, 1, 2, 5]] * 0.9 + 0.01  # last one wrong
    c = np.eye(10)[[0, 7, 2, 5]] * 0.9 + 0.01  # two wrong
    table = evaluation.compare(labels, {"b": b, "a": a, "c": c},
                               {"a": {"arch": "mlp", "param_count": 10, "training_time_s": 1.5}})
    assert table.model.tolist() == ["a", "b", "c"]  # best first
    assert table.accuracy.tolist() == [1.0, 0.75, 0.5]
    assert table.errors.tolist() == [0, 1, 2]
    assert table.parameters[0] == 10 and table["training time (s)"][0] == 1.5
    assert table["log loss"][1] == pytest.approx(-np.mean(np.log([0.91, 0.91, 0.91, 0.01])))
    preds = {"a": a.argmax(1), "b": b.argmax(1), "c": c.argmax(1)}
    assert evaluation.disagreements(preds).tolist() == [1, 3]
    pairs = evaluation.pairwise_disagreement(preds)
    assert pairs.loc["a", "b"] == 1 and pairs.loc["a", "c"] == 2 and pairs.loc["b", "c"] == 1
    assert pairs.loc["a", "a"] == 0


def test_history_frame():
    assert evaluation.history_frame([]).empty
    frame = evaluation.history_frame([{"loss": 1.0}, {"loss": 0.5}])
    assert frame.epoch.tolist() == [1, 2]


# --------------------------------------------------------------------------- evaluate_model and the CLI


def _save_forest(ds: data.Dataset, name: str) -> None:
    """A small random forest saved the way training saves one (no TensorFlow needed)."""
    from sklearn.ensemble import RandomForestClassifier

    train_idx, val_idx = data.split_indices(ds.labels, val_fraction=0.2, seed=0)
    x = ds.images[train_idx].reshape(len(train_idx), -1) / 255.0
    forest = RandomForestClassifier(n_estimators=8, random_state=0).fit(x, ds.labels[train_idx])
    registry.save_sklearn_model(name, forest)
    registry.save_train_hashes(name, data.row_hashes(ds.images[train_idx]))
    registry.write_meta(name, {
        "name": name, "arch": "random-forest", "kind": "sklearn",
        "data": {"name": ds.name, "source": ds.source, "fingerprint": ds.fingerprint, "n_rows": ds.n,
                 "split": data.describe_split(ds.labels, val_idx, val_fraction=0.2, seed=0)},
        "metrics": {"val_accuracy": 0.5},
    })


@pytest.fixture
def sample_subset(sample_train) -> data.Dataset:
    images, labels = sample_train.images[:600], sample_train.labels[:600]
    return data.Dataset(images, labels, "train.csv", "kaggle", data.fingerprint(images, labels))


def test_evaluate_model_on_its_own_data_warns_and_uses_the_validation_split(tmp_dirs, sample_subset):
    _save_forest(sample_subset, "rf")
    model = prediction.load("rf")
    out = evaluation.evaluate_model(model, sample_subset)
    images, labels = eval_rows.validation_set(model.meta, sample_subset)
    want = evaluation.evaluate(labels, model.predict_proba(images))
    assert out["model"] == "rf" and out["evaluated_on"] == "validation"
    assert out["n"] == 120 and out["n_total"] == 600
    assert out["accuracy"] == pytest.approx(want.accuracy) and out["ece"] == pytest.approx(want.ece)
    assert "is the data model 'rf' was trained on" in out["warning"]
    assert json.loads(json.dumps(out)) == out


def test_cli_evaluate_prints_json(tmp_dirs, sample_subset, sample_train, capsys):
    from core import cli

    _save_forest(sample_subset, "rf")
    path = kaggle_csv.write_kaggle_csv(
        tmp_dirs.data / "train.csv", sample_subset.images, sample_subset.labels
    )
    assert cli.main(["evaluate", "--data", str(path), "--model", "rf"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"accuracy", "log_loss", "per_class", "confusion", "ece", "n", "model", "warning"}
    assert out["n"] == 120 and "trained on" in out["warning"]
    assert sum(map(sum, out["confusion"])) == 120
    assert set(out["per_class"]) == {str(d) for d in range(10)}

    # Unseen digits: the next 300 of the sample, evaluated whole, without a warning.
    fresh = kaggle_csv.write_kaggle_csv(tmp_dirs.data / "fresh.csv", sample_train.images[600:900],
                                  sample_train.labels[600:900])
    assert cli.main(["evaluate", "--data", str(fresh), "--model", "rf"]) == 0
    out = json.loads(capsys.readouterr().out)
    model = prediction.load("rf")
    want = evaluation.accuracy(sample_train.labels[600:900],
                               model.predict_proba(sample_train.images[600:900]).argmax(1))
    assert out["n"] == 300 and out["evaluated_on"] == "unseen" and out["warning"] is None
    assert out["accuracy"] == pytest.approx(want)

    # A mix of training and new digits: the training ones are left out, and the warning says so.
    train_idx, _ = data.split_indices(sample_subset.labels, val_fraction=0.2, seed=0)
    mixed = kaggle_csv.write_kaggle_csv(
        tmp_dirs.data / "mixed.csv",
        np.concatenate([sample_train.images[600:700], sample_subset.images[train_idx[:50]]]),
        np.concatenate([sample_train.labels[600:700], sample_subset.labels[train_idx[:50]]]),
    )
    assert cli.main(["evaluate", "--data", str(mixed), "--model", "rf"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 100 and "50 of the 150 digits" in out["warning"]


def test_cli_evaluate_tta_scores_the_rotated_views(tmp_dirs, sample_subset, sample_train, capsys):
    from core import cli

    _save_forest(sample_subset, "rf")
    fresh = kaggle_csv.write_kaggle_csv(tmp_dirs.data / "fresh.csv", sample_train.images[600:900],
                                        sample_train.labels[600:900])
    assert cli.main(["evaluate", "--data", str(fresh), "--model", "rf"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert cli.main(["evaluate", "--data", str(fresh), "--model", "rf", "--tta"]) == 0
    out = json.loads(capsys.readouterr().out)
    model = prediction.load("rf")
    want = evaluation.evaluate(sample_train.labels[600:900],
                               prediction.predict_proba(model, sample_train.images[600:900], tta=True))
    assert (plain["tta"], out["tta"]) == (False, True)
    assert out["accuracy"] == pytest.approx(want.accuracy)
    assert out["log_loss"] == pytest.approx(want.log_loss)
    assert out["log_loss"] != pytest.approx(plain["log_loss"])  # the views really were averaged


def test_cli_evaluate_bad_input_is_one_line(tmp_dirs, capsys):
    from core import cli

    assert cli.main(["evaluate", "--data", str(tmp_dirs.data / "missing.csv"), "--model", "rf"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_metrics_match_scikit_learn_on_random_predictions():
    """The numpy metrics (kept out of scikit-learn for the server's memory) give scikit-learn's
    answers, including a digit that is never predicted and one that never occurs."""
    from sklearn import metrics as skm

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 9, 500)  # no 9 among the labels
    proba = rng.dirichlet(np.ones(10), 500)
    proba[:, 8] = 0.0  # ... and 8 never predicted
    proba /= proba.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    assert evaluation.accuracy(labels, pred) == pytest.approx(skm.accuracy_score(labels, pred))
    expected_loss = skm.log_loss(labels, proba, labels=list(range(10)))
    assert evaluation.log_loss(labels, proba) == pytest.approx(expected_loss)
    np.testing.assert_array_equal(evaluation.confusion(labels, pred),
                                  skm.confusion_matrix(labels, pred, labels=list(range(10))))
    p, r, f, s = skm.precision_recall_fscore_support(labels, pred, labels=list(range(10)), zero_division=0)
    table = evaluation.per_class(labels, pred)
    np.testing.assert_allclose(table["precision"], p)
    np.testing.assert_allclose(table["recall"], r)
    np.testing.assert_allclose(table["f1"], f)
    np.testing.assert_array_equal(table["support"], s)
    assert table["precision"][8] == 0.0 and table["support"][9] == 0


def test_accuracy_interval_is_scipys_wilson_interval():
    from scipy.stats import binomtest

    for correct, n in [(995, 1000), (17_795, 18_000), (0, 50), (50, 50), (1, 3)]:
        ref = binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert evaluation.accuracy_interval(correct, n) == pytest.approx((ref.low, ref.high), abs=2e-4)
    with pytest.raises(ValueError, match="at least one digit"):
        evaluation.accuracy_interval(0, 0)
