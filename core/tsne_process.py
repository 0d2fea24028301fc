"""t-SNE in a child process, so the web server never imports scikit-learn (~57 MB it would keep).

The Explore page asks for a map of at most a few thousand digits: the server writes them to a
temporary `.npy` file, runs `python -m core.tsne_process IN OUT SEED PERPLEXITY`, and reads the
coordinates back. The child costs about a second of start-up next to seconds of t-SNE, and its
memory is gone when it ends.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from core import exploration, paths

TIMEOUT_S = 600


def tsne_in_child(images: np.ndarray, *, n: int = 1000, seed: int = 0, perplexity: float = 30.0,
                  timeout: float = TIMEOUT_S) -> exploration.Embedding:
    """`exploration.tsne_embedding(images, n=n, seed=seed, perplexity=perplexity)`, computed in a
    child process. Raises ValueError with the child's last error line if it fails."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"expected images of shape (n, 28, 28), got {images.shape}")
    if len(images) < 5:
        raise ValueError(f"t-SNE needs at least 5 images, got {len(images)}")
    idx = exploration.subsample(len(images), n, seed=seed)
    with tempfile.TemporaryDirectory(prefix="drs-tsne-") as tmp:
        src, out = Path(tmp) / "digits.npy", Path(tmp) / "coords.npy"
        np.save(src, np.ascontiguousarray(images[idx], dtype=np.uint8), allow_pickle=False)
        cmd = [sys.executable, "-m", "core.tsne_process", str(src), str(out), str(int(seed)),
               str(float(perplexity))]
        try:
            done = subprocess.run(cmd, cwd=paths.ROOT, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ValueError(f"the t-SNE map took over {timeout:.0f} s") from None
        if done.returncode != 0 or not out.is_file():
            lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
            why = lines[-1] if lines else f"exit code {done.returncode}"
            raise ValueError(f"the t-SNE map failed: {why}")
        coords = np.load(out, allow_pickle=False)
    if coords.shape != (len(idx), 2):
        raise ValueError(f"the t-SNE map came back with shape {coords.shape}, expected {(len(idx), 2)}")
    return exploration.Embedding(coords.astype(np.float32), idx, "t-SNE")


def main(argv: list[str]) -> int:
    """`IN OUT SEED PERPLEXITY`: the map of every digit in IN (a `(m, 28, 28)` uint8 `.npy`) to OUT."""
    src, out, seed, perplexity = argv
    images = np.load(src, allow_pickle=False)
    emb = exploration.tsne_embedding(images, n=len(images), seed=int(seed), perplexity=float(perplexity))
    np.save(out, emb.coords, allow_pickle=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
