"""Distillation: a student learns from a saved teacher's probabilities on warped copies of its digits.

Pure parts first (tempering, targets, the split rule, settings), then the loss and the warp
(Keras), then `python -m core train --teacher` end to end on 400 sample digits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core import distill, kaggle_csv, registry
from core.training import TrainConfig
from tests.test_cli_train import _run

# --------------------------------------------------------------------------- pure parts


def test_tempering_keeps_the_ranking_and_softens_the_certainty():
    probs = np.array([[0.9, 0.05, 0.05] + [0.0] * 7, [0.1] * 10], dtype=np.float32)
    np.testing.assert_allclose(distill.tempered(probs, 1.0)[0, :3], [0.9, 0.05, 0.05], atol=1e-6)
    soft = distill.tempered(probs, 2.0)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
    assert soft[0].argmax() == 0 and 0.5 < soft[0, 0] < 0.9  # sqrt(0.9) / (sqrt(.9) + 2 sqrt(.05) + ...)
    assert soft[0, 0] == pytest.approx(np.sqrt(0.9) / (np.sqrt(0.9) + 2 * np.sqrt(0.05) + 7 * 1e-4), rel=1e-3)
    np.testing.assert_allclose(soft[1], 0.1, rtol=1e-6)  # a flat row stays flat


def test_targets_are_the_teachers_rows_then_the_label():
    soft = np.full((3, 10), 0.1, dtype=np.float32)
    rows = distill.targets(soft, np.array([7, 0, 9]))
    assert rows.shape == (3, 11) and rows.dtype == np.float32
    assert rows[:, 10].tolist() == [7.0, 0.0, 9.0] and np.all(rows[:, :10] == np.float32(0.1))
    own = distill.label_targets(np.array([2, 5]))
    assert own[:, :10].argmax(axis=1).tolist() == [2, 5] and own[:, :10].sum() == 2.0
    with pytest.raises(ValueError, match="3 teacher rows for 2 labels"):
        distill.targets(soft, np.array([1, 2]))


def test_a_student_keeps_its_teachers_split_only_on_the_teachers_file():
    meta = {"data": {"fingerprint": "abc", "split": {"val_fraction": 0.1, "seed": 3}}}
    assert distill.teacher_split(meta, "abc") == (0.1, 3)
    assert distill.teacher_split(meta, "other") is None
    assert distill.teacher_split({"data": {"fingerprint": "abc"}}, "abc") is None  # no recorded split


def test_settings_a_student_gets_and_those_refused():
    settings = TrainConfig(arch="dr-sep", teacher="sample-drv").validate().resolved()
    assert settings["epochs"] == distill.EPOCHS and settings["distill_copies"] == distill.COPIES
    assert settings["distill_alpha"] == distill.ALPHA
    assert settings["distill_temperature"] == distill.TEMPERATURE
    assert settings["augment"] is False  # the warped copies are made before training, not in the model
    assert TrainConfig(arch="dr-sep", teacher="t", augment=True).resolved()["augment"] is False
    assert TrainConfig(arch="dr-sep", teacher="t", epochs=3).resolved()["epochs"] == 3  # asked for: kept
    assert TrainConfig(arch="dr-sep").resolved()["epochs"] == 30  # no teacher: the architecture's own
    with pytest.raises(ValueError, match="need a teacher"):
        TrainConfig(distill_copies=4).validate()
    with pytest.raises(ValueError, match="only those can learn from a teacher"):
        TrainConfig(arch="random-forest", teacher="t").validate()
    with pytest.raises(ValueError, match="invalid model name"):
        TrainConfig(teacher="../outside").validate()
    with pytest.raises(ValueError, match="distill_alpha must be between 0 and 1"):
        TrainConfig(teacher="t", distill_alpha=1.5).validate()


# --------------------------------------------------------------------------- Keras parts


@pytest.mark.slow  # imports Keras (TensorFlow)
def test_the_loss_is_cross_entropy_without_the_teacher_and_zero_when_the_student_agrees():
    from keras import ops

    student = np.array([[0.7, 0.2, 0.1] + [0.0] * 7, [0.05] * 8 + [0.3, 0.3]], dtype=np.float32)
    labels = np.array([0, 9])
    teacher = distill.tempered(student, 2.0)
    rows = distill.targets(teacher, labels)
    ce = -np.log(np.clip(student[[0, 1], labels], 1e-8, 1))
    only_labels = ops.convert_to_numpy(distill.loss(0.0, 2.0)(rows, student))
    np.testing.assert_allclose(only_labels, ce, rtol=1e-5)
    agreeing = ops.convert_to_numpy(distill.loss(1.0, 2.0)(rows, student))
    np.testing.assert_allclose(agreeing, 0.0, atol=1e-5)
    swapped = distill.targets(teacher[::-1], labels)
    disagreeing = ops.convert_to_numpy(distill.loss(1.0, 2.0)(swapped, student))
    assert np.all(disagreeing > 0.1)
    accuracy = ops.convert_to_numpy(distill.accuracy(rows, student))
    assert accuracy.tolist() == [1.0, 0.0]  # row 2's best guess is 8, its label 9


@pytest.mark.slow  # imports Keras (TensorFlow)
def test_warped_copies_follow_the_digits_and_move_them(sample_train):
    images = sample_train.images[:64]
    x = distill.warped_copies(images, 2, seed=1)
    assert x.shape == (192, 28, 28) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[:64], images)
    for block in (x[64:128], x[128:]):
        moved = np.abs(block.astype(int) - images).reshape(64, -1).sum(axis=1)
        assert (moved > 0).mean() > 0.95  # nearly every copy is warped...
        ink = block.reshape(64, -1).sum(axis=1) / images.reshape(64, -1).sum(axis=1)
        assert 0.6 < np.median(ink) < 1.4  # ...by a small move: the digit is still there
    assert not np.array_equal(x[64:128], x[128:])  # each copy its own draw
    np.testing.assert_array_equal(distill.warped_copies(images, 2, seed=1), x)  # the seed decides


# --------------------------------------------------------------------------- the command


@pytest.mark.slow  # trains a Keras student in child processes
def test_a_student_learns_from_a_teacher_on_its_split_and_can_go_on(tmp_path, tmp_dirs, sample_train):
    csv_path = kaggle_csv.write_kaggle_csv(tmp_path / "small.csv", sample_train.images[:600],
                                           sample_train.labels[:600])
    teacher = _run(["train", "--data", str(csv_path), "--arch", "random-forest", "--n-estimators", "60",
                    "--name", "teacher", "--quiet"], tmp_dirs)
    assert teacher.returncode == 0, teacher.stderr[-2000:]
    proc = _run(["train", "--data", str(csv_path), "--arch", "mlp", "--teacher", "teacher", "--seed", "5",
                 "--distill-copies", "3", "--epochs", "4", "--batch-size", "32", "--name", "student"],
                tmp_dirs, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == "done" and result["epochs_run"] == 4
    assert result["val_accuracy"] > 0.75, result  # 540 digits x 4 views, labelled by a forest

    student, forest = registry.read_meta("student"), registry.read_meta("teacher")
    assert student["params"]["teacher"] == "teacher" and student["params"]["distill_copies"] == 3
    # The teacher's validation digits, not seed 5's: the checkpoint is chosen on digits neither saw.
    assert student["data"]["split"] == forest["data"]["split"]
    assert student["data"]["n_train"] == 540  # the digits of the file, not their warped copies
    hist = (tmp_dirs.models / "student" / "history.csv").read_text().splitlines()
    assert len(hist) == 1 + 4 and "val_accuracy" in hist[0]

    more = _run(["train", "--continue", "student", "--epochs", "1", "--quiet"], tmp_dirs, timeout=300)
    assert more.returncode == 0, more.stderr[-3000:]
    assert len((tmp_dirs.models / "student" / "history.csv").read_text().splitlines()) == 1 + 5


@pytest.mark.slow  # trains a Keras student in a child process
def test_a_student_of_another_files_teacher_says_so_and_counts_its_digits_as_seen(tmp_path, tmp_dirs,
                                                                                 sample_train, save_forest):
    save_forest("elsewhere", sample_train.images[1000:1300], sample_train.labels[1000:1300])
    csv_path = kaggle_csv.write_kaggle_csv(tmp_path / "small.csv", sample_train.images[:300],
                                           sample_train.labels[:300])
    proc = _run(["train", "--data", str(csv_path), "--arch", "mlp", "--teacher", "elsewhere",
                 "--distill-copies", "1", "--epochs", "1", "--name", "student"], tmp_dirs, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "note: elsewhere was not trained on small.csv" in proc.stderr
    hashes = set(np.load(tmp_dirs.models / "student" / "train_hashes.npy").tolist())
    from core import data

    assert set(data.row_hashes(sample_train.images[1000:1300]).tolist()) <= hashes  # the teacher's rows
    assert len(hashes) == 270 + 300  # and its own 270 training digits


def test_a_missing_teacher_exits_2_before_anything_is_queued(tmp_path, tmp_dirs, sample_train):
    csv_path = kaggle_csv.write_kaggle_csv(tmp_path / "small.csv", sample_train.images[:100],
                                           sample_train.labels[:100])
    proc = _run(["train", "--data", str(csv_path), "--arch", "mlp", "--teacher", "ghost"], tmp_dirs,
                timeout=60)
    assert proc.returncode == 2 and "no saved model called 'ghost'" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and list(tmp_dirs.models.iterdir()) == []

