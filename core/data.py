"""The digits the studio works on: find, load and cache Kaggle's files (csv, csv.gz, zip), the
committed sample, uploads, digits users teach; stable train/validation splits; fingerprints.

Every loader returns a `Dataset` of `uint8` images shaped `(n, 28, 28)` and `int64` labels (or
None for a test file). The file format itself (reading, validating, writing) is `core.kaggle_csv`;
a bad file is refused with its `ValueError`, naming the file, the row/column and what was
expected, and nothing is cached for it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import kaggle_csv, paths

# The shape of every loaded image, defined by the file format (callers read `data.SIDE`).
from core.kaggle_csv import N_PIXELS as N_PIXELS
from core.kaggle_csv import SIDE as SIDE

CACHE_VERSION = 2


# Where data comes from; recorded with every model (leakage checks read it).
SOURCE_SAMPLE = "sample"
SOURCE_KAGGLE = "kaggle"
SOURCE_UPLOAD = "upload"
SOURCE_MNIST = "mnist-download"
SOURCE_USER = "user-digits"


@dataclass(frozen=True)
class Dataset:
    """Images `(n, 28, 28) uint8`, labels `(n,) int64` or None, and where they came from."""

    images: np.ndarray
    labels: np.ndarray | None
    name: str
    source: str
    fingerprint: str

    @property
    def n(self) -> int:
        return int(self.images.shape[0])

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    def class_counts(self) -> np.ndarray:
        """Images per digit 0..9 (zeros for an unlabelled set)."""
        if self.labels is None:
            return np.zeros(10, dtype=np.int64)
        return np.bincount(self.labels, minlength=10)


@dataclass(frozen=True)
class DataFiles:
    """The files the studio will use: Kaggle's if the user has them, else the committed sample."""

    train: Path | None
    test: Path | None
    source: str
    answers: Path | None = None


# --------------------------------------------------------------------------- fingerprints


def fingerprint(images: np.ndarray, labels: np.ndarray | None = None) -> str:
    """A short content hash: the same digits in the same order give the same fingerprint."""
    h = hashlib.blake2b(digest_size=8)
    h.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    if labels is not None:
        h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()


