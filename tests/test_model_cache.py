"""studio.model_cache.label: the one way pickers name a saved model (Evaluate and Submit)."""

from __future__ import annotations

from core import registry, status
from studio import model_cache


def _info(**meta) -> registry.ModelInfo:
    base = {"arch": "dr-cnn", "metrics": {"val_accuracy": 0.9912}, "data": {"source": "kaggle"},
            "status": status.DONE}
    return registry.ModelInfo("best", {**base, **meta})


def test_label_names_architecture_accuracy_and_training_data():
    assert model_cache.label(_info()) == "best (dr-cnn, validation accuracy 99.12%, kaggle data)"


def test_label_says_the_status_unless_done_and_skips_what_is_unknown():
    assert model_cache.label(_info(status=status.STOPPED)).endswith(", kaggle data, stopped)")
    assert model_cache.label(_info(status="complete")).endswith(", kaggle data)")  # a model saved before
    assert model_cache.label(_info(metrics={}, data={})) == "best (dr-cnn, unknown data)"
