"""dalab's tools over MCP (streamable HTTP), served beside the web UI by ``dalab ui --mcp``.

Every registry tool is listed with its description and the JSON schema of its pydantic arguments
(bounds and units included). A call runs the tool through ``tools.registry.run_tool`` in the MCP
workspace (``DALAB_HOME``, shared with the CLI, so ``reconstruct_field`` finds a model trained from
the command line), confined like a browser session: earlier products are found only among
``DALAB_HOME/runs`` (never by a path elsewhere, nor in the UI's sessions), and paths in results
and errors are relative to ``DALAB_HOME``. It returns

* a text block with the summary and the metrics, first, because many MCP clients drop images;
* for every figure, a text caption naming it and the PNG as an image block;
* the same numbers as ``structuredContent`` (tool, args, metrics, run directory, figure paths).

Bad arguments and missing earlier products come back as a tool error (``isError``) whose text is
the registry's message: what is wrong and what is allowed.

    manager = session_manager(Workspace(home, confined=True))
    app.mount("/mcp", with_token(manager.handle_request, token))   # bearer token, when one is set

A token (``DALAB_MCP_TOKEN``) is required whenever the server listens beyond the loopback
interface; clients send it as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from tools.base import ToolError, ToolResult, Workspace
from tools.registry import TOOLS, run_tool

SERVER_NAME = "dalab"
log = logging.getLogger("dalab.mcp")


def list_tools() -> list[types.Tool]:
    """The registry's tools as MCP tool definitions."""
    return [types.Tool(name=spec.name, description=spec.description, inputSchema=spec.args.model_json_schema())
            for spec in TOOLS.values()]


def result_content(result: ToolResult) -> list[types.TextContent | types.ImageContent]:
    """The content blocks of one result: summary + metrics as text, then each figure (caption + PNG)."""
    blocks: list[types.TextContent | types.ImageContent] = [types.TextContent(type="text", text=result.content())]
    for path in result.figures:
        blocks.append(types.TextContent(type="text", text=f"figure {path.name}"))
        blocks.append(types.ImageContent(type="image", mimeType="image/png",
                                         data=base64.b64encode(Path(path).read_bytes()).decode("ascii")))
    return blocks


def call(name: str, arguments: dict[str, Any] | None, workspace: Workspace) -> types.CallToolResult:
    """Run one tool and package its result (or its error) for MCP."""
    def error(text: str) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text=f"Error: {workspace.scrub(text)}")],
                                    isError=True)

    try:
        result = run_tool(name, arguments or {}, workspace=workspace)
    except ToolError as exc:
        return error(str(exc))
    except Exception as exc:  # a bug in a tool must not take the server down
        log.exception("MCP call of %s failed", name)
        return error(f"{name} failed unexpectedly ({type(exc).__name__}: {exc})")
    shown = workspace.shown
    structured = {"tool": result.tool, "args": result.args, "summary": result.summary, "metrics": result.metrics,
                  "run_dir": shown(result.run_dir), "figures": [shown(p) for p in result.figures],
                  "files": [shown(p) for p in result.files]}
    return types.CallToolResult(content=result_content(result), structuredContent=structured)


def build_server(workspace: Workspace) -> Server:
    """A low-level MCP server over the registry; tools run in worker threads."""
    server: Server = Server(SERVER_NAME, instructions=(
        "dalab: the lab on machine learning in data assimilation. Tools simulate the toy atmosphere, "
        "generate observations, train and evaluate the obs2obs network, run 3D-Var and ORIGEN, and "
        "search the lecture notes. Every result starts with a text summary and its metrics."))

    @server.list_tools()
    async def _list_tools() -> list[types.Tool]:
        return list_tools()

    # The registry validates the arguments itself, with messages that say what is allowed.
    @server.call_tool(validate_input=False)
    async def _call_tool(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        return await anyio.to_thread.run_sync(call, name, arguments, workspace)

    return server


def session_manager(workspace: Workspace) -> StreamableHTTPSessionManager:
    """The ASGI side: ``await manager.handle_request(scope, receive, send)`` inside ``manager.run()``."""
    return StreamableHTTPSessionManager(app=build_server(workspace), stateless=True)


def with_token(handler: Any, token: str | None) -> Any:
    """``handler`` (an ASGI callable) behind a bearer token: requests without ``Authorization:
    Bearer <token>`` get 401 and never reach it. With no token the handler is returned as it is."""
    if not token:
        return handler
    expected = token.encode()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"")
        scheme, _, value = given.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(value.strip(), expected):
            await handler(scope, receive, send)
            return
        body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {
            "code": -32001, "message": "this MCP server needs a token: send the header "
                                       "'Authorization: Bearer <DALAB_MCP_TOKEN>'"}}).encode()
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"www-authenticate", b'Bearer realm="dalab"'),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return guarded


LOOPBACK = ("127.0.0.1", "::1", "localhost")


def is_loopback(host: str) -> bool:
    """True when ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    return host in LOOPBACK or host.startswith("127.")
