"""Find, load and validate Kaggle Digit Recognizer CSVs; the committed sample; stable splits.

Every loader returns a `Dataset` of `uint8` images shaped `(n, 28, 28)` and `int64` labels (or
None for a test file). Anything that is not a valid Kaggle file is refused with a `ValueError`
that names the file, the row/column and what was expected; nothing is cached for a bad file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from core import paths

N_PIXELS = 784
SIDE = 28
PIXEL_COLUMNS = [f"pixel{i}" for i in range(N_PIXELS)]
TRAIN_COLUMNS = ["label", *PIXEL_COLUMNS]
MAX_CSV_BYTES = 400 * 1024 * 1024  # Kaggle's train.csv is 73 MB; the full MNIST set ~130 MB.
MAX_ROWS = 200_000
CACHE_VERSION = 1

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
    extra: dict = field(default_factory=dict, compare=False)

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
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
    # Two independent multiply-add folds over the 784 bytes; collisions are ~2^-64 per pair.
    weights = np.random.default_rng(12345).integers(1, 2**62, size=flat.shape[1], dtype=np.uint64)
    with np.errstate(over="ignore"):
        return (flat.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64) ^ flat.sum(
            axis=1, dtype=np.uint64
        )


# --------------------------------------------------------------------------- parsing


def _open_bytes(source: str | Path | bytes, name: str) -> bytes:
    if isinstance(source, bytes):
        data = source
    else:
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"{name}: file not found")
        size = path.stat().st_size
        if size > MAX_CSV_BYTES:
            raise ValueError(
                f"{name}: {size / 2**20:.0f} MB is larger than the {MAX_CSV_BYTES // 2**20} MB limit"
            )
        data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        import gzip

        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{name}: not a readable gzip file ({exc})") from None
    elif data[:4] == b"PK\x03\x04":
        raise ValueError(f"{name}: is a zip archive; use load_zip() or unzip it first")
    if len(data) > MAX_CSV_BYTES:
        raise ValueError(f"{name}: larger than the {MAX_CSV_BYTES // 2**20} MB limit")
    if not data.strip():
        raise ValueError(f"{name}: the file is empty")
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    if b"\x00" in data[:4096]:
        raise ValueError(f"{name}: not a text CSV (binary data or UTF-16); save it as UTF-8 CSV")
    return data


def _check_header(header: list[str], name: str, expect_labels: bool | None) -> bool:
    """Return whether the file has a label column; raise naming the first wrong column."""
    has_label = bool(header) and header[0].strip().lower() == "label"
    if expect_labels is True and not has_label:
        raise ValueError(
            f"{name}: expected a training file with columns label,pixel0..pixel783; "
            f"the first column is {header[0]!r}"
            if header
            else f"{name}: no header row"
        )
    if expect_labels is False and has_label:
        raise ValueError(f"{name}: expected a test file (pixel0..pixel783) but it has a label column")
    expected = TRAIN_COLUMNS if has_label else PIXEL_COLUMNS
    cleaned = [c.strip() for c in header]
    seen: set[str] = set()
    for col in cleaned:
        if col in seen:
            raise ValueError(f"{name}: column {col!r} appears twice in the header")
        seen.add(col)
    for i, (got, want) in enumerate(zip(cleaned, expected, strict=False)):
        if got != want:
            raise ValueError(
                f"{name}: header column {i + 1} is {got[:40]!r}, expected {want!r} "
                f"(Kaggle format: {'label,' if has_label else ''}pixel0..pixel783)"
            )
    if len(cleaned) != len(expected):
        raise ValueError(
            f"{name}: header has {len(cleaned)} columns, expected {len(expected)} "
            f"({'label + ' if has_label else ''}784 pixels)"
        )
    return has_label


def _find_short_row(data: bytes, ncols: int, name: str) -> ValueError:
    """Slow path, only on a parse error: say which row has the wrong number of fields."""
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="replace")))
    for line_no, row in enumerate(reader, start=1):
        if line_no == 1:
            continue
        if row and len(row) != ncols:
            return ValueError(
                f"{name}: row {line_no - 1} (line {line_no}) has {len(row)} values, expected {ncols}"
            )
    return ValueError(f"{name}: not a readable CSV")


def _first_bad(values: np.ndarray, ok: np.ndarray) -> int:
    return int(np.flatnonzero(~ok)[0])


def _column_to_ints(col, col_name: str, name: str, lo: int, hi: int, what: str) -> np.ndarray:
    """Check one parsed column: no empty cells, integers only, within lo..hi."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if col.null_count:
        row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise ValueError(f"{name}: row {row + 1}, column {col_name}: empty cell, expected {what}")
    if pa.types.is_integer(col.type):
        arr = col.to_numpy()
    elif pa.types.is_floating(col.type):
        arr = col.to_numpy()
        ok = np.isfinite(arr) & (arr == np.round(arr))
        if not ok.all():
            row = _first_bad(arr, ok)
            raise ValueError(
                f"{name}: row {row + 1}, column {col_name}: {arr[row]!r} is not an integer, expected {what}"
            )
        arr = arr.astype(np.int64)
    else:
        text = pc.cast(col, pa.string()).to_numpy(zero_copy_only=False)
        for row, value in enumerate(text):
            try:
                int(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{name}: row {row + 1}, column {col_name}: {str(value)[:30]!r} is not a "
                    f"number, expected {what}"
                ) from None
        arr = text.astype(np.int64)
    ok = (arr >= lo) & (arr <= hi)
    if not ok.all():
        row = _first_bad(arr, ok)
        raise ValueError(
            f"{name}: row {row + 1}, column {col_name}: {arr[row]} is outside {lo}..{hi}, expected {what}"
        )
    return arr


