"""Page-side helpers: Streamlit caching and session state around `core` (which knows no Streamlit)."""

from studio.keras_guard import protect_keras_state

# Every page imports `studio`, so the guard is in place before any page can start Keras work.
protect_keras_state()
