"""`dalab ui --mcp`: the registry's tools through the MCP Python client over streamable HTTP."""

from __future__ import annotations

import asyncio
import base64
import io
import re

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from tools.registry import TOOLS


def mcp_call(url: str, *calls: tuple[str, dict]):
    """List the tools, then make ``calls`` in one MCP session; returns (tools, results)."""

    async def main():
        async with streamable_http_client(url + "mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = (await session.list_tools()).tools
                results = [await session.call_tool(name, args) for name, args in calls]
                return tools, results

    return asyncio.run(main())


def test_lists_every_registry_tool_with_its_schema(ui_url):
    tools, _ = mcp_call(ui_url)
    assert [t.name for t in tools] == list(TOOLS)
    var = next(t for t in tools if t.name == "run_3dvar_cycle")
    props = var.inputSchema["properties"]
    assert props["sigma_o"]["exclusiveMinimum"] == 0 and props["sigma_o"]["maximum"] == 10
    assert "3D-Var" in var.description


def test_run_3dvar_cycle_returns_text_metrics_and_image(ui_url, lecture_home):
    _, (res,) = mcp_call(ui_url, ("run_3dvar_cycle", {"sigma_o": 0.2, "n_steps": 150}))
    assert not res.isError
    first = res.content[0]
    assert first.type == "text" and "analysis RMSE" in first.text and "rmse_analysis=" in first.text
    images = [c for c in res.content if c.type == "image"]
    assert images and images[0].mimeType == "image/png"
    png = Image.open(io.BytesIO(base64.b64decode(images[0].data)))
    assert png.format == "PNG" and png.width > 400
    captions = [c.text for c in res.content if c.type == "text" and c.text.startswith("figure ")]
    assert len(captions) == len(images)                    # every image is named in text too
    metrics = res.structuredContent["metrics"]
    assert metrics["rmse_analysis"] < metrics["rmse_background"]
    assert res.structuredContent["args"]["n_steps"] == 150
    run_dir = res.structuredContent["run_dir"]
    assert run_dir.startswith("runs/") and (lecture_home / run_dir).is_dir()   # DALAB_HOME, like the CLI
    assert str(lecture_home) not in str(res.structuredContent)                 # named relative to it


def test_bad_arguments_are_a_tool_error_that_says_what_is_allowed(ui_url, lecture_home):
    before = sorted((lecture_home / "runs").glob("*")) if (lecture_home / "runs").exists() else []
    _, (bad, unknown) = mcp_call(ui_url, ("run_3dvar_cycle", {"sigma_o": -1}), ("run_4dvar", {}))
    assert bad.isError and "must be a number > 0 and <= 10" in bad.content[0].text
    assert unknown.isError and "run_3dvar_cycle" in unknown.content[0].text   # lists the real tools
    after = sorted((lecture_home / "runs").glob("*")) if (lecture_home / "runs").exists() else []
    assert after == before


def test_search_lectures_returns_cited_passages(ui_url):
    _, (res,) = mcp_call(ui_url, ("search_lectures", {"query": "why normalise each satellite channel?", "k": 2}))
    assert not res.isError
    (text,) = [c.text for c in res.content if c.type == "text"]
    assert re.findall(r"\[corpus/[\w.]+ § [^\]]+\] \(score", text).__len__() == 2


def test_calls_are_confined_to_dalab_home_runs_and_errors_name_no_server_path(ui_url, lecture_home):
    from tools.base import Workspace
    from tools.registry import run_tool

    student = Workspace(lecture_home / "sessions" / ("ab" * 16), confined=True)      # a UI session's product
    theirs = run_tool("run_origen_lorenz63", {"n_steps": 60, "n_cycles": 2}, workspace=student)
    npz = theirs.run_dir / "origen_l63.npz"
    names = [str(npz), f"sessions/{'ab' * 16}/runs/{theirs.run_dir.name}", f"../sessions/{'ab' * 16}/runs/"
             f"{theirs.run_dir.name}", "/etc/passwd", "x" * 300]
    _, results = mcp_call(ui_url, *[("train_lorenz63_emulator", {"reconstruction": n, "epochs": 1}) for n in names])
    for name, res in zip(names, results):
        text = res.content[0].text
        assert res.isError and str(lecture_home) not in text.replace(name, ""), (name, text)
        assert "among your runs" in text or "too long" in text, text


def _post_initialize(url: str, headers: dict) -> int:
    import httpx

    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
    return httpx.post(url + "mcp/", json=body, timeout=30, headers={
        "Accept": "application/json, text/event-stream", **headers}).status_code


def test_with_a_token_only_clients_that_send_it_get_in(tmp_path, monkeypatch):
    import httpx
    from ui_server import running_app

    token = "s3cret-" + "7" * 40
    monkeypatch.setenv("DALAB_MCP_TOKEN", token)
    with running_app(tmp_path, mcp=True) as url:
        assert _post_initialize(url, {}) == 401
        assert _post_initialize(url, {"Authorization": "Bearer wrong"}) == 401
        assert _post_initialize(url, {"Authorization": f"Basic {token}"}) == 401
        assert _post_initialize(url, {"Authorization": f"Bearer {token}"}) == 200

        async def main():
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
                async with streamable_http_client(url + "mcp/", http_client=http) as (r, w, _):
                    async with ClientSession(r, w) as session:
                        await session.initialize()
                        return await session.call_tool("run_3dvar_cycle", {"n_steps": 20})

        res = asyncio.run(main())
        assert not res.isError and "analysis RMSE" in res.content[0].text
