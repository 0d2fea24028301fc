"""Keep Streamlit from resetting Keras' global state between script runs (see the function)."""

from __future__ import annotations

import contextlib
import sys


def protect_keras_state() -> None:
    """Stop Streamlit from resetting Keras' global state at the end of every script run.

    Once Keras is imported, Streamlit calls `keras.backend.clear_session()` after each run and each
    fragment rerun. That swaps Keras' per-thread state for *every* thread, so the training thread,
    building its model while a page polls it, gets duplicate layer names ("The name "dense" is
    used 2 times in the model") or loses its scopes mid-trace. The studio caches its models and
    never rebuilds one per run, so that reset frees nothing here. Idempotent; process-wide.
    """
    from streamlit.runtime.scriptrunner import script_runner

    current = getattr(script_runner, "_clean_problem_modules", None)
    if current is None or getattr(current, "keeps_keras", False):
        return

    def clean_problem_modules() -> None:
        plt = sys.modules.get("matplotlib.pyplot")  # Streamlit's other clean-up, kept as it was
        if plt is not None:
            with contextlib.suppress(Exception):  # Streamlit ignores these errors too
                plt.close("all")

    clean_problem_modules.keeps_keras = True
    script_runner._clean_problem_modules = clean_problem_modules
