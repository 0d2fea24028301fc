"""Evaluate page decisions, kept out of the page script so tests can reach them: which confusion
matrix cell is picked (a click on the heatmap or the picker), and which digits several models are
compared on, with their predictions aligned digit for digit."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

import numpy as np

from core import data, eval_rows, evaluation, registry
from core.charts import evaluation as charts
from studio import evaluation_cache as cache

# Session-state keys of the confusion-matrix tab.
CHART_KEY = "eval_confusion"  # the heatmap (its click event)
PAIR_KEY = "eval_pair"  # the picked (true, predicted) cell, or None
LAST_CLICK_KEY = "eval_last_click"  # the click already acted on
EMPTY_CLICK_KEY = "eval_empty_click"  # a clicked cell with no digit in it, or None

Cell = tuple[int, int]


# --------------------------------------------------------------------------- the confusion matrix


def confusion_cells(cm: np.ndarray) -> dict[Cell, int]:
    """Every cell with at least one digit, `(true, predicted) -> count`: the mistakes most frequent
    first, then the digits read right, 0 to 9 (the picker's order)."""
    cm = np.asarray(cm)
    right = [(d, d, int(cm[d, d])) for d in range(evaluation.N_CLASSES) if cm[d, d] > 0]
    return {(t, p): n for t, p, n in evaluation.confusion_pairs(cm) + right}


def cell_label(cell: Cell | None, cells: Mapping[Cell, int]) -> str:
    """The picker's text for a cell (None: the prompt)."""
    if cell is None:
        return "— pick a true → predicted pair —"
    t, p = cell
    return f"true {t} → predicted {p} ({cells[cell]:,} digits)" + (" ✓ right" if t == p else "")


def follow_click(state: MutableMapping, cells: Mapping[Cell, int]) -> None:
    """Before the picker is drawn: a new click on the heatmap becomes the picked pair (a click on
    an empty cell clears it and is remembered, to say why nothing is shown); a pick that is no
    longer a cell (another model, other data) is cleared. `state` is the session state."""
    points = ((state.get(CHART_KEY) or {}).get("selection") or {}).get("points", [])
    clicked = charts.selected_cell(points)
    if clicked != state.get(LAST_CLICK_KEY):
        state[LAST_CLICK_KEY] = clicked
        if clicked is not None:
            state[PAIR_KEY] = clicked if clicked in cells else None
            state[EMPTY_CLICK_KEY] = clicked if clicked not in cells else None
    if state.get(PAIR_KEY) not in (None, *cells):
        state[PAIR_KEY] = None


# --------------------------------------------------------------------------- comparing models


def default_comparison(name: str, infos: Mapping[str, registry.ModelInfo], *, most: int = 4) -> list[str]:
    """The models compared unless the user picks others: this one, the best scikit-learn baseline
    (a yardstick), then the best of the rest; at most `most`. `infos` are best first."""
    baseline = [n for n, info in infos.items() if info.kind == registry.SKLEARN][:1]
    return list(dict.fromkeys([name, *baseline, *infos]))[:most]


def compared_rows(
    names: list[str], ds: data.Dataset
) -> tuple[dict[str, eval_rows.EvalRows], list[str], np.ndarray]:
    """Each model's unseen rows of `ds`, for the models that can be evaluated on it; `"name: why"`
    for the others (left out); and the rows none of them trained on (empty for fewer than two)."""
    usable, skipped = {}, []
    for name in names:
        try:
            usable[name] = cache.unseen_rows(name, cache.model_version(name), ds.fingerprint, ds)
        except ValueError as exc:
            skipped.append(f"{name}: {exc}")
    common = eval_rows.common_rows(usable) if len(usable) >= 2 else np.zeros(0, np.int64)
    return usable, skipped, common


def aligned_predictions(
    rows: Mapping[str, eval_rows.EvalRows], common: np.ndarray, ds: data.Dataset, *, tta: bool = False
) -> dict[str, np.ndarray]:
    """Each model's probabilities `(len(common), 10)` on the `common` rows, row i of each being
    digit `common[i]` (predicted, with a progress bar, if not cached yet; with `tta`, over the
    test-time views, as the rest of the page then is)."""
    probas = {name: cache.predict_with_progress(name, cache.model_version(name), ds.fingerprint, ds, tta=tta)
              for name in rows}
    return eval_rows.on_common_rows(rows, probas, common)
