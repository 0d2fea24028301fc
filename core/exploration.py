"""What is in a set of digits: per-class statistics, pixel histograms, 2-D maps and quality checks.

Pure functions on the loader's arrays: images `(n, 28, 28) uint8` and labels `(n,) int64`.
Nothing here is cached or knows about Streamlit; the Explore page caches the results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core import data
from core.checks import N_CLASSES, check_labels, point_customdata

INK_LEVEL = 64  # A pixel brighter than this counts as ink; 1..64 are the anti-aliased edges.
MIN_INK_PIXELS = 15  # Fewer ink pixels than this is a blank or near-blank image (MNIST's least: ~28).
SKEW_TOLERANCE = 0.5  # A class more than 50% above or below the mean count is called skewed.
TSNE_MAX_ITER = 500  # Enough for a readable map of a few thousand digits; half the default cost.

STATUS_OK = "ok"
STATUS_WARN = "warning"
STATUS_LABELS = {STATUS_OK: "✅ ok", STATUS_WARN: "⚠️ look"}


# --------------------------------------------------------------------------- checks at the boundary


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (data.SIDE, data.SIDE):
        raise ValueError(f"expected images of shape (n, 28, 28), got {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images (0..255), got {images.dtype}")
    return images


# --------------------------------------------------------------------------- per-class views


def class_counts(labels: np.ndarray) -> np.ndarray:
    """Images per digit: labels `(n,)` -> counts `(10,) int64` (a missing digit counts 0)."""
    return np.bincount(check_labels(labels), minlength=N_CLASSES)


def sample_indices_per_class(labels: np.ndarray, *, per_class: int = 10, seed: int = 0) -> np.ndarray:
    """A random pick of each digit, to look at: labels `(n,)` -> indices `(10, per_class) int64`.

    Row d holds images of digit d in random order; -1 fills the row when a digit has fewer images.
    The same labels and seed give the same pick.

    >>> sample_indices_per_class(np.array([0, 1, 1]), per_class=2)[:2].tolist()
    [[0, -1], [1, 2]]
    """
    labels = check_labels(labels)
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    rng = np.random.default_rng(seed)
    out = np.full((N_CLASSES, per_class), -1, dtype=np.int64)
    for d in range(N_CLASSES):
        idx = np.flatnonzero(labels == d)
        pick = rng.permutation(idx)[:per_class]
        out[d, : len(pick)] = pick
    return out


def class_mean_std(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The typical digit and where writers differ: -> (means, stds), each `(10, 28, 28) float32`.

    Values are on the pixel scale 0..255; a digit with no images gets NaN everywhere.
    """
    images = _check_images(images)
    labels = check_labels(labels, len(images))
    means = np.full((N_CLASSES, data.SIDE, data.SIDE), np.nan, dtype=np.float32)
    stds = np.full_like(means, np.nan)
    for d in range(N_CLASSES):
        group = images[labels == d]  # One class at a time keeps the float copy small.
        if len(group):
            g = group.astype(np.float32)
            means[d] = g.mean(axis=0)
            stds[d] = g.std(axis=0)
    return means, stds


def mean_image(images: np.ndarray) -> np.ndarray:
    """The average of all images `(n, 28, 28)` -> `(28, 28) float32` on the 0..255 scale."""
    images = _check_images(images)
    if len(images) == 0:
        raise ValueError("mean_image needs at least one image")
    total = images.reshape(len(images), -1).sum(axis=0, dtype=np.int64)
    return (total / len(images)).astype(np.float32).reshape(data.SIDE, data.SIDE)


# --------------------------------------------------------------------------- pixels and ink


def intensity_counts(images: np.ndarray, *, chunk: int = 4096) -> np.ndarray:
    """How many pixels have each value: images `(n, 28, 28)` -> counts `(256,) int64`. A chunk at a
    time: `np.bincount` widens its input to int64, eight times the images' memory at once."""
    images = _check_images(images)
    counts = np.zeros(256, dtype=np.int64)
    for start in range(0, len(images), chunk):
        counts += np.bincount(images[start:start + chunk].ravel(), minlength=256)
    return counts