def parse_csv(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    expect_labels: bool | None = None,
    source_kind: str = SOURCE_UPLOAD,
) -> Dataset:
    """Parse and validate a Kaggle-format CSV (plain or gzip) from a path or bytes, uncached.

    `expect_labels` True demands `label,pixel0..pixel783`, False demands `pixel0..pixel783`,
    None accepts either. Raises `ValueError` naming the file, row and column of the first problem.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    name = name or (Path(source).name if not isinstance(source, bytes) else "uploaded file")
    data = _open_bytes(source, name)
    first_line = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip("\r")
    has_label = _check_header(next(csv.reader([first_line])), name, expect_labels)
    ncols = len(TRAIN_COLUMNS) if has_label else N_PIXELS
    header = TRAIN_COLUMNS if has_label else PIXEL_COLUMNS
    read_options = pacsv.ReadOptions(use_threads=True, block_size=1 << 24)
    try:
        # Fast path: every column declared int16, so pyarrow skips type inference.
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=read_options,
            convert_options=pacsv.ConvertOptions(column_types={c: pa.int16() for c in header}),
        )
        fast = True
    except pa.ArrowInvalid:
        fast = False
    if not fast:
        # Slow path, only for a bad file: infer types so the first bad cell can be named.
        try:
            table = pacsv.read_csv(
                io.BytesIO(data),
                read_options=read_options,
                convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
            )
        except pa.ArrowInvalid as exc:
            if "columns" in str(exc):
                raise _find_short_row(data, ncols, name) from None
            msg = str(exc).splitlines()[0][:120]
            raise ValueError(f"{name}: not a readable CSV ({msg})") from None
    if table.num_rows == 0:
        raise ValueError(f"{name}: has a header but no rows")
    if table.num_rows > MAX_ROWS:
        raise ValueError(f"{name}: {table.num_rows} rows is more than the {MAX_ROWS} limit")
    if fast and table.columns[0].null_count == 0:
        raw = np.empty((table.num_rows, ncols), dtype=np.int16)
        for j, col in enumerate(table.columns):
            if col.null_count:
                break
            raw[:, j] = col.to_numpy()
        else:
            pix = raw[:, 1:] if has_label else raw
            if (
                pix.min() >= 0
                and pix.max() <= 255
                and (not has_label or (raw[:, 0].min() >= 0 and raw[:, 0].max() <= 9))
            ):
                images = np.ascontiguousarray(pix, dtype=np.uint8).reshape(-1, SIDE, SIDE)
                labels = raw[:, 0].astype(np.int64) if has_label else None
                return Dataset(images, labels, name, source_kind, fingerprint(images, labels))
    # Something is wrong (or unusual): check column by column and name the first bad cell.
    columns = table.columns
    labels = None
    if has_label:
        labels = _column_to_ints(columns[0], "label", name, 0, 9, "a digit 0..9")
        columns = columns[1:]
    images = np.empty((table.num_rows, N_PIXELS), dtype=np.uint8)
    for j, col in enumerate(columns):
        images[:, j] = _column_to_ints(col, PIXEL_COLUMNS[j], name, 0, 255, "an integer 0..255")
    images = images.reshape(-1, SIDE, SIDE)
    labels = labels.astype(np.int64) if labels is not None else None
    return Dataset(images, labels, name, source_kind, fingerprint(images, labels))


# --------------------------------------------------------------------------- cached loading


def _cache_path(path: Path) -> Path:
    st = path.stat()
    key = hashlib.blake2b(
        f"{CACHE_VERSION}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode(), digest_size=8
    ).hexdigest()
    return paths.cache_dir() / f"{path.name}.{key}.npz"


def load_csv(
    path: str | Path,
    *,
    expect_labels: bool | None = None,
    source_kind: str = SOURCE_KAGGLE,
    use_cache: bool = True,
) -> Dataset:
    """Load a Kaggle CSV from disk, reusing a parsed `.npz` copy while the file is unchanged.

    The cache key is the file's path, size and modification time, so an edited file is parsed
    again. A cache that cannot be written (read-only disk) only costs speed.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path.name}: file not found in {path.parent}")
    cache = _cache_path(path) if use_cache else None
    if cache is not None and cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                labels = z["labels"] if z["has_labels"] else None
                ds = Dataset(z["images"], labels, path.name, source_kind, str(z["fingerprint"]))
            if expect_labels is None or expect_labels == ds.has_labels:
                return ds
        except (OSError, ValueError, KeyError):
            pass  # A damaged cache is parsed again below.
    ds = parse_csv(path, name=path.name, expect_labels=expect_labels, source_kind=source_kind)
    if cache is not None:
        _write_cache(cache, ds)
    return ds


