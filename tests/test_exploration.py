"""core.exploration on tiny hand-made arrays whose answers can be checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from core import data, exploration


def _digit(value: int = 0, ink: int = 0, offset: int = 0) -> np.ndarray:
    """A 28x28 image of `value` with `ink` pixels set to 255 from position `offset` (row-major)."""
    img = np.full(784, value, dtype=np.uint8)
    img[offset : offset + ink] = 255
    return img.reshape(28, 28)


def _distinct(n: int, seed: int = 0) -> np.ndarray:
    """n different, well-inked random images."""
    rng = np.random.default_rng(seed)
    imgs = np.zeros((n, 28, 28), np.uint8)
    imgs[:, 6:22, 6:22] = rng.integers(0, 256, size=(n, 16, 16), dtype=np.uint8)
    return imgs


# --------------------------------------------------------------------------- per-class views


def test_class_counts_counts_every_digit_including_missing_ones():
    assert exploration.class_counts(np.array([0, 0, 3, 9])).tolist() == [2, 0, 0, 1, 0, 0, 0, 0, 0, 1]


def test_class_counts_refuses_a_label_outside_0_to_9():
    with pytest.raises(ValueError, match="digits 0..9"):
        exploration.class_counts(np.array([1, 10]))


def test_sample_indices_per_class_picks_only_that_digit_and_pads_with_minus_one():
    labels = np.array([0, 1, 1, 2, 2, 2, 1])
    picks = exploration.sample_indices_per_class(labels, per_class=2, seed=3)
    assert picks.shape == (10, 2)
    assert picks[0].tolist() == [0, -1]  # One 0 only.
    assert set(picks[1].tolist()) <= {1, 2, 6} and -1 not in picks[1]
    assert set(picks[2].tolist()) <= {3, 4, 5} and len(set(picks[2].tolist())) == 2
    assert (picks[3:] == -1).all()


def test_sample_indices_per_class_is_reproducible_and_changes_with_the_seed():
    labels = np.repeat(np.arange(10), 50)
    a = exploration.sample_indices_per_class(labels, per_class=10, seed=0)
    assert np.array_equal(a, exploration.sample_indices_per_class(labels, per_class=10, seed=0))
    assert not np.array_equal(a, exploration.sample_indices_per_class(labels, per_class=10, seed=1))
    assert (labels[a] == np.arange(10)[:, None]).all()


def test_class_mean_std_of_known_images():
    images = np.stack([_digit(0), _digit(200), _digit(50)])
    labels = np.array([0, 0, 1])
    means, stds = exploration.class_mean_std(images, labels)
    assert means.shape == stds.shape == (10, 28, 28)
    assert means.dtype == np.float32
    np.testing.assert_allclose(means[0], 100.0)  # (0 + 200) / 2
    np.testing.assert_allclose(stds[0], 100.0)  # population std of {0, 200}
    np.testing.assert_allclose(means[1], 50.0)
    np.testing.assert_allclose(stds[1], 0.0)
    assert np.isnan(means[2]).all()  # No 2s at all.


def test_class_mean_std_refuses_mismatched_labels():
    with pytest.raises(ValueError, match=r"labels of shape \(2,\)"):
        exploration.class_mean_std(np.zeros((2, 28, 28), np.uint8), np.array([1, 2, 3]))


def test_mean_image_and_shape_checks():
    images = np.stack([_digit(10), _digit(30)])
    np.testing.assert_allclose(exploration.mean_image(images), 20.0)
    with pytest.raises(ValueError, match=r"\(n, 28, 28\)"):
        exploration.mean_image(np.zeros((2, 784), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        exploration.mean_image(np.zeros((2, 28, 28), np.float32))


# --------------------------------------------------------------------------- pixels and ink


def test_intensity_counts_counts_each_value():
    counts = exploration.intensity_counts(np.stack([_digit(0, ink=3), _digit(7)]))
    assert counts.shape == (256,)
    assert counts[255] == 3 and counts[0] == 781 and counts[7] == 784
    assert counts.sum() == 2 * 784


def test_ink_pixels_counts_only_pixels_above_the_ink_level():
    img = np.zeros((28, 28), np.uint8)
    img[0, :4] = [exploration.INK_LEVEL, exploration.INK_LEVEL + 1, 200, 255]
    assert exploration.ink_pixels(img[None]).tolist() == [3]


def test_set_summary_figures_per_set():
    train = np.stack([_digit(0, ink=100), _digit(0, ink=100), _digit(0, ink=5)])  # 2 identical, 1 blank
    test = np.stack([_digit(0, ink=50, offset=10)])
    table = exploration.set_summary({"train": train, "test": test})
    assert table["set"].tolist() == ["train", "test"]
    assert table["digits"].tolist() == [3, 1]
    assert table["near-blank digits"].tolist() == [1, 0]
    assert table["duplicate images"].tolist() == [1, 0]
    assert table["ink pixels per digit (median)"].tolist() == [100.0, 50.0]
    assert table.loc[1, "background pixels (%)"] == pytest.approx(100 * 734 / 784)
    assert table.loc[1, "mean pixel value"] == pytest.approx(50 * 255 / 784)


# --------------------------------------------------------------------------- 2-D maps


def _two_classes(n_each: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Left-half strokes (label 0) and right-half strokes (label 1), with noise."""
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 30, size=(2 * n_each, 28, 28)).astype(np.uint8)
    imgs[:n_each, 4:24, 4:12] = 250
    imgs[n_each:, 4:24, 16:24] = 250
    return imgs, np.repeat([0, 1], n_each)


