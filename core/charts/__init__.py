"""Plotly figure builders: pure functions, data in, figure out (no I/O, no Streamlit).

One module per page's concerns: `common` (digit images), `explore`, `training`, `evaluation`,
`draw`, `submission`.
"""