def row_hashes(images: np.ndarray) -> np.ndarray:
    """One 64-bit hash per image, to find the same digit in two sets (leakage, duplicates)."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    flat = images.reshape(len(images), int(np.prod(images.shape[1:])))  # an empty set too: (0, 784)
    # Two independent multiply-add folds over the 784 bytes; collisions are ~2^-64 per pair.
    weights = np.random.default_rng(12345).integers(1, 2**62, size=flat.shape[1], dtype=np.uint64)
    out = np.empty(len(flat), dtype=np.uint64)
    step = 512  # uint64 working copies of ~3 MB each (4096 rows held ~50 MB), and faster in cache
    with np.errstate(over="ignore"):
        for i in range(0, len(flat), step):
            block = flat[i : i + step]
            out[i : i + step] = (block.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64) ^ block.sum(
                axis=1, dtype=np.uint64
            )
    return out


# --------------------------------------------------------------------------- parsing


def parse_csv(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    expect_labels: bool | None = None,
    source_kind: str = SOURCE_UPLOAD,
) -> Dataset:
    """Parse and validate a Kaggle-format CSV (plain or gzip) from a path or bytes, uncached.

    `expect_labels` True demands `label,pixel0..pixel783`, False demands `pixel0..pixel783`,
    None accepts either. Raises `ValueError` naming the file, the row (counted from 1 after the
    header) and the column of the first problem, e.g. "train.csv: row 3, column pixel5: ...".
    """
    if name is None:
        name = "uploaded file" if isinstance(source, bytes | bytearray | memoryview) else Path(source).name
    images, labels = kaggle_csv.read_kaggle_csv(source, name=name, expect_labels=expect_labels)
    return Dataset(images, labels, name, source_kind, fingerprint(images, labels))


# --------------------------------------------------------------------------- cached loading


def _cache_path(path: Path) -> Path:
    """`<cache>/<file name>.<path key>.<content key>.npy`: one live copy per source file."""
    resolved = path.resolve()
    st = resolved.stat()
    where = hashlib.blake2b(str(resolved).encode(), digest_size=6).hexdigest()
    # Inode and ctime as well as size and mtime: an edit that keeps size and mtime still shows.
    state = f"{CACHE_VERSION}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_ctime_ns}"
    key = hashlib.blake2b(state.encode(), digest_size=8).hexdigest()
    return paths.cache_dir() / f"{path.name}.{where}.{key}.npy"


def _read_cache(cache: Path, name: str, source_kind: str) -> Dataset | None:
    """The cached arrays, or None if the cache is missing or damaged in any way."""
    try:
        with open(cache, "rb") as f:
            meta = json.loads(str(np.load(f, allow_pickle=False)))
            images = np.load(f, allow_pickle=False)
            labels = np.load(f, allow_pickle=False) if meta["has_labels"] else None
            trailing = f.read(1)
        n = int(meta["n"])
        if (
            meta["version"] != CACHE_VERSION
            or trailing
            or images.dtype != np.uint8
            or images.shape != (n, SIDE, SIDE)
            or (labels is not None and (labels.dtype != np.int64 or labels.shape != (n,)))
        ):
            return None
        return Dataset(images, labels, name, source_kind, str(meta["fingerprint"]))
    except Exception:  # noqa: BLE001 - any damage to a cache file just means parsing again
        return None


def _write_cache(cache: Path, ds: Dataset) -> None:
    """Save the parsed arrays as raw `.npy` blocks (fast to read back); drop older copies."""
    meta = {"version": CACHE_VERSION, "n": ds.n, "has_labels": ds.has_labels, "fingerprint": ds.fingerprint}
    body = io.BytesIO()
    np.save(body, np.array(json.dumps(meta)), allow_pickle=False)
    np.save(body, np.ascontiguousarray(ds.images, dtype=np.uint8), allow_pickle=False)
    if ds.labels is not None:
        np.save(body, np.ascontiguousarray(ds.labels, dtype=np.int64), allow_pickle=False)
    try:
        stem = cache.name.rsplit(".", 2)[0]  # "<file name>.<path key>"
        for old in cache.parent.glob(f"{stem}.*.npy"):
            if old != cache:
                old.unlink(missing_ok=True)
        paths.write_atomic(cache, body.getbuffer())  # a view: no second copy of the arrays
    except OSError:
        pass  # A read-only or full disk only costs speed.


def load_csv(
    path: str | Path,
    *,
    expect_labels: bool | None = None,
    source_kind: str = SOURCE_KAGGLE,
    use_cache: bool = True,
) -> Dataset:
    """Load a Kaggle CSV from disk, reusing a parsed copy (in `paths.cache_dir()`) while the file
    is unchanged.

    The cache key is the file's path, size, modification time and inode, so an edited file is
    parsed again; a damaged cache is ignored; a cache that cannot be written only costs speed.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path.name}: file not found in {path.parent}")
    cache = _cache_path(path) if use_cache else None
    if cache is not None and cache.is_file():
        ds = _read_cache(cache, path.name, source_kind)
        if ds is not None and (expect_labels is None or expect_labels == ds.has_labels):
            return ds
    ds = parse_csv(path, name=path.name, expect_labels=expect_labels, source_kind=source_kind)
    if cache is not None:
        _write_cache(cache, ds)
    return ds


