"""A misbehaving LLM endpoint: a server that drips a byte every second is cut off at DALAB_TIMEOUT
for the request as a whole (not per read), in the agent, the CLI and the UI, and the session goes
on; malformed replies (HTML, not JSON, no choices) are "the LLM server sent an invalid reply"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, drip, raw, text

from assistant.agent import AgentError, Session
from assistant.llm import make_model
from tools.settings import from_env

TIMEOUT = 3.0
REPO = Path(__file__).resolve().parents[2]


def model_for(srv: FakeOpenAI, tmp_path: Path):
    return make_model(from_env({"OPENAI_BASE_URL": srv.url, "DALAB_TIMEOUT": str(TIMEOUT),
                                "DALAB_HOME": str(tmp_path)}))


def test_a_dripping_server_is_cut_off_at_the_timeout_and_the_session_goes_on(tmp_path):
    with FakeOpenAI([drip(1.0, 120), drip(1.0, 120), text("fine, thanks")]) as srv:
        session = Session(model_for(srv, tmp_path), workspace=tmp_path)
        for how in ("ask", "stream"):
            t0 = time.monotonic()
            with pytest.raises(AgentError, match=rf"did not answer within {TIMEOUT:g} s \(the whole reply"):
                session.ask("hello") if how == "ask" else list(session.stream("hello"))
            assert time.monotonic() - t0 < TIMEOUT + 2.5, how           # not 60 s of dripping
        assert session.ask("hello again").answer.strip() == "fine, thanks"


def test_a_server_that_never_answers_is_cut_off_at_the_first_byte(tmp_path):
    env = {"OPENAI_BASE_URL": "", "DALAB_TIMEOUT": "10", "DALAB_FIRST_TOKEN_TIMEOUT": "2", "DALAB_HOME": str(tmp_path)}
    with FakeOpenAI([{"sleep": 30, "content": "late"}]) as srv:
        session = Session(make_model(from_env(env | {"OPENAI_BASE_URL": srv.url})), workspace=tmp_path)
        t0 = time.monotonic()
        with pytest.raises(AgentError, match="no reply within 2 s"):
            session.ask("hello")
        assert time.monotonic() - t0 < 4


MALFORMED = {
    "html": raw("<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
    "not json": raw("this is not json", "application/json"),
    "empty choices": raw(json.dumps({"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": []})),
    "no choices": raw(json.dumps({"id": "x", "object": "chat.completion", "created": 1, "model": "m"})),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_replies_are_an_invalid_reply_message(tmp_path, kind):
    with FakeOpenAI([MALFORMED[kind]]) as srv:
        session = Session(model_for(srv, tmp_path), workspace=tmp_path)
        for call in (lambda: session.ask("hello"), lambda: list(session.stream("hello"))):
            with pytest.raises(AgentError) as err:
                call()
            assert str(err.value).startswith("the LLM server sent an invalid reply ("), str(err.value)
            assert "OPENAI_BASE_URL" in str(err.value) and len(str(err.value)) < 500


def test_the_cli_honours_the_timeout(tmp_path):
    with FakeOpenAI([drip(1.0, 120)]) as srv:
        env = os.environ | {"OPENAI_BASE_URL": srv.url, "DALAB_TIMEOUT": str(TIMEOUT), "DALAB_HOME": str(tmp_path),
                            "DALAB_LLM": "openai", "PYTHONPATH": str(REPO)}
        t0 = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "assistant.cli", "ask", "hello"], env=env, capture_output=True,
                             text=True, timeout=120, cwd=REPO)
        elapsed = time.monotonic() - t0
    assert out.returncode == 2 and "did not answer within 3 s" in out.stderr and "Traceback" not in out.stderr
    assert elapsed < 40          # python + torch start-up, then at most TIMEOUT + one drip


def test_the_ui_honours_the_timeout_and_the_session_goes_on(lecture_home, tmp_path):
    from gradio_client import Client
    from ui_server import running_app

    with FakeOpenAI([drip(1.0, 120), text("fine, thanks")]) as srv:
        with running_app(lecture_home, model=model_for(srv, tmp_path)) as url:
            client = Client(url, verbose=False, download_files=str(tmp_path))
            t0 = time.monotonic()
            history, *_ = client.predict("hello", api_name="/chat")
            assert time.monotonic() - t0 < TIMEOUT + 5
            assert "did not answer within 3 s" in str(history[-1]["content"])
            history, *_ = client.predict("hello again", api_name="/chat")
            assert "fine, thanks" in str(history[-1]["content"])
