"""Page-side helpers: Streamlit caching and session state around `core` (which knows no Streamlit)."""