def _zip_members(source: str | Path | bytes, name: str) -> dict[str, bytes]:
    """`train.csv` and `test.csv` from Kaggle's zip (in any folder inside it), as bytes."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{name}: not a readable zip archive ({exc})") from None
    with zf:
        members: dict[str, zipfile.ZipInfo] = {}
        # Shallowest first, skipping macOS resource forks, so "train.csv" wins over "x/train.csv".
        for info in sorted(zf.infolist(), key=lambda i: (i.filename.count("/"), i.filename)):
            if info.is_dir() or info.filename.startswith("__MACOSX/"):
                continue
            members.setdefault(Path(info.filename).name, info)
        missing = [f for f in ("train.csv", "test.csv") if f not in members]
        if missing:
            raise ValueError(
                f"{name}: the zip has no {' or '.join(missing)} "
                f"(found: {', '.join(sorted(members)[:5]) or 'nothing'})"
            )
        out = {}
        for member in ("train.csv", "test.csv"):
            info = members[member]
            if info.file_size > kaggle_csv.MAX_CSV_BYTES:
                size, limit = (kaggle_csv.format_size(n) for n in (info.file_size, kaggle_csv.MAX_CSV_BYTES))
                raise ValueError(f"{name}: {member} is {size}, more than the {limit} limit")
            try:
                out[member] = zf.read(info)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                raise ValueError(f"{name}: {member} cannot be read from the zip ({exc})") from None
    return out


def load_zip(source: str | Path | bytes, *, name: str | None = None) -> tuple[Dataset, Dataset]:
    """Read Kaggle's `digit-recognizer.zip` (train.csv + test.csv inside) -> (train, test)."""
    name = name or (Path(source).name if not isinstance(source, bytes) else "uploaded zip")
    members = _zip_members(source, name)
    train = parse_csv(
        members["train.csv"], name=f"{name}/train.csv", expect_labels=True, source_kind=SOURCE_KAGGLE
    )
    test = parse_csv(
        members["test.csv"], name=f"{name}/test.csv", expect_labels=False, source_kind=SOURCE_KAGGLE
    )
    return train, test


# --------------------------------------------------------------------------- finding data


def _first_existing(folder: Path, stem: str) -> Path | None:
    for suffix in (".csv", ".csv.gz"):
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def mnist_download_file(folder: Path | None = None) -> Path | None:
    """`data/mnist-full.csv` (or `.csv.gz`) when the full MNIST download is there, else None."""
    return _first_existing(folder or paths.data_dir(), "mnist-full")


def unpack_kaggle_zip(folder: Path | None = None) -> bool:
    """If `data/digit-recognizer.zip` is there without CSVs beside it, extract them; True if done.

    Both files are validated before anything is written; test.csv is written first because the
    presence of train.csv is what marks the data as ready.
    """
    folder = folder or paths.data_dir()
    archive = folder / "digit-recognizer.zip"
    if not archive.is_file() or _first_existing(folder, "train"):
        return False
    members = _zip_members(archive, archive.name)
    parsed = {
        member: parse_csv(
            members[member],
            name=f"{archive.name}/{member}",
            expect_labels=member == "train.csv",
            source_kind=SOURCE_KAGGLE,
        )
        for member in ("train.csv", "test.csv")
    }
    for member in ("test.csv", "train.csv"):
        path = paths.write_atomic(folder / member, members[member])
        _write_cache(_cache_path(path), parsed[member])  # The first load is then a cache hit.
    return True


def find_data(folder: Path | None = None) -> DataFiles:
    """Kaggle's files in `data/` (csv, csv.gz, or the zip) if present, else the committed sample."""
    folder = folder or paths.data_dir()
    if (folder / "digit-recognizer.zip").is_file():
        unpack_kaggle_zip(folder)
    train = _first_existing(folder, "train")
    if train is not None:
        return DataFiles(train, _first_existing(folder, "test"), SOURCE_KAGGLE)
    mnist = mnist_download_file(folder)
    if mnist is not None:
        return DataFiles(mnist, None, SOURCE_MNIST)
    sample = paths.sample_dir()
    return DataFiles(
        sample / "train.csv.gz", sample / "test.csv.gz", SOURCE_SAMPLE, sample / "test_answers.csv"
    )


def load_train(files: DataFiles | None = None) -> Dataset:
    """The training set the studio uses now (Kaggle's, the MNIST download, or the sample)."""
    files = files or find_data()
    if files.train is None:
        raise ValueError("no training data found")
    return load_csv(files.train, expect_labels=True, source_kind=files.source)


