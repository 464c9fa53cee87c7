"""The agent loop: tools with artifacts, errors back to the model, memory, streaming, citations,
the OpenAI-compatible path over real HTTP (a scripted local server), endpoint failures, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, error, sleep, text, tool_call
from langchain_core.messages import ToolMessage

from assistant.agent import CITATION, MAX_MODEL_CALLS, AgentError, Answer, Session, ask, make_tool
from assistant.llm import chat_openai
from assistant.offline import OfflineChatModel
from tools.settings import Settings
from tools.base import ToolResult, Workspace
from tools.registry import TOOLS

ROOT = Path(__file__).resolve().parents[2]


def openai_session(url: str, tmp_path: Path, timeout: float = 10.0, **kw) -> Session:
    settings = Settings(home=tmp_path, llm="openai", openai_base_url=url, openai_api_key="sk-test",
                        model="fake-model", request_timeout=timeout, **kw)
    return Session(chat_openai(settings), workspace=tmp_path / "ws")


def tool_messages(request: dict) -> list[dict]:
    return [m for m in request["body"]["messages"] if m.get("role") == "tool"]


# ----------------------------------------------------------------------------- tools

def test_structured_tool_returns_content_and_artifact(tmp_path):
    tool = make_tool(TOOLS["run_3dvar_cycle"], Workspace(tmp_path))
    msg = tool.invoke({"type": "tool_call", "name": "run_3dvar_cycle", "id": "c1", "args": {"sigma_o": 0.3}})
    assert isinstance(msg, ToolMessage) and isinstance(msg.artifact, ToolResult)
    assert msg.content == msg.artifact.content() and "rmse_analysis" in msg.content
    assert tool.args_schema is TOOLS["run_3dvar_cycle"].args
    assert tool.description == TOOLS["run_3dvar_cycle"].description


def test_tool_errors_become_tool_messages(tmp_path):
    ws = Workspace(tmp_path)
    bad = make_tool(TOOLS["run_3dvar_cycle"], ws).invoke(
        {"type": "tool_call", "name": "run_3dvar_cycle", "id": "c1", "args": {"sigma_o": -1, "colour": "red"}})
    assert bad.status == "error" and "sigma_o" in bad.content and "colour" in bad.content
    missing = make_tool(TOOLS["predict_profile"], ws).invoke(
        {"type": "tool_call", "name": "predict_profile", "id": "c2", "args": {}})
    assert missing.status == "error" and "train_obs2obs" in missing.content


# ----------------------------------------------------------------------------- offline model

def test_offline_error_is_explained_not_raised(tmp_path):
    a = Session(OfflineChatModel(), workspace=tmp_path).ask("predict the profile at column 40")
    assert a.tool_calls == [{"name": "predict_profile", "args": {"column": 40}}]
    assert "could not run" in a.answer and "train_obs2obs" in a.answer and not a.figures


def test_help_and_answer_dict(tmp_path):
    a = ask("hello", session=Session(OfflineChatModel(), workspace=tmp_path))
    d = a.to_dict()
    assert set(d) == {"question", "answer", "tool_calls", "figures", "citations"}
    assert d["tool_calls"] == [] and "3D-Var" in d["answer"] and "ORIGEN" in d["answer"]
    json.dumps(d)


def test_streaming_events(tmp_path):
    s = Session(OfflineChatModel(), workspace=tmp_path)
    events = list(s.stream("run ORIGEN on the oscillator with 5 cycles"))
    kinds = [e.kind for e in events]
    assert kinds[0] == "tool_start" and events[0].name == "run_origen_oscillator" and events[0].args == {"n_cycles": 5}
    assert kinds[1] == "tool_result" and isinstance(events[1].result, ToolResult)
    assert kinds[-1] == "answer" and "token" in kinds
    final = events[-1].answer
    assert "".join(e.text for e in events if e.kind == "token") == final.answer
    assert s.ask("again with 3 cycles").tool_calls[0]["args"] == {"n_cycles": 3}   # memory spans stream/ask


CONCEPTS = ["why does normalisation matter?", "what is the covariance update?", "explain the Kalman gain",
            "what is on day 3 of the course?", "why does 3D-Var plateau?",
            "what is the difference between mode A and mode B?"]


def test_every_citation_was_retrieved_this_turn(lecture_env, tmp_path):
    s = Session(OfflineChatModel(), workspace=tmp_path)
    for q in CONCEPTS:
        a = s.ask(q)
        retrieved = {p["citation"] for r in a.results for p in r.passages}
        cited = set(CITATION.findall(a.answer))
        assert cited, (q, a.answer)
        assert cited <= retrieved, (q, cited - retrieved)
        assert set(a.citations) == cited


def test_outside_the_lab_cites_nothing(lecture_env, tmp_path):
    from assistant import prompts

    for question in ("what is the capital of Mongolia?", "What's the weather like in Bonn tomorrow?"):
        a = Session(OfflineChatModel(), workspace=tmp_path).ask(question)
        assert a.tool_calls == [] and a.answer == prompts.OFF_TOPIC          # a polite refusal, nothing run
        assert a.citations == [] and not CITATION.findall(a.answer)


# ----------------------------------------------------------------------------- OpenAI-compatible endpoint

def test_http_loop_tool_call_result_answer(tmp_path):
    script = [tool_call("run_3dvar_cycle", {"sigma_o": 0.3}), text("The analysis RMSE is in the tool result.")]
    with FakeOpenAI(script) as srv:
        a = openai_session(srv.url, tmp_path).ask("run a 3D-Var cycle with sigma_o 0.3")
    assert a.tool_calls == [{"name": "run_3dvar_cycle", "args": {"sigma_o": 0.3}}]
    assert isinstance(a.results[0], ToolResult) and a.results[0].args["sigma_o"] == 0.3
    assert a.answer == "The analysis RMSE is in the tool result." and a.figures[0].is_file()
    first, second = srv.requests
    assert first["auth"] == "Bearer sk-test" and first["body"]["model"] == "fake-model"
    assert first["body"]["messages"][0]["role"] == "system"
    assert {t["function"]["name"] for t in first["body"]["tools"]} == set(TOOLS)
    assert "rmse_analysis" in tool_messages(second)[0]["content"]


def test_http_streaming(tmp_path):
    script = [tool_call("run_3dvar_cycle", {"sigma_o": 0.3, "covariance_update": True}), text("Done: see the figure.")]
    with FakeOpenAI(script) as srv:
        events = list(openai_session(srv.url, tmp_path).stream("3D-Var with the covariance update"))
    assert all(r["body"].get("stream") for r in srv.requests)
    starts = [e for e in events if e.kind == "tool_start"]
    assert starts[0].args == {"sigma_o": 0.3, "covariance_update": True}
    result = next(e for e in events if e.kind == "tool_result").result
    assert isinstance(result, ToolResult) and result.args["covariance_update"] is True
    tokens = [e.text for e in events if e.kind == "token"]
    assert len(tokens) > 1 and "".join(tokens).strip() == "Done: see the figure."
    assert events[-1].answer.answer.strip() == "Done: see the figure."


def test_http_malformed_tool_calls_are_recovered(tmp_path):
    script = [tool_call("run_4dvar_cycle", {"sigma_o": 0.3}, "c1"),
              tool_call("run_3dvar_cycle", {"sigma_o": -1, "sigma_obs": 2}, "c2"),
              tool_call("run_3dvar_cycle", {"sigma_o": 0.3}, "c3"),
              text("Recovered.")]
    with FakeOpenAI(script) as srv:
        a = openai_session(srv.url, tmp_path).ask("run 3dvar")
    assert [t["name"] for t in a.tool_calls] == ["run_4dvar_cycle", "run_3dvar_cycle", "run_3dvar_cycle"]
    assert a.answer == "Recovered." and len(a.results) == 1
    unknown = tool_messages(srv.requests[1])[-1]["content"]
    assert "run_4dvar_cycle" in unknown and "run_3dvar_cycle" in unknown        # names the valid tools
    invalid = tool_messages(srv.requests[2])[-1]["content"]
    assert "sigma_o" in invalid and "sigma_obs" in invalid and "> 0" in invalid


def test_http_missing_prerequisite_goes_back_to_the_model(tmp_path):
    with FakeOpenAI([tool_call("reconstruct_field", {}), text("You need to train first.")]) as srv:
        a = openai_session(srv.url, tmp_path).ask("reconstruct the field")
    assert a.answer == "You need to train first."
    assert "train_obs2obs" in tool_messages(srv.requests[1])[0]["content"]


def test_http_tool_call_with_invalid_json_goes_back_to_the_model(tmp_path):
    script = [tool_call("run_3dvar_cycle", "sigma_o=0.3", "c1"),               # not JSON
              tool_call("run_3dvar_cycle", {"sigma_o": 0.3}, "c2"), text("Recovered.")]
    with FakeOpenAI(script) as srv:
        events = list(openai_session(srv.url, tmp_path).stream("run 3dvar"))
    answer = events[-1].answer
    assert answer.answer.strip() == "Recovered."
    assert answer.tool_calls == [{"name": "run_3dvar_cycle", "args": {"sigma_o": 0.3}}]
    assert len(answer.results) == 1
    second = srv.requests[1]["body"]["messages"]
    asked = next(m for m in second if m["role"] == "assistant")
    assert asked["tool_calls"][0]["id"] == "c1"                       # the reply answers a call the API knows
    (reply,) = tool_messages(srv.requests[1])
    assert reply["tool_call_id"] == "c1" and "not valid JSON" in reply["content"] and "sigma_o=0.3" in reply["content"]
    failed = [e for e in events if e.kind == "tool_result" and e.error]
    assert len(failed) == 1 and "not valid JSON" in failed[0].error   # the UI shows the failed step


def test_http_valid_and_invalid_calls_in_one_reply_both_get_answers(tmp_path):
    both = {"tool_calls": tool_call("run_3dvar_cycle", {"sigma_o": 0.3}, "good")["tool_calls"]
            + tool_call("run_origen_oscillator", "n_cycles=5", "bad")["tool_calls"]}
    with FakeOpenAI([both, text("One ran, one was malformed.")]) as srv:
        a = openai_session(srv.url, tmp_path).ask("run both")
    assert a.answer == "One ran, one was malformed." and len(a.results) == 1
    replies = {m["tool_call_id"]: m["content"] for m in tool_messages(srv.requests[1])}
    assert set(replies) == {"good", "bad"}                       # every call the API knows has its reply
    assert "analysis RMSE" in replies["good"] and "not valid JSON" in replies["bad"]


def test_http_call_limit_ends_a_runaway_loop(tmp_path):
    with FakeOpenAI([tool_call("run_3dvar_cycle", {"n_steps": 20})]) as srv:   # calls tools forever
        a = openai_session(srv.url, tmp_path).ask("loop")
    assert len(srv.requests) <= MAX_MODEL_CALLS and isinstance(a, Answer)
    assert "limit" in a.answer.lower()


def test_http_memory_sends_the_history(tmp_path):
    with FakeOpenAI([text("first"), text("second")]) as srv:
        s = openai_session(srv.url, tmp_path)
        s.ask("hello")
        s.ask("and again")
    roles = [m["role"] for m in srv.requests[1]["body"]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]


@pytest.mark.parametrize(("reply", "setting"), [
    (error(500, "internal failure"), "OPENAI_BASE_URL"),
    (error(401, "invalid api key"), "OPENAI_API_KEY"),
    (error(404, "model not found"), "DALAB_MODEL"),
    (sleep(1.5), "DALAB_TIMEOUT"),
])
def test_http_failures_name_the_setting(tmp_path, reply, setting):
    with FakeOpenAI([reply]) as srv:
        s = openai_session(srv.url, tmp_path, timeout=0.5)
        with pytest.raises(AgentError, match=setting):
            s.ask("run 3dvar")
        with pytest.raises(AgentError, match=setting):
            list(s.stream("run 3dvar"))


def test_endpoint_down_names_the_setting(tmp_path):
    srv = FakeOpenAI([text("x")]).start()
    url = srv.url
    srv.stop()
    with pytest.raises(AgentError, match="OPENAI_BASE_URL"):
        openai_session(url, tmp_path, timeout=2).ask("hi")


def test_half_configured_openai_is_an_agent_error(monkeypatch, tmp_path):
    from tools.settings import get_settings

    monkeypatch.setenv("DALAB_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        with pytest.raises(AgentError, match="OPENAI_API_KEY"):
            ask("hi", llm="openai")
    finally:
        get_settings.cache_clear()


# ----------------------------------------------------------------------------- the CLI

def test_cli_ask_json(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DALAB_"))}
    env |= {"DALAB_HOME": str(tmp_path), "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "ask", "run a 3D-Var cycle with sigma_o 0.3", "--json"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["tool_calls"] == [{"name": "run_3dvar_cycle", "args": {"sigma_o": 0.3}}]
    assert "rmse_analysis" in d["answer"] and d["citations"] == []
    assert d["figures"] and Path(d["figures"][0]).is_file() and str(tmp_path) in d["figures"][0]