def _write_cache(cache: Path, ds: Dataset) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        for old in cache.parent.glob(cache.name.rsplit(".", 2)[0] + ".*.npz"):
            old.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                images=ds.images,
                labels=ds.labels if ds.labels is not None else np.zeros(0, np.int64),
                has_labels=ds.has_labels,
                fingerprint=ds.fingerprint,
            )
        os.replace(tmp, cache)
    except OSError:
        pass


def load_zip(source: str | Path | bytes, *, name: str | None = None) -> tuple[Dataset, Dataset]:
    """Read Kaggle's `digit-recognizer.zip` (train.csv + test.csv inside) -> (train, test)."""
    name = name or (Path(source).name if not isinstance(source, bytes) else "uploaded zip")
    try:
        zf = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{name}: not a readable zip archive ({exc})") from None
    with zf:
        members = {Path(m).name: m for m in zf.namelist() if not m.endswith("/")}
        missing = [f for f in ("train.csv", "test.csv") if f not in members]
        if missing:
            raise ValueError(
                f"{name}: the zip has no {' or '.join(missing)} "
                f"(found: {', '.join(sorted(members)[:5]) or 'nothing'})"
            )
        out = []
        for member, labelled in (("train.csv", True), ("test.csv", False)):
            info = zf.getinfo(members[member])
            if info.file_size > MAX_CSV_BYTES:
                raise ValueError(f"{name}: {member} is larger than the limit")
            out.append(
                parse_csv(
                    zf.read(info),
                    name=f"{name}/{member}",
                    expect_labels=labelled,
                    source_kind=SOURCE_KAGGLE,
                )
            )
    return out[0], out[1]


# --------------------------------------------------------------------------- finding data


def _first_existing(folder: Path, stem: str) -> Path | None:
    for suffix in (".csv", ".csv.gz"):
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def unpack_kaggle_zip(folder: Path | None = None) -> bool:
    """If `data/digit-recognizer.zip` is there without CSVs beside it, extract them; True if done."""
    folder = folder or paths.data_dir()
    archive = folder / "digit-recognizer.zip"
    if not archive.is_file() or _first_existing(folder, "train"):
        return False
    train, test = load_zip(archive)
    write_kaggle_csv(folder / "train.csv", train.images, train.labels)
    write_kaggle_csv(folder / "test.csv", test.images, None)
    return True


def find_data(folder: Path | None = None) -> DataFiles:
    """Kaggle's files in `data/` (csv, csv.gz, or the zip) if present, else the committed sample."""
    folder = folder or paths.data_dir()
    if (folder / "digit-recognizer.zip").is_file():
        unpack_kaggle_zip(folder)
    train = _first_existing(folder, "train")
    if train is not None:
        return DataFiles(train, _first_existing(folder, "test"), SOURCE_KAGGLE)
    mnist = _first_existing(folder, "mnist-full")
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
    """Labels of a test set from an `ImageId,Label` file (the sample keeps its answers aside)."""
    ds = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    if ds.shape[1] != 2 or not np.array_equal(ds[:, 0], np.arange(1, len(ds) + 1)):
        raise ValueError(f"{Path(path).name}: expected ImageId,Label with ImageId 1..n")
    return ds[:, 1]


