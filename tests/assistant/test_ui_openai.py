"""The web UI with an OpenAI-compatible LLM over real HTTP (a scripted local server): the header
names the model, the LLM's tool call runs as a step with its figure, and an unreachable endpoint
gives a message that names the setting to check."""

from __future__ import annotations

import urllib.request

from fake_openai import FakeOpenAI, text, tool_call
from gradio_client import Client
from ui_server import free_port, running_app

from assistant.llm import chat_openai
from tools.assimilation import CycleArgs
from tools.settings import Settings


def llm(url: str, home, timeout: float = 10.0):
    return chat_openai(Settings(home=home, llm="openai", openai_base_url=url, openai_api_key="sk-test",
                                model="fake-model", request_timeout=timeout))


def test_llm_tool_call_runs_in_the_ui(tmp_path):
    script = [tool_call("run_3dvar_cycle", {"sigma_o": 0.3, "covariance_update": True}),
              text("The covariance update lowers the analysis RMSE; see the figure.")]
    with FakeOpenAI(script) as srv, running_app(tmp_path, model=llm(srv.url, tmp_path)) as url:
        endpoint = srv.url
        client = Client(url, verbose=False, download_files=str(tmp_path / "dl"))
        history, card, metrics, _ = client.predict("3D-Var with the covariance update please", api_name="/chat")
        with urllib.request.urlopen(url + "config", timeout=10) as r:
            config = r.read().decode()
    step = next(m for m in history if (m.get("metadata") or {}).get("title", "").endswith("run_3dvar_cycle"))
    assert "sigma_o=0.3, covariance_update=True" in step["content"][0]["text"]
    assert any(p.get("type") == "file" for m in history for p in m["content"])
    assert history[-1]["content"][0]["text"] == "The covariance update lowers the analysis RMSE; see the figure."
    prior = CycleArgs().sigma_b ** 2                                   # B's variance before any update
    assert "run_3dvar_cycle" in card and float({r[0]: r[1] for r in metrics["data"]}["B_var_last_x1"]) < prior   # B was updated
    assert srv.requests[0]["body"]["model"] == "fake-model"
    assert f"Answering: **fake-model at {endpoint}" in config          # the header names the model


def test_unreachable_endpoint_is_explained_in_the_chat(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/v1"                   # nothing listens there
    with running_app(tmp_path, model=llm(dead, tmp_path, timeout=3)) as url:
        client = Client(url, verbose=False)
        history, *_ = client.predict("run a 3D-Var cycle", api_name="/chat")
    reply = history[-1]["content"][0]["text"]
    assert reply.startswith("**Error:**") and "OPENAI_BASE_URL" in reply and "127.0.0.1" in reply

