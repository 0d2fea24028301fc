"""studio.training_ui.run_to_show: which run the Train page's Progress section shows a visitor."""

from __future__ import annotations

import pytest

from core import jobs, processes, runs, status
from studio import training_ui as ui
from studio import visitor


@pytest.fixture
def session(monkeypatch):
    """A plain dict as this visitor's session, their secret 'me'."""
    state = {visitor.TOKEN_KEY: "me"}
    monkeypatch.setattr(ui.st, "session_state", state)
    monkeypatch.setattr(visitor.st, "session_state", state)
    return state


def _view(name: str, state: str, *, owner_token: str | None = None, started: bool = True,
          model: bool = True) -> runs.RunView:
    meta = {"name": name, "status": state}
    if started:
        meta["started_at"] = "2026-11-30T12:00:00+0000"
    if owner_token:
        meta["owner_key"] = jobs.owner_key(owner_token)
    return runs.RunView(name, meta=meta, status=state, has_model=model)


def test_a_cancelled_run_of_someone_else_is_not_shown_to_a_newcomer(session):
    cancelled = _view("theirs-cancelled", status.STOPPED, owner_token="other", started=False, model=False)
    finished = _view("finished", status.DONE)
    assert ui.run_to_show([cancelled, finished]).name == "finished"  # views come newest first


def test_the_order_of_preference(session):
    running = _view("running", status.RUNNING, owner_token="other")
    mine = _view("mine", status.DONE, owner_token="me")
    done = _view("done", status.DONE)
    assert ui.run_to_show([done, mine, running]).name == "running"
    assert ui.run_to_show([done, mine]).name == "mine"
    assert ui.run_to_show([done]).name == "done"
    session[ui.JOB_KEY] = "done"  # the run this session started comes first
    assert ui.run_to_show([done, mine, running]).name == "done"
    assert ui.run_to_show([]) is None
    never = _view("never", status.STOPPED, started=False, model=False)
    assert ui.run_to_show([never]).name == "never"  # nothing else to show


def test_a_job_whose_process_is_still_starting_is_shown_before_a_finished_run(session):
    """Its meta still says queued until the process is up (a TensorFlow import, seconds on a busy
    machine); a newcomer shown the finished run instead got a page that never polled, never the job."""
    launching = _view("launching", status.QUEUED, owner_token="other", started=False, model=False)
    launching.meta[jobs.LAUNCH_KEY] = processes.this_process()  # a live process
    done = _view("done", status.DONE)
    assert ui.run_to_show([launching, done]).name == "launching"
    waiting = _view("waiting", status.QUEUED, owner_token="other", started=False, model=False)
    assert ui.run_to_show([waiting, done]).name == "done"  # queued behind another job: not yet


def test_the_page_is_drawn_again_when_the_shown_run_starts_or_ends():
    # The runs table outside the polled section said "queued" for a run that was training.
    assert ui.page_is_stale(status.QUEUED, _view("r", status.RUNNING))
    assert ui.page_is_stale(status.RUNNING, _view("r", status.DONE))
    assert ui.page_is_stale(status.QUEUED, _view("r", status.FAILED))
    assert not ui.page_is_stale(status.RUNNING, _view("r", status.RUNNING))
    assert not ui.page_is_stale(status.QUEUED, _view("r", status.QUEUED))