def sample_answers() -> np.ndarray:
    """Labels of the committed sample's test file, so submissions on it can be scored."""
    return load_answers(paths.sample_dir() / "test_answers.csv")


def load_user_digits(folder: Path | None = None) -> Dataset | None:
    """Digits users taught the model on the Draw page (`data/user_digits.csv`), if any."""
    path = (folder or paths.data_dir()) / "user_digits.csv"
    if not path.is_file():
        return None
    return load_csv(path, expect_labels=True, source_kind=SOURCE_USER, use_cache=False)


# --------------------------------------------------------------------------- writing


def to_csv_bytes(images: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    """Kaggle-format CSV text for images `(n, 28, 28)` (and labels for a training file)."""
    flat = np.asarray(images, dtype=np.uint8).reshape(len(images), -1).astype(np.int64)
    header = TRAIN_COLUMNS if labels is not None else PIXEL_COLUMNS
    if labels is not None:
        flat = np.column_stack([np.asarray(labels, dtype=np.int64), flat])
    buf = io.StringIO()
    buf.write(",".join(header) + "\n")
    np.savetxt(buf, flat, fmt="%d", delimiter=",")
    return buf.getvalue().encode()


def write_kaggle_csv(path: Path, images: np.ndarray, labels: np.ndarray | None = None) -> Path:
    """Write atomically (temporary file, then rename) so a half-written file is never seen."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = to_csv_bytes(images, labels)
    if path.suffix == ".gz":
        import gzip

        body = gzip.compress(body, compresslevel=9, mtime=0)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(body)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def append_user_digit(image: np.ndarray, label: int, folder: Path | None = None) -> Path:
    """Add one taught digit (28x28 uint8) to `data/user_digits.csv`, creating it if needed."""
    if not 0 <= int(label) <= 9:
        raise ValueError(f"label must be a digit 0..9, got {label}")
    image = np.asarray(image)
    if image.shape != (SIDE, SIDE):
        raise ValueError(f"expected a 28x28 image, got shape {image.shape}")
    path = (folder or paths.data_dir()) / "user_digits.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    row = ",".join(str(int(v)) for v in [int(label), *np.clip(image, 0, 255).astype(int).ravel()])
    new = not path.is_file()
    with open(path, "a", encoding="utf-8") as f:
        if new:
            f.write(",".join(TRAIN_COLUMNS) + "\n")
        f.write(row + "\n")
    return path


# --------------------------------------------------------------------------- splits


def split_indices(
    labels: np.ndarray, *, val_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Stable, stratified train/validation indices: the same labels and seed give the same split."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < val_fraction < 0.9:
        raise ValueError(f"val_fraction must be between 0 and 0.9, got {val_fraction}")
    idx = np.arange(len(labels))
    counts = np.bincount(labels, minlength=10)
    stratify = labels if counts[counts > 0].min() >= 2 else None
    train_idx, val_idx = train_test_split(idx, test_size=val_fraction, random_state=seed, stratify=stratify)
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


# --------------------------------------------------------------------------- full MNIST download

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"


def download_mnist(url: str = MNIST_URL, folder: Path | None = None, *, timeout: float = 60.0) -> Path:
    """Fetch the 70,000 MNIST digits (Keras' `mnist.npz`) and save them as Kaggle-format
    `data/mnist-full.csv`. Models trained on it are marked `mnist-download`: Kaggle's test digits
    are MNIST digits, so their Kaggle scores would be inflated by leakage.
    """
    import urllib.request

    folder = folder or paths.data_dir()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - fixed or test URL
            payload = resp.read(MAX_CSV_BYTES)
    except OSError as exc:
        raise ValueError(f"could not download MNIST from {url}: {exc}") from None
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            images = np.concatenate([z["x_train"], z["x_test"]]).astype(np.uint8)
            labels = np.concatenate([z["y_train"], z["y_test"]]).astype(np.int64)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"the download from {url} is not an MNIST .npz file ({exc})") from None
    if images.shape[1:] != (SIDE, SIDE) or len(images) != len(labels):
        raise ValueError(f"the download from {url} has images of shape {images.shape[1:]}")
    path = write_kaggle_csv(folder / "mnist-full.csv", images, labels)
    (folder / "mnist-full.json").write_text(
        json.dumps({"source": SOURCE_MNIST, "url": url, "rows": len(images)})
    )
    return path


def read_bytes_limited(stream: BinaryIO, limit: int = MAX_CSV_BYTES) -> bytes:
    """Read an upload, refusing it before parsing if it is over the size limit."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"the file is larger than the {limit // 2**20} MB limit")
    return data
