"""studio.evaluation_ui: the confusion-matrix cell picked by a click or the picker, and models'
predictions aligned on the digits they share (the Evaluate page's decisions, without the page)."""

from __future__ import annotations

import numpy as np
import pytest

from core import data, eval_rows, registry
from studio import evaluation_ui as ui

CM = np.zeros((10, 10), dtype=np.int64)
CM[4, 4], CM[4, 9], CM[9, 4], CM[7, 1], CM[1, 1] = 50, 6, 2, 6, 30


def _click(true: int, predicted: int) -> dict:
    """The heatmap's event state after a click on one cell (customdata: true, predicted)."""
    return {"selection": {"points": [{"x": predicted, "y": true, "customdata": [true, predicted]}]}}


def test_cells_are_the_non_empty_ones_mistakes_most_frequent_first():
    cells = ui.confusion_cells(CM)
    assert list(cells) == [(4, 9), (7, 1), (9, 4), (1, 1), (4, 4)]
    assert cells[(4, 9)] == 6 and (0, 0) not in cells
    assert ui.cell_label((4, 9), cells) == "true 4 → predicted 9 (6 digits)"
    assert ui.cell_label((1, 1), cells) == "true 1 → predicted 1 (30 digits) ✓ right"
    assert ui.cell_label(None, cells) == "— pick a true → predicted pair —"


def test_a_click_on_a_cell_picks_it_once_and_the_picker_can_change_it_after():
    cells = ui.confusion_cells(CM)
    state: dict = {ui.CHART_KEY: _click(4, 9)}
    ui.follow_click(state, cells)
    assert state[ui.PAIR_KEY] == (4, 9) and state[ui.EMPTY_CLICK_KEY] is None
    state[ui.PAIR_KEY] = (7, 1)  # then the picker: the same click, seen again on a rerun, is not re-applied
    ui.follow_click(state, cells)
    assert state[ui.PAIR_KEY] == (7, 1)


def test_a_click_on_an_empty_cell_clears_the_pick_and_is_remembered():
    cells = ui.confusion_cells(CM)
    state: dict = {ui.PAIR_KEY: (4, 9), ui.CHART_KEY: _click(0, 3)}
    ui.follow_click(state, cells)
    assert state[ui.PAIR_KEY] is None and state[ui.EMPTY_CLICK_KEY] == (0, 3)


def test_a_pick_that_is_no_longer_a_cell_is_cleared():
    state: dict = {ui.PAIR_KEY: (2, 3)}  # picked on another model's matrix
    ui.follow_click(state, ui.confusion_cells(CM))
    assert state[ui.PAIR_KEY] is None and ui.EMPTY_CLICK_KEY not in state


def test_no_click_keeps_the_pick():
    state: dict = {ui.PAIR_KEY: (9, 4), ui.CHART_KEY: {"selection": {"points": []}}}
    ui.follow_click(state, ui.confusion_cells(CM))
    assert state[ui.PAIR_KEY] == (9, 4)


def _rows(*indices: int) -> eval_rows.EvalRows:
    return eval_rows.EvalRows(np.array(indices, dtype=np.int64), eval_rows.KIND_UNSEEN, "", 10)


def test_predictions_are_aligned_on_the_common_rows():
    rows = {"a": _rows(0, 2, 4, 6), "b": _rows(2, 3, 4, 5, 6)}
    # Each model's probabilities are one row per its own unseen row; column 0 holds the row number.
    probas = {name: np.column_stack([r.indices, 1 - r.indices / 10]) for name, r in rows.items()}
    common = eval_rows.common_rows(rows)
    assert common.tolist() == [2, 4, 6]
    aligned = eval_rows.on_common_rows(rows, probas, common)
    for name in rows:
        assert aligned[name][:, 0].tolist() == [2, 4, 6]
    with pytest.raises(ValueError, match="not among its unseen rows"):
        eval_rows.on_common_rows(rows, probas, np.array([1, 2]))


def _info(name: str, kind: str) -> registry.ModelInfo:
    return registry.ModelInfo(name, {"kind": kind})


def test_the_default_comparison_is_this_model_a_baseline_then_the_best_others():
    infos = {n: _info(n, k) for n, k in [("cnn", "keras"), ("mlp", "keras"), ("rf", "sklearn"),
                                          ("rf-2", "sklearn"), ("lenet", "keras"), ("old", "keras")]}
    assert ui.default_comparison("mlp", infos) == ["mlp", "rf", "cnn", "rf-2"]
    assert ui.default_comparison("rf", infos, most=2) == ["rf", "cnn"]
    assert ui.default_comparison("cnn", {"cnn": infos["cnn"]}) == ["cnn"]


def test_models_that_cannot_be_evaluated_are_left_out_saying_why(monkeypatch):
    ds = data.Dataset(np.zeros((10, 28, 28), np.uint8), np.arange(10) % 10, "d.csv", "kaggle", "fp")
    known = {"a": _rows(0, 2, 4, 6), "b": _rows(2, 3, 4)}

    def unseen_rows(name, version, fingerprint, _ds):
        if name not in known:
            raise ValueError("it records no validation split")
        return known[name]

    monkeypatch.setattr(ui.cache, "unseen_rows", unseen_rows)
    monkeypatch.setattr(ui.cache, "model_version", lambda name: 1)
    usable, skipped, common = ui.compared_rows(["a", "c", "b"], ds)
    assert list(usable) == ["a", "b"] and skipped == ["c: it records no validation split"]
    assert common.tolist() == [2, 4]
    alone, _, nothing = ui.compared_rows(["a", "c"], ds)
    assert list(alone) == ["a"] and len(nothing) == 0  # one model: nothing to compare
