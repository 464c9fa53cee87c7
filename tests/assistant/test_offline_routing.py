"""The offline model's routing: the evaluation set (tools and arguments), argument reading, speed,
and a few requests end to end through the real agent and real (fast) tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.offline import SEARCH, evaluate_routing, route
from assistant.routing import all_args
from tools.registry import TOOLS

EVAL = json.loads((Path(__file__).parent / "routing_eval.json").read_text())["cases"]


def _expected_tools(turn: dict) -> list[str]:
    tool = turn["tool"]
    return [] if tool is None else [tool] if isinstance(tool, str) else list(tool)


def _args_match(got: dict, want: dict) -> bool:
    for key, value in want.items():
        if key not in got:
            return False
        if isinstance(value, float) and not isinstance(value, bool):
            if got[key] != pytest.approx(value):
                return False
        elif got[key] != value:
            return False
    return True


def test_eval_set_is_well_formed():
    n = sum(len(c["turns"]) for c in EVAL)
    assert n >= 60
    assert sum(len(c["turns"]) > 1 for c in EVAL) >= 8          # follow-up conversations
    for case in EVAL:
        for turn in case["turns"]:
            for tool in _expected_tools(turn):
                assert tool in TOOLS, tool
            if turn["tool"] is not None:
                first = _expected_tools(turn)[0]
                assert set(turn["args"]) <= set(TOOLS[first].args.model_fields), turn
                if first != SEARCH:   # the expected values are allowed
                    TOOLS[first].args.model_validate(turn["args"])


def test_routing_accuracy_at_least_95_percent():
    accuracy, n, failures = evaluate_routing(EVAL)
    print(f"\noffline routing: {accuracy:.1%} of {n} requests right (tools and arguments)")
    for f in failures:
        print("  miss:", f)
    assert accuracy >= 0.95, failures


@pytest.mark.parametrize(("text", "want"), [
    ("observation error 0.2", {"sigma_o": 0.2}),
    ("σ_o=0.2", {"sigma_o": 0.2}),
    ("sigma_o 0.2", {"sigma_o": 0.2}),
    ("obs error of .2", {"sigma_o": 0.2}),
    ("200 steps", {"n_steps": 200}),
    ("8 cycles", {"n_cycles": 8}),
    ("mode B", {"mode": "B"}),
    ("with covariance update", {"covariance_update": True}),
    ("without covariance update", {"covariance_update": False}),
    ("with the B update", {"covariance_update": True}),
    ("fixed B", {"covariance_update": False}),
    ("column 40", {"column": 40}),
    ("snapshot 5", {"time_index": 5}),
    ("time index 5", {"time_index": 5}),
    ("seed 7", {"seed": 7}),
    ("K = 0.02", {"K": 0.02}),
    ("diffusivity 0.02", {"K": 0.02}),
    ("5 radiosondes", {"n_radiosondes": 5}),
    ("3 channels", {"n_channels": 3}),
    ("alpha 0.5", {"alpha": 0.5}),
    ("30 epochs", {"epochs": 30}),
    ("rollout 5", {"rollout_steps": 5}),
    ("dt 0.01", {"dt": 0.01}),
    ("u=2", {"u": 2.0}),
    ("10 snapshots", {"n_snapshots": 10}),
])
def test_argument_phrasings(text, want):
    got = all_args(text)
    assert _args_match(got, want), got


def test_only_arguments_the_tool_accepts():
    r = route("run a 3D-Var cycle with 8 cycles, mode B, column 4 and sigma_o 0.3")
    assert r.calls == [("run_3dvar_cycle", {"sigma_o": 0.3})]


def test_follow_up_without_a_previous_run_is_not_invented():
    r = route("again with 200 steps")
    assert all(name != "run_3dvar_cycle" for name, _ in r.calls)


# ----------------------------------------------------------------------------- end to end

@pytest.fixture
def session(lecture_env, tmp_path):
    from assistant.agent import Session
    from assistant.offline import OfflineChatModel

    return Session(OfflineChatModel(), workspace=tmp_path / "ws")


def test_end_to_end_conversation_with_real_tools(session):
    a = session.ask("Run a 3D-Var cycle with observation error 0.2")
    assert a.tool_calls == [{"name": "run_3dvar_cycle", "args": {"sigma_o": 0.2}}]
    assert a.results[0].args["sigma_o"] == 0.2
    rmse = a.results[0].metrics["rmse_analysis"]
    assert f"{rmse:.4g}" in a.answer                     # the number comes from the tool
    assert "timeseries.png" in a.answer and a.figures and a.figures[0].is_file()

    b = session.ask("now with the covariance update")
    assert b.tool_calls == [{"name": "run_3dvar_cycle", "args": {"sigma_o": 0.2, "covariance_update": True}}]
    assert b.results[0].args["covariance_update"] is True

    c = session.ask("run ORIGEN with fixed B and explain why it plateaus")
    assert [t["name"] for t in c.tool_calls] == ["run_origen_oscillator", "search_lectures"]
    assert c.results[0].metrics["rmse_final"] == pytest.approx(c.results[0].metrics["rmse_final_fixed_B"])
    assert c.citations and all(cite in c.answer for cite in c.citations)
    assert "rmse_per_cycle.png" in c.answer


def test_end_to_end_concept_question(session):
    a = session.ask("why does normalisation matter?")
    assert [t["name"] for t in a.tool_calls] == ["search_lectures"]
    assert a.citations and not a.figures


def test_thanks_gets_a_short_reply_not_the_help_text():
    from assistant import prompts

    for text in ("thanks!", "thank you very much", "cheers"):
        assert route(text).reply == prompts.YOU_ARE_WELCOME
    assert route("thanks, now run 3dvar").calls == [("run_3dvar_cycle", {})]


def test_values_no_run_can_use_are_named_in_the_answer():
    from assistant.answers import unused_note

    r = route("again with 300 steps", ("train_lorenz63_emulator", {"epochs": 50}))
    assert r.calls == [("train_lorenz63_emulator", {"epochs": 50})]
    note = unused_note("again with 300 steps", r.calls)
    assert note.startswith("Not used: n_steps=300") and "run_origen_lorenz63" in note
    assert unused_note("run 3dvar with sigma_o 0.3", [("run_3dvar_cycle", {"sigma_o": 0.3})]) is None


@pytest.mark.parametrize(("text", "want"), [
    ("3D-Var with the covariance update and model error q 0.02", {"covariance_update": True, "q": 0.02}),
    ("run 3dvar with the covariance update and process noise 0.01", {"covariance_update": True, "q": 0.01}),
    ("covariance update 3D-Var cycle with inflation 1.5", {"covariance_update": True, "inflation": 1.5}),
])
def test_model_error_and_inflation_are_read(text, want):
    (call,) = route(text).calls
    assert call == ("run_3dvar_cycle", want)


@pytest.mark.parametrize(("text", "previous", "want"), [
    # phrasings that are not among the declaration's examples
    ("let B evolve in the 3D-Var cycle, q = 0.03 and inflation factor 1.2", None,
     {"covariance_update": True, "q": 0.03, "inflation": 1.2}),
    ("same again with model error q 0.05", ("run_3dvar_cycle", {"covariance_update": True}),
     {"covariance_update": True, "q": 0.05}),
    ("now inflate by 1.1", ("run_3dvar_cycle", {"covariance_update": True, "q": 0.02}),
     {"covariance_update": True, "q": 0.02, "inflation": 1.1}),
])
def test_model_error_and_inflation_in_new_phrasings_and_follow_ups(text, previous, want):
    r = route(text, previous) if previous else route(text)
    assert r.calls == [("run_3dvar_cycle", want)]


@pytest.mark.parametrize("question, names", [
    ("what is B?", "background-error covariance B"), ("What's H", "observation operator H"),
    ("what does R mean?", "observation-error covariance R"), ("explain K", "Kalman gain K"),
    ("what is x_a in the lecture?", "analysis x_a"), ("What does N_eff stand for?", "effective sample size N_eff"),
    ("what is q?", "model-error covariance Q"), ("what is ρ", "inflation factor rho"),
])
def test_a_question_naming_only_a_symbol_searches_for_what_the_symbol_is(question, names):
    r = route(question)
    assert r.calls and r.calls[0][0] == SEARCH and names in r.calls[0][1]["query"], (question, r.calls or r.reply)


@pytest.mark.parametrize("question", ["what is love?", "what is a?", "what is pizza"])
def test_a_word_that_is_no_symbol_of_the_course_is_still_outside_it(question):
    from assistant import prompts

    assert route(question).reply == prompts.OFF_TOPIC


@pytest.mark.parametrize("question, section", [
    ("what is B?", "Background error covariance B"), ("what is H?", "Observation operator H"),
    ("what is q?", "Kalman filter forecast step"), ("what does N_eff mean?", "The particle filter"),
])
def test_symbol_questions_are_answered_from_the_section_that_defines_it(session, question, section):
    a = session.ask(question)
    assert a.citations and section in a.citations[0], (question, a.citations)
