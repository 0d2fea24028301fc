"""core.data: loading, validating, caching, splitting and writing Kaggle digit files."""

from __future__ import annotations

import gzip
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core import data, kaggle_csv

CORPUS = Path(__file__).resolve().parent / "corpus"
# Digits 0..9 in the shared 10,000 MNIST digits the sample was cut from (shared data README).
README_COUNTS = np.array([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978])


@pytest.fixture(scope="module")
def small(sample_train: data.Dataset) -> data.Dataset:
    """60 real digits with labels, for files written and read back."""
    return data.Dataset(
        sample_train.images[:60].copy(), sample_train.labels[:60].copy(), "small", "sample", "x"
    )


def cache_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.npy"))


# --------------------------------------------------------------------------- good files


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", "bytes", "gz-bytes"])
def test_train_file_round_trips_in_every_form(tmp_path: Path, small: data.Dataset, suffix: str) -> None:
    path = kaggle_csv.write_kaggle_csv(tmp_path / "train.csv", small.images, small.labels)
    if suffix == ".csv.gz":
        path = kaggle_csv.write_kaggle_csv(tmp_path / "train.csv.gz", small.images, small.labels)
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    source = {
        "bytes": path.read_bytes(),
        "gz-bytes": gzip.compress(path.read_bytes()),
    }.get(suffix, path)
    ds = data.parse_csv(source, expect_labels=True)
    assert ds.images.dtype == np.uint8 and ds.images.shape == (60, 28, 28)
    assert ds.labels is not None and ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.images, small.images)
    np.testing.assert_array_equal(ds.labels, small.labels)
    assert ds.fingerprint == data.fingerprint(small.images, small.labels)
    assert ds.name == ("uploaded file" if isinstance(source, bytes) else path.name)
    assert ds.source == data.SOURCE_UPLOAD


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_test_file_has_no_labels(tmp_path: Path, small: data.Dataset, suffix: str) -> None:
    path = kaggle_csv.write_kaggle_csv(tmp_path / f"test{suffix}", small.images)
    for expect in (False, None):
        ds = data.parse_csv(path, expect_labels=expect)
        assert ds.labels is None and not ds.has_labels
        np.testing.assert_array_equal(ds.images, small.images)
        assert ds.fingerprint == data.fingerprint(small.images)
        assert ds.class_counts().tolist() == [0] * 10


# --------------------------------------------------------------------------- the committed sample


def test_sample_sizes_labels_and_balance(
    sample_train: data.Dataset, sample_test: data.Dataset, sample_answers: np.ndarray
) -> None:
    assert sample_train.n == 9000 and sample_train.images.shape == (9000, 28, 28)
    assert sample_train.labels is not None and set(np.unique(sample_train.labels)) == set(range(10))
    assert sample_test.n == 1000 and sample_test.labels is None
    assert sample_answers.shape == (1000,) and sample_answers.dtype == np.int64
    assert sample_answers.min() == 0 and sample_answers.max() == 9
    # Train + test are exactly the shared 10,000 digits, split stratified.
    total = sample_train.class_counts() + np.bincount(sample_answers, minlength=10)
    np.testing.assert_array_equal(total, README_COUNTS)
    share = README_COUNTS / README_COUNTS.sum()
    assert np.abs(sample_train.class_counts() / 9000 - share).max() < 0.002
    assert np.abs(np.bincount(sample_answers, minlength=10) / 1000 - share).max() < 0.005
    # Real digits, not blanks: ink on most pixels somewhere, none in both sets twice.
    assert (sample_train.images.max(axis=0) > 0).mean() > 0.8
    both = np.intersect1d(data.row_hashes(sample_train.images), data.row_hashes(sample_test.images))
    assert both.size == 0


def test_find_data_falls_back_to_the_sample(tmp_dirs, sample_train: data.Dataset) -> None:
    files = data.find_data()
    assert files.source == data.SOURCE_SAMPLE
    assert files.train == data.paths.sample_dir() / "train.csv.gz"
    assert files.test == data.paths.sample_dir() / "test.csv.gz"
    assert files.answers == data.paths.sample_dir() / "test_answers.csv"
    train = data.load_train(files)
    assert train.source == data.SOURCE_SAMPLE and train.fingerprint == sample_train.fingerprint
    test = data.load_test(files)
    assert test is not None and test.n == 1000 and test.labels is None
    assert len(cache_files(tmp_dirs.cache)) == 2  # cached in the test's folder, not the repo's


