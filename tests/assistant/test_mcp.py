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
    assert run_dir.startswith(str(lecture_home / "runs"))   # the MCP workspace is DALAB_HOME, like the CLI


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
