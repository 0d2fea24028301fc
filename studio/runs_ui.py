"""The runs section of the Train page and Home: a table to sort and filter, the curves of any runs
picked overlaid in one chart, the queue, and looking after one run (rename, note, download,
continue, delete, import). Pages call these; the work is `core.manage`, `core.archive`, `core.jobs`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import archive, jobs, manage, registry, runs, status
from core.charts import training as charts
from studio import visitor

COLUMNS = {  # summary key -> column title
    "name": "run", "arch": "architecture", "status": "status",
    "val_accuracy": "validation accuracy (kept epoch)", "epochs": "epochs", "param_count": "parameters",
    "training_time_s": "time (s)", "settings": "settings",
    "data_source": "data", "owner": "owner", "created_at": "created", "note": "note", "problems": "problems",
}
ACCURACY = COLUMNS["val_accuracy"]  # the leaderboard's order and its bar column


def frame(views: list[runs.RunView]) -> pd.DataFrame:
    """One row per run with the table's columns (statuses as people read them)."""
    rows = [runs.summary(v) for v in views]
    table = pd.DataFrame(rows, columns=list(COLUMNS)).rename(columns=COLUMNS)
    table["status"] = table["status"].map(lambda s: status.LABELS.get(s, s))
    table["created"] = table["created"].fillna("").astype(str).str[:16].str.replace("T", " ")
    for whole in ("epochs", "parameters"):  # whole numbers even where some runs have none
        table[whole] = table[whole].astype("Int64")
    return table


def filtered(table: pd.DataFrame, *, statuses: list[str], archs: list[str], text: str) -> pd.DataFrame:
    """The rows whose status and architecture are among those chosen (all when none) and whose name,
    note or settings contain `text` (any case)."""
    keep = pd.Series(True, index=table.index)
    if statuses:
        keep &= table["status"].isin(statuses)
    if archs:
        keep &= table["architecture"].isin(archs)
    if text.strip():
        haystack = table["run"] + " " + table["note"].fillna("") + " " + table["settings"].fillna("")
        keep &= haystack.str.contains(text.strip(), case=False, regex=False)
    return table[keep]


def runs_table(views: list[runs.RunView], *, key: str, best_first: bool = False) -> None:
    """The sortable (click a header), filterable table of every run: newest first, or best
    validation accuracy (of the epoch each run keeps) first: a leaderboard."""
    table = frame(views)
    if best_first:
        table = table.sort_values(ACCURACY, ascending=False, na_position="last", kind="stable")
    c1, c2, c3 = st.columns([2, 2, 3])
    statuses = c1.multiselect("Status", sorted(table["status"].unique()), key=f"{key}_status")
    archs = c2.multiselect("Architecture", sorted(table["architecture"].dropna().unique()),
                           key=f"{key}_arch")
    text = c3.text_input("Search name, note or settings", key=f"{key}_search")
    shown = filtered(table, statuses=statuses, archs=archs, text=text)
    st.dataframe(shown, hide_index=True, width="stretch", key=f"{key}_table", column_config={
        # Sized for "⚠️ interrupted": the grid measures emoji too narrow and cut "🏃 running" short.
        "status": st.column_config.TextColumn(width=115),
        ACCURACY: st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0),
        "time (s)": st.column_config.NumberColumn(format="%.0f"),
        "parameters": st.column_config.NumberColumn(format="%,d"),  # 202,538 in every locale
    })
    st.caption(f"{len(shown)} of {len(table)} runs. Click a column's name to sort by it.")
    for view in views:
        for problem in view.problems:
            st.warning(f"{view.name}: {problem}. The other runs are not affected.")


def overlay(views: list[runs.RunView], *, key: str) -> None:
    """The per-epoch curves of the runs picked, in one chart, best epochs starred."""
    with_history = [v.name for v in views if v.history]
    picked = st.multiselect("Compare the curves of", with_history, key=f"{key}_overlay",
                            placeholder="pick two or more runs")
    if picked:
        by_name = {v.name: v for v in views}
        figure = charts.overlay_curves({n: by_name[n].history for n in picked})
        st.plotly_chart(figure, key=f"{key}_overlay_chart")


def queue(views: list[runs.RunView]) -> None:
    """Runs waiting for a job slot, in the order they will start; their owner may cancel them."""
    waiting = [v for v in views if v.status == status.QUEUED and not jobs.occupying(v)]
    if not waiting:
        return
    st.markdown(f"**Queue** — {len(waiting)} waiting, in this order:")
    for i, view in enumerate(sorted(waiting, key=lambda v: str(v.meta.get("created_at", ""))), start=1):
        what = (view.meta.get("job") or {}).get("kind", jobs.TRAIN)
        c1, c2 = st.columns([5, 1], vertical_alignment="center")
        c1.markdown(f"{i}. **{view.name}** · {view.arch} · {what} · queued by {view.meta.get('owner', '?')}")
        if jobs.owns(view.meta, visitor.token()) and c2.button("Cancel", key=f"cancel_{view.name}"):
            manage.cancel(view.name, visitor.token())
            st.rerun()