def test_find_data_prefers_kaggle_files(tmp_dirs, small: data.Dataset) -> None:
    kaggle_csv.write_kaggle_csv(tmp_dirs.data / "train.csv.gz", small.images, small.labels)
    files = data.find_data()
    assert files.source == data.SOURCE_KAGGLE
    assert files.train == tmp_dirs.data / "train.csv.gz" and files.test is None
    assert data.load_test(files) is None
    kaggle_csv.write_kaggle_csv(tmp_dirs.data / "test.csv", small.images[:7])
    files = data.find_data()
    assert files.test == tmp_dirs.data / "test.csv"
    assert data.load_test(files).n == 7
    assert data.load_train(files).source == data.SOURCE_KAGGLE


def test_load_answers_refuses_bad_files(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("ImageId,Label\n1,3\n3,4\n")
    with pytest.raises(ValueError, match=r"a\.csv: expected ImageId,Label with ImageId 1\.\.n"):
        data.load_answers(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("ImageId,Label\n1,3\n2,12\n")
    with pytest.raises(ValueError, match=r"b\.csv: every Label must be a digit"):
        data.load_answers(tmp_path / "b.csv")
    with pytest.raises(ValueError, match=r"c\.csv"):
        data.load_answers(tmp_path / "c.csv")


# --------------------------------------------------------------------------- Kaggle's zip


def kaggle_zip(path: Path, train: bytes | None, test: bytes | None, folder: str = "") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if train is not None:
            zf.writestr(f"{folder}train.csv", train)
        if test is not None:
            zf.writestr(f"{folder}test.csv", test)
        zf.writestr("sample_submission.csv", "ImageId,Label\n1,0\n")
    return path


def test_find_data_unpacks_kaggles_zip(tmp_dirs, small: data.Dataset) -> None:
    train_bytes = kaggle_csv.to_csv_bytes(small.images, small.labels)
    test_bytes = kaggle_csv.to_csv_bytes(small.images[:9])
    kaggle_zip(tmp_dirs.data / "digit-recognizer.zip", train_bytes, test_bytes)
    files = data.find_data()
    assert files.source == data.SOURCE_KAGGLE
    assert files.train == tmp_dirs.data / "train.csv" and files.test == tmp_dirs.data / "test.csv"
    assert files.train.read_bytes() == train_bytes and files.test.read_bytes() == test_bytes
    # Unpacking also primed the cache: loading is a cache hit (no parsing).
    assert len(cache_files(tmp_dirs.cache)) == 2
    train = data.load_train(files)
    np.testing.assert_array_equal(train.images, small.images)
    np.testing.assert_array_equal(train.labels, small.labels)
    assert data.load_test(files).n == 9
    # Once unpacked, the zip is left alone.
    assert data.unpack_kaggle_zip() is False
    assert data.find_data() == files


def test_load_zip_reads_members_in_a_folder(tmp_path: Path, small: data.Dataset) -> None:
    path = kaggle_zip(
        tmp_path / "dr.zip",
        kaggle_csv.to_csv_bytes(small.images, small.labels),
        kaggle_csv.to_csv_bytes(small.images[:3]),
        folder="digit-recognizer/",
    )
    for source in (path, path.read_bytes()):
        train, test = data.load_zip(source)
        assert train.n == 60 and test.n == 3 and test.labels is None
        assert train.source == data.SOURCE_KAGGLE
    assert train.name == "uploaded zip/train.csv"
    # A copy deeper in the archive (or a macOS resource fork) does not shadow the top-level file.
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("backup/old/train.csv", "garbage")
        zf.writestr("__MACOSX/train.csv", "garbage")
    train, _ = data.load_zip(path)
    assert train.n == 60


@pytest.mark.parametrize(
    ("train", "test", "missing"),
    [(True, False, "no test.csv"), (False, True, "no train.csv"), (False, False, "no train.csv or test.csv")],
)
def test_zip_missing_a_member_names_it(tmp_dirs, small, train: bool, test: bool, missing: str) -> None:
    body = kaggle_csv.to_csv_bytes(small.images[:2], small.labels[:2])
    kaggle_zip(tmp_dirs.data / "digit-recognizer.zip", body if train else None, body if test else None)
    with pytest.raises(ValueError, match=f"digit-recognizer.zip: the zip has {missing} "):
        data.find_data()
    assert not (tmp_dirs.data / "train.csv").exists() and not (tmp_dirs.data / "test.csv").exists()


def test_zip_with_a_bad_member_writes_nothing(tmp_dirs, small: data.Dataset) -> None:
    good = kaggle_csv.to_csv_bytes(small.images[:2], small.labels[:2])
    kaggle_zip(tmp_dirs.data / "digit-recognizer.zip", good, good)  # test.csv has a label column
    with pytest.raises(ValueError, match="digit-recognizer.zip/test.csv: this is a training file"):
        data.find_data()
    assert sorted(p.name for p in tmp_dirs.data.iterdir()) == ["digit-recognizer.zip"]


def test_not_a_zip(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="x.zip: not a readable zip archive"):
        data.load_zip(b"PK\x03\x04 not really", name="x.zip")
    with pytest.raises(ValueError, match="is a zip archive, not a CSV"):
        data.parse_csv((CORPUS / "kaggle.zip").read_bytes())


def test_zip_without_the_csvs() -> None:
    with pytest.raises(
        ValueError, match=r"no_csvs.zip: the zip has no train.csv or test.csv \(found: readme"
    ):
        data.load_zip(CORPUS / "no_csvs.zip")
    with pytest.raises(ValueError, match="only_train.zip: the zip has no test.csv"):
        data.load_zip(CORPUS / "only_train.zip")
    train, test = data.load_zip(CORPUS / "kaggle.zip")
    assert (train.n, test.n) == (3, 3)


# --------------------------------------------------------------------------- the cache


def test_second_load_is_a_cache_hit(tmp_dirs, small: data.Dataset, monkeypatch) -> None:
    path = kaggle_csv.write_kaggle_csv(tmp_dirs.data / "train.csv", small.images, small.labels)
    first = data.load_csv(path, expect_labels=True)
    assert len(cache_files(tmp_dirs.cache)) == 1
    assert len(list(tmp_dirs.cache.iterdir())) == 1  # no temporary file left beside it

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed again despite a valid cache")

    monkeypatch.setattr(data, "parse_csv", no_parsing)
    second = data.load_csv(path, expect_labels=True, source_kind="mine")
    np.testing.assert_array_equal(second.images, first.images)
    np.testing.assert_array_equal(second.labels, first.labels)
    assert second.images.dtype == np.uint8 and second.labels.dtype == np.int64
    assert second.fingerprint == first.fingerprint == data.fingerprint(small.images, small.labels)
    assert (second.name, second.source) == ("train.csv", "mine")
    # A cache hit still checks what the caller expects.
    monkeypatch.undo()
    with pytest.raises(ValueError, match="this is a training file"):
        data.load_csv(path, expect_labels=False)


def test_edited_file_is_parsed_again(tmp_dirs, small: data.Dataset) -> None:
    path = kaggle_csv.write_kaggle_csv(tmp_dirs.data / "train.csv", small.images, small.labels)
    assert data.load_csv(path).labels[0] == small.labels[0]
    # Same size, same modification time, edited in place: still noticed.
    body = bytearray(path.read_bytes())
    start = body.index(b"\n") + 1
    new_label = (int(small.labels[0]) + 1) % 10
    body[start] = ord(str(new_label))
    stat = path.stat()
    with open(path, "r+b") as f:
        f.write(body)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert data.load_csv(path).labels[0] == new_label
    # Replaced by a different file: parsed again; only the newest copy stays cached.
    kaggle_csv.write_kaggle_csv(path, small.images[:4], small.labels[:4])
    assert data.load_csv(path).n == 4
    assert len(cache_files(tmp_dirs.cache)) == 1


def test_same_name_in_two_folders_keeps_both_cached(tmp_dirs, small: data.Dataset) -> None:
    a = kaggle_csv.write_kaggle_csv(tmp_dirs.data / "a" / "train.csv", small.images[:3], small.labels[:3])
    b = kaggle_csv.write_kaggle_csv(tmp_dirs.data / "b" / "train.csv", small.images[:5], small.labels[:5])
    assert (data.load_csv(a).n, data.load_csv(b).n) == (3, 5)
    assert len(cache_files(tmp_dirs.cache)) == 2
    assert (data.load_csv(a).n, data.load_csv(b).n) == (3, 5)


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: b"garbage" * 10,  # not a cache at all
        lambda b: b + b"x",  # trailing bytes
        lambda b: b"",  # empty
        lambda b: b.replace(b'"n": 60', b'"n": 61'),  # header disagrees with the arrays
    ],
    ids=["truncated", "garbage", "trailing", "empty", "wrong-count"],
)
def test_damaged_cache_is_ignored(tmp_dirs, small: data.Dataset, damage) -> None:
    path = kaggle_csv.write_kaggle_csv(tmp_dirs.data / "train.csv", small.images, small.labels)
    data.load_csv(path)
    (cache,) = cache_files(tmp_dirs.cache)
    cache.write_bytes(damage(cache.read_bytes()))
    ds = data.load_csv(path)
    np.testing.assert_array_equal(ds.images, small.images)
    np.testing.assert_array_equal(ds.labels, small.labels)
    assert data.load_csv(path).fingerprint == ds.fingerprint  # and the cache is written afresh