def test_subsample_is_sorted_unique_and_reproducible():
    idx = exploration.subsample(100, 10, seed=1)
    assert len(idx) == 10 and len(set(idx.tolist())) == 10 and (np.diff(idx) > 0).all()
    assert np.array_equal(idx, exploration.subsample(100, 10, seed=1))
    assert exploration.subsample(5, None).tolist() == [0, 1, 2, 3, 4]
    assert exploration.subsample(5, 50).tolist() == [0, 1, 2, 3, 4]


def test_pca_embedding_shape_and_it_separates_two_obviously_different_classes():
    images, labels = _two_classes()
    emb = exploration.pca_embedding(images)
    assert emb.coords.shape == (60, 2) and emb.indices.tolist() == list(range(60))
    assert emb.method == "PCA" and emb.explained[0] > 0.5  # One direction explains the split.
    first = emb.coords[:, 0]
    # All of one class on one side of zero, all of the other on the other side.
    assert (np.sign(first[labels == 0]) == np.sign(first[0])).all()
    assert (np.sign(first[labels == 1]) == -np.sign(first[0])).all()


def test_pca_embedding_subsamples():
    images, _ = _two_classes()
    emb = exploration.pca_embedding(images, n=20, seed=0)
    assert emb.coords.shape == (20, 2) and len(emb.indices) == 20


def test_tsne_embedding_keeps_each_class_together():
    images, labels = _two_classes(n_each=25)
    emb = exploration.tsne_embedding(images, n=1000, seed=0)  # n > N: all 50 images.
    assert emb.coords.shape == (50, 2) and emb.method == "t-SNE"
    lab = labels[emb.indices]
    c0, c1 = emb.coords[lab == 0].mean(axis=0), emb.coords[lab == 1].mean(axis=0)
    spread = max(emb.coords[lab == 0].std(axis=0).max(), emb.coords[lab == 1].std(axis=0).max())
    assert np.linalg.norm(c0 - c1) > 2 * spread


def test_tsne_embedding_refuses_too_few_images():
    with pytest.raises(ValueError, match="at least 5"):
        exploration.tsne_embedding(np.zeros((3, 28, 28), np.uint8))


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([{"customdata": [5, 1, 6]}, {"customdata": [7, 2, 8]}], [5, 7]),
        ([{"customdata": {"0": 66, "1": 1, "2": 67}}], [66]),  # What Streamlit actually sends.
        ([{"customdata": 3}, {"x": 1.0}, {"customdata": [3, 0, 4]}], [3]),  # Unique, no customdata skipped.
        ([], []),
    ],
)
def test_selected_indices_reads_every_shape_of_customdata(points, expected):
    assert exploration.selected_indices(points).tolist() == expected


# --------------------------------------------------------------------------- quality checks


def test_duplicate_groups_finds_the_planted_duplicates():
    images = _distinct(10)
    images[7] = images[2]
    images[9] = images[2]
    images[5] = images[4]
    groups = exploration.duplicate_groups(images)
    assert [g.tolist() for g in groups] == [[2, 7, 9], [4, 5]]
    assert exploration.duplicate_groups(_distinct(10)) == []


def test_duplicate_groups_never_reports_a_hash_collision(monkeypatch):
    images = _distinct(4)
    images[3] = images[1]
    monkeypatch.setattr(data, "row_hashes", lambda imgs: np.zeros(len(imgs), np.uint64))  # All collide.
    assert [g.tolist() for g in exploration.duplicate_groups(images)] == [[1, 3]]


def test_shared_images_finds_the_image_in_both_sets():
    a, b = _distinct(6, seed=1), _distinct(4, seed=2)
    b[2] = a[4]
    assert exploration.shared_images(a, b) == [(4, 2)]
    assert exploration.shared_images(a, _distinct(4, seed=3)) == []


def test_blank_indices_finds_the_planted_blank_but_not_a_thin_digit():
    images = np.stack(
        [
            _digit(0, ink=100),
            _digit(0, ink=0),  # empty
            _digit(40, ink=exploration.MIN_INK_PIXELS - 1),  # faint background, almost no ink
            _digit(0, ink=exploration.MIN_INK_PIXELS),  # thin but real
        ]
    )
    assert exploration.blank_indices(images).tolist() == [1, 2]