def ink_pixels(images: np.ndarray, *, level: int = INK_LEVEL) -> np.ndarray:
    """How much a digit was written: pixels brighter than `level` per image -> `(n,) int64`."""
    images = _check_images(images)
    return (images.reshape(len(images), -1) > level).sum(axis=1).astype(np.int64)


def set_summary(sets: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Side-by-side figures for a few sets (e.g. train and test), one row per set.

    `sets` maps a name to images `(n, 28, 28) uint8`. Columns: digits, mean pixel value,
    background pixels (%), ink pixels per digit (mean, median), near-blank digits, duplicate images.
    """
    rows = []
    for name, images in sets.items():
        images = _check_images(images)
        counts = intensity_counts(images)
        ink = ink_pixels(images)
        total = max(int(counts.sum()), 1)
        rows.append(
            {
                "set": name,
                "digits": len(images),
                "mean pixel value": float((counts * np.arange(256)).sum() / total),
                "background pixels (%)": 100.0 * counts[0] / total,
                "ink pixels per digit (mean)": float(ink.mean()) if len(ink) else 0.0,
                "ink pixels per digit (median)": float(np.median(ink)) if len(ink) else 0.0,
                "near-blank digits": int((ink < MIN_INK_PIXELS).sum()),
                "duplicate images": int(sum(len(g) - 1 for g in duplicate_groups(images))),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- 2-D maps


# _SINGLE_THREAD_WHY: t-SNE runs on one thread. On a shared machine (few cores, other
# visitors or a training job busy) OpenMP/BLAS threads spin against each other and t-SNE becomes
# several times slower than on one thread; one thread also leaves the other cores to the app.


@dataclass(frozen=True)
class Embedding:
    """Digits placed on a plane: `coords (m, 2) float32` for the images at `indices (m,) int64`."""

    coords: np.ndarray
    indices: np.ndarray
    method: str
    explained: tuple[float, ...] = ()  # PCA only: share of pixel variance along each axis.


def subsample(n_total: int, n: int | None, *, seed: int = 0) -> np.ndarray:
    """Sorted indices of `min(n, n_total)` images picked at random (all of them when n is None)."""
    if n is None or n >= n_total:
        return np.arange(n_total, dtype=np.int64)
    if n < 1:
        raise ValueError(f"subsample size must be at least 1, got {n}")
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n, replace=False)).astype(np.int64)


def _flat(images: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return images[idx].reshape(len(idx), -1).astype(np.float32) / 255.0


PCA_CHUNK = 2048  # rows converted to floats at a time: PCA of 42,000 digits never holds them all as floats


def _principal_axes(images: np.ndarray, idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean `(784,)`, the top-`k` principal axes `(k, 784)` and the share of variance along each,
    from the covariance of the pixels (scaled 0..1) summed a chunk at a time. Signs as scikit-learn's
    `svd_flip` sets them: each axis' largest entry is positive, so a map never flips between runs."""
    total = np.zeros(784)
    gram = np.zeros((784, 784))
    for start in range(0, len(idx), PCA_CHUNK):
        x = _flat(images, idx[start:start + PCA_CHUNK]).astype(np.float64)
        total += x.sum(axis=0)
        gram += x.T @ x
    n = len(idx)
    mean = total / n
    cov = (gram - n * np.outer(mean, mean)) / max(n - 1, 1)
    values, vectors = np.linalg.eigh(cov)  # ascending
    order = np.argsort(values)[::-1][:k]
    axes = vectors[:, order].T
    axes *= np.sign(axes[np.arange(k), np.abs(axes).argmax(axis=1)])[:, None]
    variance = np.clip(values, 0.0, None)
    return mean, axes, variance[order] / max(variance.sum(), np.finfo(float).tiny)


def pca_embedding(images: np.ndarray, *, n: int | None = None, seed: int = 0) -> Embedding:
    """The two directions along which the digits differ most (PCA), for up to `n` images.

    Images `(N, 28, 28)` -> Embedding with coords `(min(n, N), 2)`; `explained` holds the share of
    variance along each axis. numpy, not scikit-learn (whose import costs the web server ~57 MB);
    the tests check it against scikit-learn's PCA.
    """
    images = _check_images(images)
    if len(images) < 3:
        raise ValueError(f"a 2-D map needs at least 3 images, got {len(images)}")
    idx = subsample(len(images), n, seed=seed)
    mean, axes, explained = _principal_axes(images, idx, 2)
    coords = np.concatenate([
        (_flat(images, idx[s:s + PCA_CHUNK]) - mean) @ axes.T for s in range(0, len(idx), PCA_CHUNK)
    ]).astype(np.float32)
    return Embedding(coords, idx, "PCA", tuple(float(v) for v in explained))


def tsne_embedding(
    images: np.ndarray, *, n: int = 1000, seed: int = 0, perplexity: float = 30.0
) -> Embedding:
    """A map that keeps similar digits together (t-SNE), on a random subsample of `n` images.

    Images `(N, 28, 28)` -> Embedding with coords `(min(n, N), 2)`. The pixels are first reduced
    to 30 PCA components (the usual recipe: faster, less noise). Costs seconds, hence the subsample.
    Runs here (scikit-learn); the web server calls it through `core.tsne_process`, in a child.
    """
    from threadpoolctl import threadpool_limits

    images = _check_images(images)
    if len(images) < 5:
        raise ValueError(f"t-SNE needs at least 5 images, got {len(images)}")
    idx = subsample(len(images), n, seed=seed)
    with threadpool_limits(limits=1):  # See _SINGLE_THREAD_WHY.
        return _tsne(_flat(images, idx), idx, seed=seed, perplexity=perplexity)


def _tsne(x: np.ndarray, idx: np.ndarray, *, seed: int, perplexity: float) -> Embedding:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = PCA(n_components=min(30, len(idx), x.shape[1]), random_state=seed).fit_transform(x)
    perplexity = min(perplexity, (len(idx) - 1) / 3)  # t-SNE requires perplexity < n.
    tsne = TSNE(
        n_components=2, init="pca", perplexity=perplexity, max_iter=TSNE_MAX_ITER, random_state=seed, n_jobs=1
    )
    return Embedding(tsne.fit_transform(x).astype(np.float32), idx, "t-SNE")


def selected_indices(points: Sequence[Mapping]) -> np.ndarray:
    """Image indices `(k,) int64` from a Plotly selection, whose points carry the index as
    `customdata[0]` (read by `checks.point_customdata`); unique, in selection order."""
    picked = (point_customdata(p, 1) for p in points)
    out = [int(values[0]) for values in picked if values is not None]
    return np.asarray(list(dict.fromkeys(out)), dtype=np.int64)


# --------------------------------------------------------------------------- quality checks


def duplicate_groups(images: np.ndarray) -> list[np.ndarray]:
    """Sets of images that are exactly the same: each group holds >= 2 indices, in order.

    Found by `data.row_hashes` and confirmed pixel by pixel, so a hash collision is never reported.
    """
    images = _check_images(images)
    if len(images) < 2:
        return []
    hashes = data.row_hashes(images)
    order = np.argsort(hashes, kind="stable")
    sorted_h = hashes[order]
    starts = np.flatnonzero(np.r_[True, sorted_h[1:] != sorted_h[:-1]])
    ends = np.r_[starts[1:], len(order)]
    groups = []
    for s, e in zip(starts, ends, strict=True):
        if e - s < 2:
            continue
        members = np.sort(order[s:e])
        # Split the rare hash collision into groups of truly identical images.
        remaining = list(members)
        while len(remaining) > 1:
            first = remaining[0]
            same = [i for i in remaining if np.array_equal(images[i], images[first])]
            if len(same) > 1:
                groups.append(np.asarray(same, dtype=np.int64))
            remaining = [i for i in remaining if i not in same]
    return sorted(groups, key=lambda g: int(g[0]))


def shared_images(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    """Pairs `(i, j)` with `a[i]` identical to `b[j]` (e.g. a training digit that is also in test)."""
    a, b = _check_images(a), _check_images(b)
    ha, hb = data.row_hashes(a), data.row_hashes(b)
    common = np.intersect1d(ha, hb)
    if len(common) == 0:
        return []
    wanted = set(common.tolist())
    first_a: dict[int, int] = {}
    for i, h in enumerate(ha.tolist()):
        if h in wanted and h not in first_a:
            first_a[h] = i
    pairs = []
    for j in np.flatnonzero(np.isin(hb, common)):
        i = first_a[int(hb[j])]
        if np.array_equal(a[i], b[j]):
            pairs.append((i, int(j)))
    return pairs


def blank_indices(images: np.ndarray, *, min_ink: int = MIN_INK_PIXELS) -> np.ndarray:
    """Images with almost no ink (fewer than `min_ink` pixels above INK_LEVEL) -> indices `(k,)`."""
    return np.flatnonzero(ink_pixels(images) < min_ink).astype(np.int64)


@dataclass(frozen=True)
class QualityCheck:
    """One line of the data-quality table, with a few example images for a hit.

    Example captions name images by row number in their file, counting from 1 (Kaggle's ImageId).
    """

    check: str
    set: str
    found: int
    status: str
    detail: str
    examples: np.ndarray = field(default_factory=lambda: np.zeros((0, 28, 28), np.uint8))
    captions: tuple[str, ...] = ()


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def _caption(i: int, labels: np.ndarray | None) -> str:
    """An image named by its row in its file, from 1, with its label when known: '#12 (7)'."""
    return f"#{i + 1}" + (f" ({labels[i]})" if labels is not None else "")


def _examples(images: np.ndarray, idx: Sequence[int], captions: Sequence[str], limit: int):
    idx = list(idx)[:limit]
    return np.asarray(images[idx], dtype=np.uint8).reshape(-1, 28, 28), tuple(captions[:limit])


def _found(check: str, set_name: str, found: int, detail: str, examples=None) -> QualityCheck:
    """One line of the table: a warning when anything was found; `examples` = (images, captions)."""
    status = STATUS_WARN if found else STATUS_OK
    if examples is None:
        return QualityCheck(check, set_name, found, status, detail)
    return QualityCheck(check, set_name, found, status, detail, *examples)


def quality_checks(
    train_images: np.ndarray,
    train_labels: np.ndarray | None,
    test_images: np.ndarray | None = None,
    *,
    max_examples: int = 12,
) -> list[QualityCheck]:
    """Run every data check on a training set (and its test set): duplicates, train/test overlap,
    near-blank images, out-of-range values, label skew. Returns one QualityCheck per line.
    """
    train_images = _check_images(train_images)
    sets: list[tuple[str, np.ndarray, np.ndarray | None]] = [("train", train_images, train_labels)]
    if test_images is not None:
        test_images = _check_images(test_images)
        sets.append(("test", test_images, None))
    checks = [c for name, imgs, labels in sets for c in _duplicate_checks(name, imgs, labels, max_examples)]
    if test_images is not None:
        checks.append(_overlap_check(train_images, test_images, max_examples))
    checks += [_blank_check(name, images, labels, max_examples) for name, images, labels in sets]
    refused = "the loader refuses such files, naming the row and column, so none can get here"
    checks += [_found("Pixel values outside 0..255", name, 0, refused) for name, *_ in sets]
    if train_labels is not None:
        checks.append(label_skew_check(class_counts(train_labels)))
    return checks


def _duplicate_checks(
    name: str, images: np.ndarray, labels: np.ndarray | None, limit: int
) -> list[QualityCheck]:
    """Exact duplicates within one set and, when it is labelled, duplicates whose labels disagree."""
    groups = duplicate_groups(images)
    extra = sum(len(g) - 1 for g in groups)
    idx = [int(i) for g in groups for i in g]
    detail = (
        f"{_plural(extra, 'extra copy', 'extra copies')} in {_plural(len(groups), 'group')}"
        if extra
        else "every image is unique"
    )
    examples = _examples(images, idx, [_caption(i, labels) for i in idx], limit)
    out = [_found("Exact duplicate images", name, extra, detail, examples)]
    if labels is not None:
        conflicts = [g for g in groups if len(set(labels[g].tolist())) > 1]
        idx = [int(i) for g in conflicts for i in g]
        detail = (
            "the same image carries two labels: one of them is wrong"
            if conflicts
            else "no image carries two labels"
        )
        examples = _examples(images, idx, [_caption(i, labels) for i in idx], limit)
        out.append(_found("Duplicates with different labels", name, len(conflicts), detail, examples))
    return out


def _overlap_check(train: np.ndarray, test: np.ndarray, limit: int) -> QualityCheck:
    """Test images that are also in train (scores on them are inflated), shown pair by pair."""
    pairs = shared_images(train, test)
    shown = pairs[: limit // 2]  # Each pair side by side: the train copy, then the test one.
    ex = np.asarray([img for i, j in shown for img in (train[i], test[j])], np.uint8)
    ex = ex.reshape(-1, data.SIDE, data.SIDE)
    captions = tuple(c for i, j in shown for c in (f"train #{i + 1}", f"test #{j + 1}"))
    n_shared = len({j for _, j in pairs})
    detail = (
        f"{_plural(n_shared, 'test image')} also in train: scores on them are inflated"
        if n_shared
        else "no test image appears in train"
    )
    return _found("Shared between train and test", "train+test", n_shared, detail, (ex, captions))


def _blank_check(name: str, images: np.ndarray, labels: np.ndarray | None, limit: int) -> QualityCheck:
    """Images with almost no ink, each captioned with how much it has."""
    blanks = blank_indices(images)
    ink = ink_pixels(images[blanks]) if len(blanks) else np.zeros(0, np.int64)
    captions = [_caption(i, labels) + f" ink {k}" for i, k in zip(blanks, ink, strict=True)]
    detail = f"fewer than {MIN_INK_PIXELS} pixels brighter than {INK_LEVEL}"
    examples = _examples(images, blanks, captions, limit)
    return _found("Blank or near-blank images", name, len(blanks), detail, examples)


def label_skew_check(counts: np.ndarray) -> QualityCheck:
    """Whether some digits are much rarer or commoner than others: counts `(10,)` -> a check.

    `found` is the number of digits more than SKEW_TOLERANCE (50%) away from the mean count.
    """
    counts = np.asarray(counts, dtype=np.int64)
    mean = counts.mean()
    skewed = np.flatnonzero(np.abs(counts - mean) > SKEW_TOLERANCE * mean)
    lo, hi = int(counts.argmin()), int(counts.argmax())
    missing = np.flatnonzero(counts == 0)
    if len(missing):
        detail = f"no images at all of digit {', '.join(map(str, missing))}"
    else:
        detail = (
            f"fewest: {lo} ({counts[lo]:,}), most: {hi} ({counts[hi]:,}), "
            f"ratio {counts[hi] / counts[lo]:.2f}x"
        )
    if len(skewed):
        detail += f"; skewed digits: {', '.join(map(str, skewed))}"
    return QualityCheck(
        "Label distribution skew", "train", len(skewed), STATUS_WARN if len(skewed) else STATUS_OK, detail
    )


def checks_table(checks: Sequence[QualityCheck]) -> pd.DataFrame:
    """The checks as a table for people: columns check, set, found, status (with an icon), detail."""
    return pd.DataFrame(
        [
            {
                "check": c.check,
                "set": c.set,
                "found": c.found,
                "status": STATUS_LABELS[c.status],
                "detail": c.detail,
            }
            for c in checks
        ],
        columns=["check", "set", "found", "status", "detail"],
    )