def test_bad_file_is_not_cached_and_use_cache_false_writes_nothing(tmp_dirs, small) -> None:
    bad = tmp_dirs.data / "bad.csv"
    bad.write_bytes((CORPUS / "pixel_256.csv").read_bytes())
    with pytest.raises(ValueError, match="row 3, column pixel5"):
        data.load_csv(bad)
    good = kaggle_csv.write_kaggle_csv(tmp_dirs.data / "good.csv", small.images, small.labels)
    assert data.load_csv(good, use_cache=False).n == 60
    assert cache_files(tmp_dirs.cache) == []


def test_unwritable_cache_only_costs_speed(tmp_dirs, small, monkeypatch) -> None:
    blocker = tmp_dirs.cache / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DRS_CACHE_DIR", str(blocker / "cache"))
    path = kaggle_csv.write_kaggle_csv(tmp_dirs.data / "train.csv", small.images, small.labels)
    assert data.load_csv(path).n == data.load_csv(path).n == 60


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nope.csv: file not found"):
        data.load_csv(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="nope.csv: file not found"):
        data.parse_csv(tmp_path / "nope.csv")


# --------------------------------------------------------------------------- splits


def test_split_is_stable_stratified_disjoint_and_complete(sample_train: data.Dataset) -> None:
    labels = sample_train.labels
    train_idx, val_idx = data.split_indices(labels, val_fraction=0.2, seed=3)
    again = data.split_indices(labels, val_fraction=0.2, seed=3)
    np.testing.assert_array_equal(train_idx, again[0])
    np.testing.assert_array_equal(val_idx, again[1])
    other = data.split_indices(labels, val_fraction=0.2, seed=4)[1]
    assert not np.array_equal(val_idx, other)
    assert len(np.intersect1d(train_idx, val_idx)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train_idx, val_idx])), np.arange(len(labels)))
    assert len(val_idx) == 1800 and np.all(np.diff(val_idx) > 0)
    per_class_val = np.bincount(labels[val_idx], minlength=10)
    np.testing.assert_allclose(per_class_val, 0.2 * np.bincount(labels), atol=1)
    record = data.describe_split(labels, val_idx, val_fraction=0.2, seed=3)
    assert record["n_train"] == 7200 and record["n_val"] == 1800
    assert record == data.describe_split(labels, again[1], val_fraction=0.2, seed=3)


