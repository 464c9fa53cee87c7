"""A scripted OpenAI-compatible ``/v1/chat/completions`` server on 127.0.0.1 (stdlib only), for
testing the agent over real HTTP, streaming (SSE) and not.

    with FakeOpenAI([tool_call("run_3dvar_cycle", {"sigma_o": 0.3}), text("done")]) as srv:
        ChatOpenAI(base_url=srv.url, api_key="x", ...)

Each request takes the next reply of the script (the last one repeats): ``tool_call(...)``,
``text(...)``, ``error(status, message)``, ``sleep(seconds)``, ``drip(every, n)`` (a byte every
``every`` seconds, never a complete reply) or ``raw(body, content_type)`` (a malformed reply);
or pass a function of the request body. Requests are recorded in ``srv.requests``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = dict[str, Any]


def tool_call(name: str, args: dict[str, Any] | str, call_id: str | None = None) -> Reply:
    """A reply calling one tool (``args`` as a dict, or a raw string for malformed JSON)."""
    raw = args if isinstance(args, str) else json.dumps(args)
    return {"tool_calls": [{"id": call_id or f"call_{name}", "type": "function",
                            "function": {"name": name, "arguments": raw}}]}


def text(content: str) -> Reply:
    return {"content": content}


def error(status: int, message: str = "boom") -> Reply:
    return {"status": status, "message": message}


def sleep(seconds: float) -> Reply:
    return {"sleep": seconds, "content": "too late"}


def drip(every: float, n: int = 1000) -> Reply:
    """Headers at once, then one byte every ``every`` seconds, ``n`` times: never a whole reply."""
    return {"drip": every, "n": n}


def raw(body: str, content_type: str = "application/json", status: int = 200) -> Reply:
    """A reply that is not what the API promises (HTML, not JSON, no choices...)."""
    return {"raw": body, "content_type": content_type, "raw_status": status}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True   # avoids ~40 ms delayed-ACK stalls per response
    server: "_Server"

    def log_message(self, *args: Any) -> None:
        pass

    def _send_json(self, code: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        fake = self.server.fake
        fake.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
        reply = fake.next_reply(body)
        if "drip" in reply:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream" if body.get("stream") else "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                for _ in range(reply["n"]):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(reply["drip"])
            except OSError:      # the client gave up: as it should
                pass
            return None
        if "raw" in reply:
            data = reply["raw"].encode()
            self.send_response(reply["raw_status"])
            self.send_header("Content-Type", reply["content_type"])
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None
        if "sleep" in reply:
            time.sleep(reply["sleep"])
        if "status" in reply:
            return self._send_json(reply["status"], {"error": {"message": reply["message"], "type": "server_error",
                                                               "code": reply["status"]}})
        finish = "tool_calls" if reply.get("tool_calls") else "stop"
        base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": body.get("model", "fake")}
        if not body.get("stream"):
            message = {"role": "assistant", "content": reply.get("content")}
            if reply.get("tool_calls"):
                message["tool_calls"] = reply["tool_calls"]
            return self._send_json(200, {**base, "object": "chat.completion",
                                         "choices": [{"index": 0, "finish_reason": finish, "message": message}],
                                         "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()

        def chunk(delta: dict[str, Any], fr: str | None = None) -> None:
            c = {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": fr}]}
            self.wfile.write(b"data: " + json.dumps(c).encode() + b"\n\n")

        chunk({"role": "assistant", "content": ""})
        for i, tc in enumerate(reply.get("tool_calls") or []):
            chunk({"tool_calls": [{"index": i, "id": tc["id"], "type": "function",
                                   "function": {"name": tc["function"]["name"], "arguments": ""}}]})
            args = tc["function"]["arguments"]
            for j in range(0, len(args), 8):
                chunk({"tool_calls": [{"index": i, "function": {"arguments": args[j:j + 8]}}]})
        if reply.get("content"):
            for word in reply["content"].split(" "):
                chunk({"content": word + " "})
        chunk({}, finish)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: "FakeOpenAI"


class FakeOpenAI:
    """The server; use as a context manager (starts on a free port, stops on exit)."""

    def __init__(self, script: list[Reply] | Callable[[dict[str, Any]], Reply]) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self._i = 0
        self._lock = threading.Lock()
        self._srv: _Server | None = None

    def next_reply(self, body: dict[str, Any]) -> Reply:
        if callable(self.script):
            return self.script(body)
        with self._lock:
            reply = self.script[min(self._i, len(self.script) - 1)]
            self._i += 1
        return reply

    @property
    def url(self) -> str:
        assert self._srv is not None
        return f"http://127.0.0.1:{self._srv.server_address[1]}/v1"

    def start(self) -> "FakeOpenAI":
        self._srv = _Server(("127.0.0.1", 0), _Handler)
        self._srv.fake = self
        threading.Thread(target=self._srv.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._srv is not None:
            self._srv.shutdown()
            self._srv.server_close()
            self._srv = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
