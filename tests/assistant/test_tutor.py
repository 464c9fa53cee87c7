"""Tutor mode with the offline model: predict, run, compare; hints in steps; misconceptions corrected."""

from __future__ import annotations

import pytest

from assistant.agent import Session
from assistant.offline import OfflineChatModel


@pytest.fixture
def tutor(lecture_env, tmp_path):
    return Session(OfflineChatModel(), workspace=tmp_path / "ws", tutor=True)


def test_prediction_before_the_run_then_the_comparison(tutor):
    a = tutor.ask("run a 3D-Var cycle with sigma_o 0.3")
    assert a.tool_calls == [] and "above or below" in a.answer and "0.3" in a.answer     # nothing ran yet
    b = tutor.ask("I think below")
    assert b.tool_calls == [{"name": "run_3dvar_cycle", "args": {"sigma_o": 0.3}}]
    rmse = b.results[0].metrics["rmse_analysis"]
    right = "below" if rmse < 0.3 else "above"
    assert f"{rmse:.3f}" in b.answer and f"the answer is **{right}**" in b.answer
    assert ("You predicted it right" in b.answer) == (right == "below")


def test_skip_runs_and_states_the_answer(tutor):
    tutor.ask("run ORIGEN on the oscillator with 10 cycles")
    b = tutor.ask("skip")
    m = b.results[0].metrics
    right = "updated" if m["rmse_final_updated_B"] < m["rmse_final_fixed_B"] else "fixed"
    assert f"The answer to the prediction question is **{right}**" in b.answer


def test_an_unrelated_reply_drops_the_pending_prediction(tutor):
    tutor.ask("run a 3D-Var cycle")
    b = tutor.ask("what is the covariance update?")
    assert [t["name"] for t in b.tool_calls] == ["search_lectures"]


def test_hints_come_one_at_a_time_and_stay_on_the_exercise(tutor):
    tutor.ask("run a 3D-Var cycle")
    tutor.ask("skip")                                                   # a 3D-Var run is the previous call
    first = tutor.ask("I'm stuck on the ORIGEN exercise, give me a hint")
    second = tutor.ask("another hint please")
    assert first.answer.startswith("Hint 1 of 3 (run_origen_oscillator)")
    assert second.answer.startswith("Hint 2 of 3 (run_origen_oscillator)")
    assert first.tool_calls == second.tool_calls == []


@pytest.mark.parametrize(("statement", "expected"), [
    ("so the gain is sigma_b/(sigma_b+sigma_o), right?", "variances"),
    ("with a fixed B, 3D-Var will eventually converge to the truth", "does not converge to the truth"),
    ("the obs2obs network needs the model to reconstruct the field", "needs no model"),
])
def test_misconceptions_are_corrected_with_the_notes(tutor, statement, expected):
    a = tutor.ask(statement)
    assert expected in a.answer
    assert a.citations and all(c in a.answer for c in a.citations)


def test_tutor_mode_off_runs_at_once(lecture_env, tmp_path):
    s = Session(OfflineChatModel(), workspace=tmp_path / "ws")
    assert [t["name"] for t in s.ask("run a 3D-Var cycle").tool_calls] == ["run_3dvar_cycle"]
    s.set_tutor(True)
    assert s.ask("run a 3D-Var cycle").tool_calls == []


def test_dalab_chat_tutor_in_a_terminal(lecture_env, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "chat", "--tutor"], cwd=repo, text=True,
                         input="run a 3D-Var cycle with sigma_o 0.3\nabove\nquit\n", capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Tutor mode" in out.stdout and "above or below" in out.stdout
    assert "you said **above**" in out.stdout