@pytest.mark.parametrize(
    "labels",
    [np.array([0, 1, 1, 1, 2, 2, 2, 2, 3, 3]), np.arange(10), np.array([4, 4])],
    ids=["a-rare-class", "all-unique", "two"],
)
def test_split_small_or_rare_sets(labels: np.ndarray) -> None:
    train_idx, val_idx = data.split_indices(labels, val_fraction=0.3, seed=0)
    assert len(train_idx) > 0 and len(val_idx) > 0
    assert len(train_idx) + len(val_idx) == len(labels)


def test_split_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="val_fraction must be between 0 and 0.9, got 0.95"):
        data.split_indices(np.arange(10) % 3, val_fraction=0.95)
    with pytest.raises(ValueError, match="val_fraction must be between 0 and 0.9, got 0"):
        data.split_indices(np.arange(10) % 3, val_fraction=0)
    with pytest.raises(ValueError, match="need at least 2 labelled digits"):
        data.split_indices(np.array([3]))


# --------------------------------------------------------------------------- fingerprints


def test_fingerprint_follows_content(small: data.Dataset) -> None:
    fp = data.fingerprint(small.images, small.labels)
    assert fp == data.fingerprint(small.images.copy(), small.labels.copy())
    assert fp == data.fingerprint(small.images.astype(np.int64), small.labels.astype(np.int32))
    assert len(fp) == 16 and int(fp, 16) >= 0
    changed = small.images.copy()
    changed[5, 14, 14] ^= 1
    relabelled = small.labels.copy()
    relabelled[0] = (relabelled[0] + 1) % 10
    others = {
        data.fingerprint(changed, small.labels),
        data.fingerprint(small.images, relabelled),
        data.fingerprint(small.images[::-1], small.labels[::-1]),
        data.fingerprint(small.images),
    }
    assert fp not in others and len(others) == 4


