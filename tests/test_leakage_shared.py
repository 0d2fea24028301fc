"""The overlap check on the shared MNIST files (`../shared/data/`): a model trained on the
42,000-digit stand-in for Kaggle's train.csv has seen some of Kaggle's test digits (they are MNIST
digits too), so a test file sharing rows with it must be flagged on Submit and refused by
`python -m core predict`. The shared folder sits beside the repository; under CI it must be there."""

from __future__ import annotations

import os

import numpy as np
import pytest

from core import data, kaggle_csv, leakage, paths, submission

SHARED = paths.ROOT.parent / "shared" / "data"
TRAIN_42K = SHARED / "mnist-train-42k.csv.gz"
HOLDOUT_18K = SHARED / "mnist-holdout-18k.csv.gz"
SHARED_ROWS = 500  # test rows taken from the training file
FRESH_ROWS = 1_500  # test rows from the holdout, which is in neither training file


@pytest.fixture(scope="module")
def shared_files():
    missing = [p.name for p in (TRAIN_42K, HOLDOUT_18K) if not p.is_file()]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs ../shared/data beside the repository; missing {missing}")
        pytest.skip(f"../shared/data is not beside this clone (missing {missing})")
    return data.load_csv(TRAIN_42K, use_cache=False), data.load_csv(HOLDOUT_18K, use_cache=False)


def test_a_model_trained_on_the_42k_file_is_flagged_on_a_test_set_sharing_its_rows(
    tmp_dirs, shared_files, save_forest
):
    train, holdout = shared_files
    assert len(train.images) == 42_000
    save_forest("on-42k", train.images, train.labels, n_estimators=1)

    rng = np.random.default_rng(0)
    shared_idx = rng.choice(len(train.images), SHARED_ROWS, replace=False)
    test_images = np.concatenate([train.images[shared_idx], holdout.images[:FRESH_ROWS]])
    test_images = test_images[rng.permutation(len(test_images))]
    test_path = kaggle_csv.write_kaggle_csv(tmp_dirs.data / "test.csv", test_images)

    test = data.load_csv(test_path, expect_labels=False)
    findings = leakage.check_leakage(["on-42k"], test.images)
    assert [(f["model"], f["kind"], f["overlap"]) for f in findings] == [("on-42k", "overlap", SHARED_ROWS)]
    assert "trained on 500 of the 2,000 test digits (25.0%)" in findings[0]["message"]

    with pytest.raises(ValueError, match="'on-42k' was trained on 500 of the 2,000"):
        submission.predict_to_file(test_path, model_names=["on-42k"], out=tmp_dirs.data / "s.csv",
                                   tta=False, allow_leakage=False)
    assert not (tmp_dirs.data / "s.csv").exists()


def test_the_holdout_shares_no_row_with_the_42k_file(shared_files):
    train, holdout = shared_files
    shared = np.isin(data.row_hashes(holdout.images), data.row_hashes(train.images)).sum()
    assert shared == 0, f"{shared} holdout digits are also in the 42k training file"