def load_test(files: DataFiles | None = None) -> Dataset | None:
    """The unlabelled test set that goes with `load_train`, or None if there is none."""
    files = files or find_data()
    if files.test is None:
        return None
    return load_csv(files.test, expect_labels=False, source_kind=files.source)


def load_answers(path: str | Path) -> np.ndarray:
    """Labels `(n,) int64` of a test set from an `ImageId,Label` file (the sample keeps its answers
    aside so submissions on it can be scored)."""
    path = Path(path)
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path.name}: expected ImageId,Label rows of integers ({exc})") from None
    if table.shape[1] != 2 or not np.array_equal(table[:, 0], np.arange(1, len(table) + 1)):
        raise ValueError(f"{path.name}: expected ImageId,Label with ImageId 1..n")
    if len(table) and (table[:, 1].min() < 0 or table[:, 1].max() > 9):
        raise ValueError(f"{path.name}: every Label must be a digit 0..9")
    return table[:, 1]


def sample_answers() -> np.ndarray:
    """Labels of the committed sample's test file, so submissions on it can be scored."""
    return load_answers(paths.sample_dir() / "test_answers.csv")


# --------------------------------------------------------------------------- digits users teach


def load_user_digits(folder: Path | None = None) -> Dataset | None:
    """Digits users taught the model on the Draw page (`data/user_digits.csv`), if any."""
    path = (folder or paths.data_dir()) / "user_digits.csv"
    if not path.is_file():
        return None
    return load_csv(path, expect_labels=True, source_kind=SOURCE_USER, use_cache=False)


def append_user_digit(image: np.ndarray, label: int, folder: Path | None = None) -> Path:
    """Add one taught digit (28x28, values 0..255) to `data/user_digits.csv`, creating it if needed."""
    if isinstance(label, bool) or int(label) != label or not 0 <= int(label) <= 9:
        raise ValueError(f"label must be a digit 0..9, got {label!r}")
    image = np.asarray(image)
    if image.shape != (SIDE, SIDE):
        raise ValueError(f"expected a 28x28 image, got shape {image.shape}")
    flat, _ = kaggle_csv.check_arrays(image[None], None)
    path = (folder or paths.data_dir()) / "user_digits.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as f:  # "x": only one writer ever adds the header
            f.write(",".join(kaggle_csv.TRAIN_COLUMNS) + "\n")
    except FileExistsError:
        pass
    row = ",".join(str(v) for v in [int(label), *flat[0].tolist()]) + "\n"
    with open(path, "a", encoding="utf-8") as f:  # one short append: atomic on POSIX
        f.write(row)
    return path


# --------------------------------------------------------------------------- splits


def split_indices(
    labels: np.ndarray, *, val_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Stable, stratified train/validation indices (sorted `int64`): the same labels and seed give
    the same split. Falls back to a plain shuffle split when a class is too rare to stratify."""
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    if not 0.0 < val_fraction < 0.9:
        raise ValueError(f"val_fraction must be between 0 and 0.9, got {val_fraction}")
    if len(labels) < 2:
        raise ValueError(f"need at least 2 labelled digits to split, got {len(labels)}")
    idx = np.arange(len(labels))
    counts = np.unique(labels, return_counts=True)[1]
    n_val = math.ceil(val_fraction * len(labels))
    can_stratify = counts.min() >= 2 and len(counts) <= n_val <= len(labels) - len(counts)
    train_idx, val_idx = train_test_split(
        idx, test_size=val_fraction, random_state=seed, stratify=labels if can_stratify else None
    )
    return np.sort(train_idx), np.sort(val_idx)


def describe_split(labels: np.ndarray, val_idx: np.ndarray, *, val_fraction: float, seed: int) -> dict:
    """What a model records about its split, so evaluation can rebuild exactly the same one."""
    return {
        "val_fraction": val_fraction,
        "seed": seed,
        "n_train": int(len(labels) - len(val_idx)),
        "n_val": int(len(val_idx)),
        "val_fingerprint": hashlib.blake2b(
            np.asarray(val_idx, dtype=np.int64).tobytes(), digest_size=8
        ).hexdigest(),
    }
