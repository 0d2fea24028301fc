"""How far an ensemble of the models trained so far could go on the holdout, at the very best.

Reads the folders `bench_accuracy.py --keep DIR` left, gets every single model's holdout
probabilities (trained on the 42k file; copies of one model counted once), and searches all
ensembles of at most `--members` of them (probabilities averaged, as `core.ensembles` does) for the
one with the fewest holdout errors. It also counts the digits every model misreads.

That search chooses ON the holdout, which the recipe issue forbids for a result: its figure is a
bound, not a score. When even the bound misses a target, no honest choice among these models
reaches it: the target needs other models, not another combination of these.

    python benchmarks/bench_ensemble_bound.py --keep DIR --keep DIR2 ... [--members 5]

The search is exact: a digit every candidate reads right is read right by any average of them
(each member's probability of the true class beats every other class, so the sums do too), so
only the digits some model misreads are searched.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import benchkit  # noqa: E402
from bench_frontier import kept_folders_parser, recipe_of  # noqa: E402

# Run in a child with the folder's models and signing key: each folder signs with its own key.
PREDICT = """
import sys
from pathlib import Path
import numpy as np
from core import data, prediction
holdout, out = sys.argv[1], Path(sys.argv[2])
images = data.load_csv(holdout, use_cache=False).images
for name in sys.argv[3:]:
    np.save(out / f"{name}.npy", prediction.predict_proba(prediction.load(name), images).astype(np.float32))
"""


def singles(folder: Path, train: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    """The folder's finished single Keras models trained on `train`, by name, and all its metas
    (an ensemble's or a student's label names other models)."""
    files = sorted((folder / "models").glob("*/meta.json"))
    metas = {p.parent.name: json.loads(p.read_text()) for p in files}
    return {name: meta for name, meta in metas.items()
            if meta.get("status") == "done" and meta.get("kind") == "keras"
            and (meta.get("data") or {}).get("path") == str(train)}, metas


def probabilities(folder: Path, names: list[str], holdout: Path) -> dict[str, np.ndarray]:
    """Each model's holdout probabilities `(n, 10) float32`, kept in `folder/probs/` once made."""
    out = folder / "probs" / holdout.name.split(".")[0]
    out.mkdir(parents=True, exist_ok=True)
    missing = [n for n in names if not (out / f"{n}.npy").is_file()]
    if missing:
        env = benchkit.private_env(folder, models=False)
        done = subprocess.run([sys.executable, "-c", PREDICT, str(holdout), str(out), *missing], cwd=ROOT,
                              env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"predicting in {folder} failed: {done.stderr.strip().splitlines()[-1:]}")
    return {n: np.load(out / f"{n}.npy") for n in names}


def distinct(probs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`probs` without copies: a model whose probabilities equal an earlier one's (to 1e-6) is the
    same model saved twice (a seed gives the same model here)."""
    kept: dict[str, np.ndarray] = {}
    for name, p in probs.items():
        if not any(q.shape == p.shape and np.allclose(q, p, rtol=0, atol=1e-6) for q in kept.values()):
            kept[name] = p
    return kept


def contested(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Indices of the digits at least one model misreads; probs `(models, n, 10)`, labels `(n,)`."""
    return np.flatnonzero((probs.argmax(axis=2) != labels).any(axis=0))


def best_ensemble(probs: np.ndarray, labels: np.ndarray, size: int) -> tuple[tuple[int, ...], int]:
    """The `size` models (indices into probs `(models, n, 10)`) whose summed probabilities misread
    the fewest of `labels` `(n,)`, and that count: an exhaustive search (ties: the first found)."""
    m = len(probs)
    if not 1 <= size <= m:
        raise ValueError(f"an ensemble of {size} needs at least that many models, have {m}")
    best: tuple[tuple[int, ...], int] = ((), len(labels) + 1)
    for head in itertools.combinations(range(m), size - 1):
        last = (head[-1] + 1) if head else 0
        if last >= m:
            continue
        base = probs[list(head)].sum(axis=0) if head else 0.0
        errors = ((base + probs[last:]).argmax(axis=2) != labels).sum(axis=1)  # one per candidate last
        i = int(errors.argmin())
        if errors[i] < best[1]:
            best = ((*head, last + i), int(errors[i]))
    return best


def main() -> None:
    p = kept_folders_parser(__doc__.split("\n\n")[0])
    p.add_argument("--members", type=int, default=5, help="the largest ensemble searched (default 5)")
    args = p.parse_args()
    benchkit.cleanup_on_exit()
    from core import data

    labels = data.load_csv(args.holdout, use_cache=False).labels
    found: dict[str, np.ndarray] = {}
    label_of: dict[str, str] = {}
    for folder in (f.resolve() for f in args.keep):
        models, metas = singles(folder, args.data)
        for name, p_ in probabilities(folder, sorted(models), args.holdout).items():
            found[f"{folder.name}/{name}"] = p_
            label_of[f"{folder.name}/{name}"] = recipe_of(models[name], metas)[0]
    unique = distinct(found)
    names = list(unique)
    stack = np.stack([unique[n] for n in names])
    wrong = stack.argmax(axis=2) != labels
    print(f"{len(names)} distinct models ({len(found) - len(names)} copies left out) on {len(labels):,} "
          f"holdout digits")
    for name, w in zip(names, wrong, strict=True):
        print(f"  {name}: {w.sum()} errors  ({label_of[name]})")
    every, most = wrong.all(axis=0).sum(), (wrong.sum(axis=0) * 2 > len(names)).sum()
    print(f"misread by every model: {every}; by more than half of them: {most}; by at least one: "
          f"{wrong.any(axis=0).sum()}")
    rows = contested(stack, labels)
    print("\nthe best ensemble of k models, CHOSEN ON THE HOLDOUT (a bound, not a score):")
    for k in range(1, min(args.members, len(names)) + 1):
        members, errors = best_ensemble(stack[:, rows], labels[rows], k)
        print(f"  k={k}: {errors} errors ({1 - errors / len(labels):.2%}): "
              + ", ".join(names[i] for i in members), flush=True)


if __name__ == "__main__":
    main()