def test_row_hashes_find_equal_digits(sample_train: data.Dataset) -> None:
    hashes = data.row_hashes(sample_train.images)
    assert hashes.shape == (9000,) and hashes.dtype == np.uint64
    unique_rows = len(np.unique(sample_train.images.reshape(9000, -1), axis=0))
    assert len(np.unique(hashes)) == unique_rows
    np.testing.assert_array_equal(data.row_hashes(sample_train.images[[3, 3, 7]]), hashes[[3, 3, 7]])
    assert data.row_hashes(sample_train.images[:0]).shape == (0,)  # an empty set has no hashes, no error
    one = sample_train.images[:1].copy()
    for y, x in [(0, 0), (14, 14), (27, 27)]:
        moved = one.copy()
        moved[0, y, x] += 1
        assert data.row_hashes(moved)[0] != hashes[0]


# --------------------------------------------------------------------------- digits users teach


def test_user_digits_round_trip(tmp_dirs, small: data.Dataset) -> None:
    assert data.load_user_digits() is None
    for image, label in zip(small.images[:3], small.labels[:3], strict=True):
        path = data.append_user_digit(image, int(label))
    assert path == tmp_dirs.data / "user_digits.csv"
    assert path.read_text().count("label,pixel0") == 1
    ds = data.load_user_digits()
    assert ds is not None and ds.n == 3 and ds.source == data.SOURCE_USER
    np.testing.assert_array_equal(ds.images, small.images[:3])
    np.testing.assert_array_equal(ds.labels, small.labels[:3])
    # A float image (as a canvas gives) with whole values is stored exactly.
    data.append_user_digit(small.images[3].astype(np.float64), np.int64(small.labels[3]))
    np.testing.assert_array_equal(data.load_user_digits().images[3], small.images[3])
    assert cache_files(tmp_dirs.cache) == []  # a small, growing file is never cached


@pytest.mark.parametrize(
    ("image", "label", "message"),
    [
        (np.zeros((28, 28)), 10, "label must be a digit 0..9, got 10"),
        (np.zeros((28, 28)), -1, "label must be a digit 0..9, got -1"),
        (np.zeros((28, 28)), 2.5, "label must be a digit 0..9, got 2.5"),
        (np.zeros((28, 28)), True, "label must be a digit 0..9, got True"),
        (np.zeros((28, 27)), 3, r"expected a 28x28 image, got shape \(28, 27\)"),
        (np.full((28, 28), 300), 3, "image values must be integers 0..255"),
        (np.full((28, 28), np.nan), 3, "image values must be integers 0..255"),
    ],
)
def test_user_digit_refused(tmp_dirs, image, label, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        data.append_user_digit(image, label)
    assert not (tmp_dirs.data / "user_digits.csv").exists()
