"""Page-side helpers: Streamlit caching and session state around `core` (which knows no Streamlit)."""

from studio import memory

memory.tune_allocator()  # every page imports studio: set before the data and models are loaded
