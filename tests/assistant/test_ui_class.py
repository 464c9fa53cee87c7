"""One server, a class, its runs in worker processes as `dalab ui` has them: a student's Cancel
stops their running tool and removes its partial run folder, each session has one run going at a time (a second is refused, other students are not
held up), and the chat's tool stops on Cancel too."""

from __future__ import annotations

import time

import pytest
from gradio_client import Client


@pytest.fixture(scope="module")
def ui_url(lecture_home):
    """The app as `dalab ui` serves a class: its runs in two worker processes (Cancel reaches them)."""
    from ui_server import running_app

    with running_app(lecture_home, mcp=True, workers=2) as url:
        yield url


def wait_for_progress(job, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any("epoch" in str(out[0]) for out in job.outputs()):
            return
        time.sleep(0.2)
    raise AssertionError("the run never reported progress")


def partials(lecture_home) -> list:
    return list(lecture_home.glob("sessions/*/runs/.*partial*"))


def test_cancel_stops_a_form_run_and_a_session_runs_one_tool_at_a_time(ui_url, lecture_home, tmp_path):
    student = Client(ui_url, verbose=False, download_files=str(tmp_path))
    neighbour = Client(ui_url, verbose=False, download_files=str(tmp_path))
    job = student.submit(reconstruction="", train_on="reconstruction", epochs=400, rollout_steps=0, seed=0,
                         api_name="/train_lorenz63_emulator")
    wait_for_progress(job)
    busy, *_ = student.predict(n_steps=20, api_name="/run_3dvar_cycle")       # the same session: refused
    assert "already have 1 run(s) going" in busy and "Cancel" in busy
    done, *_ = neighbour.predict(n_steps=20, api_name="/run_3dvar_cycle")     # another student: not held up
    assert done.startswith("**Done:**")
    t0 = time.monotonic()
    student.predict(api_name="/cancel")
    final = job.result(timeout=60)[0]
    assert final.startswith("**Stopped:**") and "partial run folder was removed" in final
    assert time.monotonic() - t0 < 15 and not partials(lecture_home)
    assert student.predict(api_name="/runs")[1]["data"] == []                   # nothing half-written left
    again, *_ = student.predict(n_steps=20, api_name="/run_3dvar_cycle")       # free again after the cancel
    assert again.startswith("**Done:**")


def test_cancel_stops_the_chats_tool(ui_url, lecture_home, tmp_path):
    student = Client(ui_url, verbose=False, download_files=str(tmp_path))
    job = student.submit("train the Lorenz-63 emulator with 200 epochs", api_name="/chat")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not any("%" in str(out[0]) for out in job.outputs()):
        time.sleep(0.2)
    student.predict(api_name="/cancel")
    history = job.result(timeout=90)[0]
    assert "**Stopped:**" in str(history[-1]["content"]) and not partials(lecture_home)
    history, *_ = student.predict("run a 3D-Var cycle", api_name="/chat")       # the session goes on
    assert "analysis RMSE" in str(history)
