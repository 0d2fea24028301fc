"""Who this visitor is: a label other visitors see, and a secret that proves which runs they started.

The secret rides in the page's address once a run is started (`?run_key=`), so reloading the page
still owns (and may stop) that run; runs keep only a hash of it (`core.jobs.owner_key`).
"""

from __future__ import annotations

import secrets

import streamlit as st

LABEL_KEY = "visitor_label"
TOKEN_KEY = "visitor_token"
TOKEN_PARAM = "run_key"


def label() -> str:
    """A short, stable label for this visitor ("visitor 3fa2c1")."""
    if LABEL_KEY not in st.session_state:
        st.session_state[LABEL_KEY] = f"visitor {secrets.token_hex(3)}"
    return st.session_state[LABEL_KEY]


def token() -> str:
    """This visitor's secret (adopted from the address after a reload)."""
    if TOKEN_KEY not in st.session_state:
        st.session_state[TOKEN_KEY] = st.query_params.get(TOKEN_PARAM) or secrets.token_urlsafe(16)
    return st.session_state[TOKEN_KEY]


def keep_in_address() -> None:
    """Put the secret in the page's address, so that a reload keeps ownership of a started run."""
    st.query_params[TOKEN_PARAM] = token()