def _planted():
    """Train: 20 digits, #5 duplicates #2 with another label, #8 blank. Test: #1 is train's #10."""
    train = _distinct(20, seed=4)
    labels = np.arange(20) % 10
    train[5] = train[2]
    train[8] = 0
    test = _distinct(4, seed=5)
    test[1] = train[10]
    return train, labels, test


def test_quality_checks_report_every_planted_problem(planted_problems_found):
    train, labels, test = _planted()
    checks = exploration.quality_checks(train, labels, test)
    found = {(c.check, c.set): c.found for c in checks}
    assert found == planted_problems_found
    by_key = {(c.check, c.set): c for c in checks}
    dup = by_key[("Duplicates with different labels", "train")]
    assert dup.status == exploration.STATUS_WARN
    assert dup.captions == ("#3 (2)", "#6 (5)")  # Rows counted from 1, label in brackets.
    assert np.array_equal(dup.examples[0], train[2]) and np.array_equal(dup.examples[1], train[2])
    shared = by_key[("Shared between train and test", "train+test")]
    assert shared.captions == ("train #11", "test #2")
    blank = by_key[("Blank or near-blank images", "train")]
    assert blank.captions == ("#9 (8) ink 0",) and blank.examples.shape == (1, 28, 28)
    assert by_key[("Exact duplicate images", "test")].examples.shape == (0, 28, 28)


def test_quality_checks_without_a_test_set_skip_the_overlap_check():
    train, labels, _ = _planted()
    checks = exploration.quality_checks(train, labels)
    assert {c.set for c in checks} == {"train"}
    assert "Shared between train and test" not in {c.check for c in checks}


def test_quality_checks_limit_the_examples():
    images = np.zeros((30, 28, 28), np.uint8)  # 30 blanks, all identical.
    checks = exploration.quality_checks(images, np.zeros(30, np.int64), max_examples=4)
    by_check = {c.check: c for c in checks}
    assert by_check["Exact duplicate images"].found == 29
    assert by_check["Exact duplicate images"].detail == "29 extra copies in 1 group"
    assert len(by_check["Exact duplicate images"].examples) == 4
    assert by_check["Blank or near-blank images"].found == 30
    skew = by_check["Label distribution skew"]
    assert skew.found == 10  # Nine digits missing, and 0 far above the mean of 3.
    assert skew.detail.startswith("no images at all of digit 1, 2, 3, 4, 5, 6, 7, 8, 9")


def test_label_skew_check_names_the_rare_digit():
    counts = np.array([100] * 9 + [20])
    check = exploration.label_skew_check(counts)
    assert check.found == 1 and check.status == exploration.STATUS_WARN
    assert "fewest: 9 (20)" in check.detail and "skewed digits: 9" in check.detail
    even = exploration.label_skew_check(np.array([901, 1014, 892, 929, 882, 777, 912, 963, 850, 880]))
    assert even.found == 0 and even.status == exploration.STATUS_OK and "ratio 1.31x" in even.detail


def test_checks_table_has_one_row_per_check_with_a_readable_status():
    train, labels, test = _planted()
    table = exploration.checks_table(exploration.quality_checks(train, labels, test))
    assert table.columns.tolist() == ["check", "set", "found", "status", "detail"]
    assert len(table) == 9
    assert table["status"].tolist().count("⚠️ look") == 4
    assert table["status"].tolist().count("✅ ok") == 5


def test_pca_embedding_matches_scikit_learn():
    """The numpy PCA gives scikit-learn's map (signs included) and its explained variance."""
    from sklearn.decomposition import PCA

    images = np.random.default_rng(5).integers(0, 256, (300, 28, 28), dtype=np.uint8)
    images[:150, 5:20, 10:14] = 255  # some structure, so the axes are well separated
    exploration.PCA_CHUNK, saved = 64, exploration.PCA_CHUNK  # several chunks
    try:
        emb = exploration.pca_embedding(images, n=250, seed=2)
    finally:
        exploration.PCA_CHUNK = saved
    x = images[emb.indices].reshape(250, -1).astype(np.float32) / 255.0
    ref = PCA(n_components=2, svd_solver="full").fit(x)
    np.testing.assert_allclose(emb.coords, ref.transform(x), atol=2e-3)
    np.testing.assert_allclose(emb.explained, ref.explained_variance_ratio_, rtol=1e-4)


def test_tsne_in_a_child_process_gives_the_map_computed_here():
    from core import tsne_process

    images, _ = _two_classes(n_each=25)
    here = exploration.tsne_embedding(images, n=40, seed=1)
    there = tsne_process.tsne_in_child(images, n=40, seed=1)
    np.testing.assert_array_equal(there.indices, here.indices)
    np.testing.assert_allclose(there.coords, here.coords, atol=1e-4)
    with pytest.raises(ValueError, match="at least 5"):
        tsne_process.tsne_in_child(images[:4])