@st.dialog("Delete this run?")
def _confirm_delete(name: str) -> None:
    st.write(f"**{name}** and its files will be removed. This cannot be undone.")
    kept = manage.ensembles_using(name)
    if kept:
        st.caption(f"The ensembles {', '.join(kept)} keep their own copy of it and are unchanged.")
    if st.button("Delete it", type="primary", key="runs_delete_confirm"):
        try:
            manage.delete(name)
        except ValueError as exc:
            st.error(str(exc))
            return
        st.session_state["runs_notice"] = f"Deleted {name}."
        st.rerun()


def manage_run(views: list[runs.RunView], *, key: str) -> None:
    """Look after one run: rename, note, download, continue for more epochs, delete; import a model."""
    names = [v.name for v in views if v.meta]
    if notice := st.session_state.pop("runs_notice", None):
        st.success(notice)
    if not names:
        return
    name = st.selectbox("Run", names, key=f"{key}_run")
    view = next(v for v in views if v.name == name)
    tabs = st.tabs(["Rename", "Note", "Download", "Continue", "Delete", "Import"])
    def rename(new: str) -> str:
        renamed = manage.rename(name, new)
        st.session_state[f"{key}_run"] = renamed  # keep it selected under its new name
        return f"Renamed {name} to {renamed}."

    _do(tabs[0], f"{key}_rename", "Rename", rename, field=("New name", name))
    _do(tabs[1], f"{key}_note", "Save the note", lambda note: (manage.set_note(name, note), "Note saved.")[1],
        field=("Note", view.meta.get("note", "")), area=True)
    with tabs[2]:
        if view.has_model and not view.active:
            st.download_button(f"📦 Download {name}.zip", data=lambda: archive.export_bytes(name),
                               file_name=f"{name}.zip", mime="application/zip", key=f"{key}_download",
                               on_click="ignore")
            st.caption("One file: the model, its serving copy, meta.json and history.csv.")
        else:
            st.info("Nothing to download yet: the run has no saved model, or is still training.")
    with tabs[3]:
        _continue(view, key)
    with tabs[4]:
        protected = bool(view.meta.get(manage.PROTECTED_KEY))
        if st.button(f"🗑 Delete {name}…", key=f"{key}_delete", disabled=protected):
            _confirm_delete(name)
        if protected:
            st.caption("The shipped model is protected: it cannot be deleted.")
    with tabs[5]:
        _import(key)


def _do(tab, key: str, label: str, action, *, field: tuple[str, str], area: bool = False) -> None:
    """A text field and a button that applies `action(text)`; its message, or the reason it failed."""
    with tab:
        widget = st.text_area if area else st.text_input
        text = widget(field[0], value=field[1], key=f"{key}_text")
        if st.button(label, key=f"{key}_go"):
            try:
                st.session_state["runs_notice"] = action(text)
            except (ValueError, OSError) as exc:
                st.error(str(exc))
                return
            st.rerun()


def _continue(view: runs.RunView, key: str) -> None:
    trained = registry.kind_of(view.meta) == registry.KERAS and not view.meta.get("finetuned_from")
    if not trained or not view.has_model:
        st.info("Only a Keras training run with a saved model can be continued.")
        return
    epochs = st.number_input("More epochs", min_value=1, max_value=200, value=5, key=f"{key}_more")
    st.caption("From its saved epoch, at a tenth of its peak learning rate, annealed; its history goes on.")
    if st.button("▶ Continue", key=f"{key}_continue", disabled=view.active):
        try:
            started = jobs.requeue(view.name, {"kind": jobs.CONTINUE, "epochs": int(epochs)},
                                   owner=visitor.label(), token=visitor.token())
        except ValueError as exc:
            st.error(str(exc))
            return
        visitor.keep_in_address()
        st.session_state["runs_notice"] = (f"{view.name} continues for {int(epochs)} more epochs." if started
                                           else f"{view.name} is queued for {int(epochs)} more epochs.")
        st.rerun()


def _import(key: str) -> None:
    upload = st.file_uploader("A model exported from this app (.zip)", type=["zip"], key=f"{key}_import")
    if upload is not None and st.button("Import it", key=f"{key}_import_go"):
        try:
            name = archive.import_model(upload.getvalue(), source=upload.name)
        except ValueError as exc:
            st.error(f"Not imported: {exc}")
            return
        st.session_state["runs_notice"] = f"Imported as {name}."
        st.rerun()
