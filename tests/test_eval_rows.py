"""core.eval_rows: which digits a model may be scored on (its recorded validation split, or
other data it never trained on) and the digits several models share."""

from __future__ import annotations

import numpy as np
import pytest

from core import data, eval_rows


def _dataset(n: int = 300, seed: int = 0, name: str = "train.csv") -> data.Dataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = np.arange(n) % 10
    return data.Dataset(images, labels, name, "kaggle", data.fingerprint(images, labels))


def _meta(ds: data.Dataset, *, val_fraction: float = 0.1, seed: int = 0, name: str = "m") -> dict:
    _, val_idx = data.split_indices(ds.labels, val_fraction=val_fraction, seed=seed)
    split = data.describe_split(ds.labels, val_idx, val_fraction=val_fraction, seed=seed)
    return {"name": name, "arch": "mlp",
            "data": {"name": ds.name, "source": ds.source, "fingerprint": ds.fingerprint, "n_rows": ds.n,
                     "split": split}}


def test_validation_set_rebuilds_the_recorded_split():
    ds = _dataset()
    images, labels = eval_rows.validation_set(_meta(ds), ds)
    _, val_idx = data.split_indices(ds.labels, val_fraction=0.1, seed=0)
    assert len(labels) == 30
    np.testing.assert_array_equal(images, ds.images[val_idx])
    np.testing.assert_array_equal(labels, ds.labels[val_idx])
    rows = eval_rows.unseen_rows(_meta(ds), ds)
    assert rows.kind == eval_rows.KIND_VALIDATION and rows.refusal is None
    assert "30 digits of train.csv held out for validation" in rows.note


def test_validation_set_refuses_a_mismatched_split():
    ds = _dataset()
    meta = _meta(ds)
    meta["data"]["split"]["val_fingerprint"] = "0000000000000000"
    with pytest.raises(ValueError, match="differs from the one it recorded"):
        eval_rows.validation_set(meta, ds)
    other_seed = _meta(ds, seed=1)
    other_seed["data"]["split"]["seed"] = 0  # recorded seed 0, but the fingerprint is of seed 1's split
    with pytest.raises(ValueError, match="differs from the one it recorded"):
        eval_rows.validation_set(other_seed, ds)


def test_validation_set_refuses_without_a_split_or_fingerprint():
    ds = _dataset()
    meta = _meta(ds)
    del meta["data"]["split"]
    with pytest.raises(ValueError, match="records no validation split"):
        eval_rows.validation_set(meta, ds)
    with pytest.raises(ValueError, match="records no fingerprint"):
        eval_rows.validation_set({"name": "m", "data": {}}, ds)


def test_other_data_is_used_whole_only_when_unseen():
    trained_on = _dataset(seed=0)
    meta = _meta(trained_on)
    train_idx, _ = data.split_indices(trained_on.labels, val_fraction=0.1, seed=0)
    hashes = data.row_hashes(trained_on.images[train_idx])

    fresh = _dataset(n=50, seed=7, name="fresh.csv")
    images, labels = eval_rows.validation_set(meta, fresh, train_hashes=hashes)
    np.testing.assert_array_equal(images, fresh.images)
    np.testing.assert_array_equal(labels, fresh.labels)

    # A set that holds 5 training digits among 20 new ones is refused, saying how many and why.
    mixed_images = np.concatenate([fresh.images[:20], trained_on.images[train_idx[:5]]])
    mixed_labels = np.concatenate([fresh.labels[:20], trained_on.labels[train_idx[:5]]])
    mixed = data.Dataset(mixed_images, mixed_labels, "mixed.csv", "upload",
                         data.fingerprint(mixed_images, mixed_labels))
    with pytest.raises(ValueError, match=r"5 of the 25 digits in mixed.csv are among the digits model 'm'"):
        eval_rows.validation_set(meta, mixed, train_hashes=hashes)
    rows = eval_rows.unseen_rows(meta, mixed, train_hashes=hashes)
    assert rows.indices.tolist() == list(range(20)) and rows.n_seen == 5 and rows.refusal

    # Only training digits: nothing left at all.
    seen = data.Dataset(mixed_images[20:], mixed_labels[20:], "seen.csv", "upload",
                        data.fingerprint(mixed_images[20:], mixed_labels[20:]))
    with pytest.raises(ValueError, match="nothing unseen"):
        eval_rows.unseen_rows(meta, seen, train_hashes=hashes)


def test_other_data_without_a_record_of_training_digits_is_refused(tmp_dirs):
    meta = _meta(_dataset(seed=0), name="nohashes")
    with pytest.raises(ValueError, match="kept no record of its training digits"):
        eval_rows.validation_set(meta, _dataset(n=40, seed=3, name="other.csv"))


def test_unlabelled_data_is_refused():
    ds = _dataset()
    test = data.Dataset(ds.images, None, "test.csv", "kaggle", data.fingerprint(ds.images))
    with pytest.raises(ValueError, match="needs labelled digits"):
        eval_rows.validation_set(_meta(ds), test)


def test_common_rows_are_the_intersection_of_validation_splits():
    ds = _dataset(n=1000)
    rows = {"a": eval_rows.unseen_rows(_meta(ds, name="a"), ds),
            "b": eval_rows.unseen_rows(_meta(ds, name="b"), ds),
            "c": eval_rows.unseen_rows(_meta(ds, seed=3, name="c"), ds)}
    same = eval_rows.common_rows({k: rows[k] for k in "ab"})
    np.testing.assert_array_equal(same, rows["a"].indices)  # same split: the whole validation set
    common = eval_rows.common_rows(rows)
    assert set(common) == set(rows["a"].indices) & set(rows["c"].indices)
    text = eval_rows.explain_common_rows(rows, common, ds.name)
    assert f"Common to all: {len(common):,}." in text and "intersection of their validation splits" in text
    assert "different splits" in text  # ~10 of 100: the page says why so few
