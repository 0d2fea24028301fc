"""The examples in core's docstrings run with the suite (`python -m pytest --doctest-modules core/`
runs the same ones on its own; the option cannot go into pyproject's addopts because it makes
pytest import tests/conftest.py and tests/browser/conftest.py under one name)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import core

MODULES = sorted(m.name for m in pkgutil.walk_packages(core.__path__, "core.") if m.name != "core.__main__")
IMPORT_KERAS = {"core.callbacks"}  # importing these starts TensorFlow


@pytest.mark.parametrize("name", [pytest.param(m, marks=pytest.mark.slow) if m in IMPORT_KERAS else m
                                  for m in MODULES])
def test_docstring_examples_hold(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (see above)"
