"""Browser sessions of the web UI, without Gradio: each session's workspace, conversation and
transcript, the registry that finds a session again after a page reload, and one chat turn run
in a worker thread as a stream of transcript updates.

    registry = SessionRegistry(home, model)
    lab = registry.restore(sid_from_the_browser)       # or registry.new()
    for _ in chat_turn(lab, "run a 3D-Var cycle"):     # after each step: lab.history changed
        ...

Turns of one session run one at a time in the order they were sent; a turn ends when its worker
ends, even if the page stops listening. A session's workspace is confined: earlier products are
looked up only among its own runs, and it has at most ``runs_per_session`` runs going at once.

Which session a request belongs to is decided by the server alone: a signed, HttpOnly cookie
(:class:`SessionKeys`, :func:`session_cookies`) whose key never leaves the server. Knowing a
session's id is not enough to use it, and its files download only by the browser that owns it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import queue
import re
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.agent import AgentError, Session
from tools.base import RunCancelled, ToolResult, Workspace

log = logging.getLogger("dalab.ui")
POLL_S = 0.2          # how often a running event looks for news from its worker thread
KEEP_SESSIONS = 500   # sessions kept in memory (older ones come back from disk, without the chat)
SESSION_ID = re.compile(r"[0-9a-f]{32}")
_DONE = object()


# ----------------------------------------------------------------------------- sessions

@dataclass
class LabSession:
    """One browser session: its workspace, its conversation and its chat transcript."""

    id: str
    workspace: Workspace
    model: Any
    history: list[dict[str, Any]] = field(default_factory=list)
    latest: ToolResult | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    """set by the Cancel button: the running tool stops at its next progress report"""
    _agent: Session | None = None
    _sink: queue.Queue | None = None
    _turns: threading.Condition = field(default_factory=threading.Condition)
    _next_ticket: int = 0
    _serving: int = 0

    @classmethod
    def new(cls, home: Path, model: Any, runs_at_once: int | None = None) -> LabSession:
        return cls.at(home, new_session_id(), model, runs_at_once)

    @classmethod
    def at(cls, home: Path, sid: str, model: Any, runs_at_once: int | None = None) -> LabSession:
        return cls(id=sid, workspace=Workspace(Path(home) / "sessions" / sid, confined=True, max_active=runs_at_once),
                   model=model)

    @property
    def agent(self) -> Session:
        if self._agent is None:
            self._agent = Session(self.model, self.workspace, progress=self.progress)
        return self._agent

    def progress(self, fraction: float, message: str) -> None:
        """The tools' progress callback: forwarded to the event that is running; it stops the tool
        (``RunCancelled``) once Cancel was pressed."""
        if self.cancel.is_set():
            raise RunCancelled("cancelled by you")
        sink = self._sink
        if sink is not None:
            sink.put(("progress", float(fraction), str(message)))

    def run_dirs(self) -> list[Path]:
        return self.workspace.run_dirs()

    def run(self, name: str | None) -> Path | None:
        """This session's run folder called exactly ``name`` (never a path elsewhere), or None."""
        return {d.name: d for d in self.run_dirs()}.get(name or "")

    # Turns run one at a time, in the order they were sent (tickets), each in a worker thread.
    def ticket(self) -> int:
        with self._turns:
            self._next_ticket += 1
            return self._next_ticket - 1

    def my_turn(self, ticket: int) -> bool:
        with self._turns:
            return self._serving == ticket

    @property
    def busy(self) -> bool:
        with self._turns:
            return self._serving != self._next_ticket

    def end_turn(self) -> None:
        with self._turns:
            self._serving += 1
            self._turns.notify_all()

    def reset(self) -> None:
        """Forget the transcript and the conversation (the workspace's runs stay)."""
        self.history = []
        if self._agent is not None:
            self._agent.reset()


class SessionRegistry:
    """The server's browser sessions by id, so that a page reload (or a laptop waking up) finds its
    workspace and conversation again. The id comes from the signed session cookie (``session_cookies``),
    never from the page; sessions no longer in memory come back from their workspace on disk (runs
    kept, chat started afresh)."""

    def __init__(self, home: Path, model: Any, keep: int = KEEP_SESSIONS, runs_at_once: int | None = None) -> None:
        self.home, self.model, self.keep, self.runs_at_once = Path(home), model, keep, runs_at_once
        self._sessions: dict[str, LabSession] = {}
        self._lock = threading.Lock()

    def new(self) -> LabSession:
        return self._add(LabSession.new(self.home, self.model, self.runs_at_once))

    def open(self, sid: str) -> LabSession:
        """The session of a *verified* id (from the signed cookie): in memory, from its workspace on
        disk, or started afresh under exactly that id."""
        if not SESSION_ID.fullmatch(sid or ""):
            raise ValueError("not a session id")
        return self.restore(sid, create=True)

    def restore(self, sid: Any, create: bool = False) -> LabSession:
        """The session ``sid`` names, or a new one when it is unknown or malformed (with ``create``,
        an unknown well-formed id gets a new session under that id)."""
        if not isinstance(sid, str) or not SESSION_ID.fullmatch(sid):
            return self.new()
        with self._lock:                               # one object per session, even for two reloading tabs
            lab = self._sessions.pop(sid, None)
            if lab is not None:
                self._sessions[sid] = lab          # most recently used last
                return lab
            if (self.home / "sessions" / sid).is_dir():
                lab = LabSession.at(self.home, sid, self.model, self.runs_at_once)
                runs = [r for r in map(load_result, reversed(lab.run_dirs())) if r is not None]
                lab.latest = next((r for r in runs if r.tool != "search_lectures"), None)
                lab.history = [{"role": "assistant", "content": f"Welcome back. Your {len(runs)} earlier run(s) are "
                                                                "in the Runs tab; this conversation starts afresh."}]
                self._sessions[sid] = lab
                self._evict()
                return lab
            if create:
                lab = LabSession.at(self.home, sid, self.model, self.runs_at_once)
                self._sessions[sid] = lab
                self._evict()
                return lab
        return self.new()

    def _add(self, lab: LabSession) -> LabSession:
        with self._lock:
            self._sessions[lab.id] = lab
            self._evict()
        return lab

    def _evict(self) -> None:
        """Forget the least recently used idle sessions beyond ``keep`` (their runs stay on disk)."""
        for sid in [s for s, lab in self._sessions.items() if not lab.busy][:max(0, len(self._sessions) - self.keep)]:
            del self._sessions[sid]


def new_session_id() -> str:
    return uuid.uuid4().hex


def server_secret(home: Path) -> str:
    """The per-installation key that signs session cookies (``DALAB_HOME/ui_secret``, mode 600).
    It never leaves the server: not in the page, not in ``/config``."""
    path = Path(home) / "ui_secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise RuntimeError(f"{path} is damaged (too short): delete it and start again")
    return secret


COOKIE = "dalab_session"
COOKIE_AGE_S = 180 * 24 * 3600     # a term


class SessionKeys:
    """Signs and checks session cookies: ``<id>.<HMAC-SHA256(key, id)>``. Only the server can make
    one, so a session id learnt from anywhere (a path, a screen, a log) does not open the session."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"dalab session cookie\0" + secret.encode()).digest()

    def sign(self, sid: str) -> str:
        return f"{sid}.{hmac.new(self._key, sid.encode(), hashlib.sha256).hexdigest()}"

    def verify(self, value: str | None) -> str | None:
        """The session id a cookie value carries, or None when it is missing, malformed or forged."""
        sid, _, mac = (value or "").partition(".")
        if not SESSION_ID.fullmatch(sid) or not mac:
            return None
        return sid if hmac.compare_digest(self.sign(sid), f"{sid}.{mac}") else None

    def from_headers(self, cookie_header: str | None) -> str | None:
        """The verified session id in a ``Cookie:`` header."""
        for part in (cookie_header or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return self.verify(value)
        return None


def _with_cookie(header: str, value: str) -> str:
    """``header`` (a ``Cookie:`` value) with our cookie set to ``value`` (a forged one dropped)."""
    parts = [p for p in (x.strip() for x in header.split(";")) if p and p.partition("=")[0] != COOKIE]
    return "; ".join([*parts, f"{COOKIE}={value}"])


ASGI = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def session_cookies(app: ASGI, keys: SessionKeys, sessions_dir: Path) -> ASGI:
    """ASGI middleware: every request belongs to a session the server signed.

    * A request without a valid cookie gets a new session: the cookie is set on the response
      (HttpOnly, SameSite=Lax, Secure over HTTPS) and put in the request, so the handlers of that
      very request already see it. A forged or altered cookie is replaced the same way.
    * ``…/file=<path>`` inside ``sessions_dir`` is served only to the session that owns the folder
      (403 otherwise): another client cannot download a student's files by path.
    """
    sessions_real = os.path.realpath(sessions_dir)

    def owner(path: str) -> str | None:
        """The session folder a ``file=`` path points into, '' for the sessions folder itself, or
        None when it is outside."""
        real = os.path.realpath(path if os.path.isabs(path) else os.path.join(os.getcwd(), path))
        if real == sessions_real:
            return ""
        if not real.startswith(sessions_real + os.sep):
            return None
        return real[len(sessions_real) + 1:].split(os.sep, 1)[0]

    async def middleware(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        headers = list(scope.get("headers") or [])
        cookie_header = b"; ".join(v for k, v in headers if k == b"cookie").decode("latin-1")
        sid = keys.from_headers(cookie_header)
        issued = None
        if sid is None:
            sid = new_session_id()
            issued = keys.sign(sid)
            headers = [(k, v) for k, v in headers if k != b"cookie"]
            headers.append((b"cookie", _with_cookie(cookie_header, issued).encode("latin-1")))
            scope = dict(scope, headers=headers)
        path = scope.get("path", "")
        if scope["type"] == "http" and "/file=" in path:
            folder = owner(path.split("/file=", 1)[1])
            if folder is not None and folder != sid:
                await _respond(send, 403, b"File not allowed: it belongs to another session.")
                return
        if issued is None:
            await app(scope, receive, send)
            return
        https = scope.get("scheme") == "https" or dict(headers).get(b"x-forwarded-proto", b"") == b"https"
        cookie = (f"{COOKIE}={issued}; Path=/; Max-Age={COOKIE_AGE_S}; HttpOnly; SameSite=Lax"
                  + ("; Secure" if https else "")).encode("latin-1")

        async def send_with_cookie(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                message = dict(message, headers=[*message.get("headers", []), (b"set-cookie", cookie)])
            await send(message)

        await app(scope, receive, send_with_cookie)

    return middleware


async def _respond(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def in_background(work: Callable[[queue.Queue], None], sink: queue.Queue) -> None:
    """Run ``work(sink)`` in a thread; it ends by putting ``_DONE`` (after an ``("error", exc)``)."""

    def target() -> None:
        try:
            work(sink)
        except BaseException as exc:  # noqa: BLE001 — reported to the user by the event
            sink.put(("error", exc))
        finally:
            sink.put(_DONE)

    threading.Thread(target=target, daemon=True, name="dalab-turn").start()


def drain(sink: queue.Queue, timeout: float = POLL_S) -> tuple[list[Any], bool]:
    """Everything the worker has reported so far (waiting up to ``timeout`` for the first item)."""
    items: list[Any] = []
    try:
        items.append(sink.get(timeout=timeout))
        while True:
            items.append(sink.get_nowait())
    except queue.Empty:
        pass
    done = any(item is _DONE for item in items)
    return [item for item in items if item is not _DONE], done


# ----------------------------------------------------------------------------- formatting

TAG = re.compile(r"<(?=[A-Za-z/!?])")


def no_html(text: str) -> str:
    """``text`` with every HTML tag neutralised (``<b`` → ``&lt;b``), so that a passage from an
    uploaded file is shown as text and never rendered as HTML; ``a < b`` and math are unchanged."""
    return TAG.sub("&lt;", text)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def args_text(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt(v)}" for k, v in args.items()) or "defaults"


def progress_bar(fraction: float, message: str, width: int = 20) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * width)
    return f"`{'█' * filled}{'░' * (width - filled)}` {fraction:.0%} · {message}"


def step_body(args: dict[str, Any], result: ToolResult | None = None, error: str | None = None) -> str:
    """The body of a tool step: its arguments and what came of them. The run's summary and a
    refusal's reason are in the answer (and the summary in the Latest-run card), not repeated here."""
    body = f"**arguments:** `{args_text(args)}`"
    if error is not None:
        return body + "\n\n**Did not run** (the answer says why)."
    if result is None:
        return body
    if result.passages:
        cites = "\n".join(f"- {p.get('citation', '')} (score {p.get('score', 0):.2f})" for p in result.passages)
        return body + f"\n\n{len(result.passages)} passages:\n{cites}"
    return body + f"\n\nrun `{result.run_dir.name}` · {len(result.figures)} figure(s)"


def figure_message(path: Path, tool: str) -> dict[str, Any]:
    return {"role": "assistant",
            "content": {"path": str(path), "mime_type": "image/png", "alt_text": f"{tool}: {path.stem}"}}


def figure_digest(path: Path) -> str:
    """A figure's content hash (the same drawing gives the same PNG bytes)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return str(path)


def load_result(run_dir: Path) -> ToolResult | None:
    try:
        return ToolResult.model_validate_json((run_dir / "result.json").read_text())
    except (OSError, ValueError):
        return None


# ----------------------------------------------------------------------------- one chat turn

class TurnView:
    """The chat messages of one turn, updated as the agent's events arrive."""

    def __init__(self, history: list[dict[str, Any]]) -> None:
        self.history = history
        self.pending: list[tuple[int, float, str, dict[str, Any]]] = []   # (index, start, name, args)
        self.answer_at: int | None = None
        self.results: list[ToolResult] = []
        self.shown: dict[str, str] = {}       # figure content hash -> "tool's name", shown in this turn

    def tool_start(self, name: str, args: dict[str, Any]) -> None:
        self.answer_at = None          # text streamed before a tool call is not the final answer
        self.history.append({"role": "assistant", "content": step_body(args),
                             "metadata": {"title": f"tool · {name}", "status": "pending", "log": "running",
                                          "id": f"step-{len(self.history)}"}})
        self.pending.append((len(self.history) - 1, time.perf_counter(), name, args))

    def progress(self, fraction: float, message: str) -> None:
        if not self.pending:
            return
        i, _, _, args = self.pending[-1]
        self.history[i]["content"] = step_body(args) + "\n\n" + progress_bar(fraction, message)
        self.history[i]["metadata"]["log"] = f"{fraction:.0%}"

    def tool_result(self, name: str, result: ToolResult | None, error: str | None) -> None:
        k = next((j for j, p in enumerate(self.pending) if p[2] == name), 0 if self.pending else None)
        if k is None:
            return
        i, start, _, args = self.pending.pop(k)
        meta = self.history[i]["metadata"]
        meta.update(status="done", duration=round(time.perf_counter() - start, 2),
                    log="failed" if result is None else "done")
        self.history[i]["content"] = step_body(args, result, error or ("no result" if result is None else None))
        if result is not None:
            self.results.append(result)
            for path in result.figures:
                self.figure(path, name)

    def figure(self, path: Path, tool: str) -> None:
        """Show a figure, unless the same figure (by content) was shown earlier in this turn: then
        refer to that one."""
        digest = figure_digest(path)
        if digest in self.shown:
            self.history.append({"role": "assistant", "content": f"_{tool}'s `{path.stem}` is the same figure as "
                                                                 f"{self.shown[digest]} above._"})
            return
        self.shown[digest] = f"{tool}'s `{path.stem}`"
        self.history.append(figure_message(path, tool))

    def token(self, text: str) -> None:
        if self.answer_at is None:
            self.history.append({"role": "assistant", "content": ""})
            self.answer_at = len(self.history) - 1
        self.history[self.answer_at]["content"] += text

    def finish(self, text: str) -> None:
        """The whole answer, replacing the streamed pieces (same text, without stray whitespace)."""
        if self.answer_at is None:
            self.token(no_html(text))
        else:
            self.history[self.answer_at]["content"] = no_html(text.strip())

    def fail(self, message: str, label: str = "Error") -> None:
        for i, start, _, args in self.pending:
            self.history[i]["metadata"].update(status="done", log="stopped",
                                               duration=round(time.perf_counter() - start, 2))
        self.pending = []
        self.history.append({"role": "assistant", "content": f"**{label}:** {message}"})


def chat_turn(lab: LabSession, message: str, on_wait: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Run one message through the agent in a worker thread; yields whenever the transcript changed.

    A message sent while the session's previous turn still runs waits for it, in the order sent
    (``on_wait`` is told), so the transcript stays in order and nothing the student sent is lost.
    The turn ends when its worker ends, even if the page stops listening (closed or cancelled)."""
    message = (message or "").strip()
    if not message:
        return
    ticket = lab.ticket()
    started = False
    try:
        if not lab.my_turn(ticket):
            on_wait()
            while not lab.my_turn(ticket):
                time.sleep(POLL_S)       # polling: a waiting page holds no lock
        lab.cancel.clear()
        lab.history.append({"role": "user", "content": message})
        view = TurnView(lab.history)
        yield
        sink: queue.Queue = queue.Queue()
        lab._sink = sink

        def work(out: queue.Queue) -> None:
            try:
                for event in lab.agent.stream(message):
                    out.put(("event", event))
            finally:
                lab._sink = None
                lab.end_turn()

        in_background(work, sink)
        started = True
        done = False
        while not done:
            items, done = drain(sink)
            for item in items:
                apply(view, item)
            runs = [r for r in view.results if r.tool != "search_lectures"]
            if runs:
                lab.latest = runs[-1]      # the panel beside the chat follows the turn's runs
            if items:
                yield
    finally:
        if not started:
            if lab.my_turn(ticket):
                lab.end_turn()
            else:                        # left the queue before its turn: pass the turn on when it comes
                threading.Thread(target=_skip_turn, args=(lab, ticket), daemon=True).start()
    yield


def _skip_turn(lab: LabSession, ticket: int) -> None:
    while not lab.my_turn(ticket):
        time.sleep(POLL_S)
    lab.end_turn()


def apply(view: TurnView, item: tuple[Any, ...]) -> None:
    kind = item[0]
    if kind == "progress":
        view.progress(item[1], item[2])
    elif kind == "error":
        exc = item[1]
        if isinstance(exc, RunCancelled):
            view.fail(f"the run was {exc}; its partial run folder was removed. Ask again when you are ready.",
                      label="Stopped")
            return
        if not isinstance(exc, AgentError):
            log.error("a chat turn failed", exc_info=exc)
        view.fail(str(exc) if isinstance(exc, AgentError) else f"the assistant failed ({type(exc).__name__}: {exc})")
    elif kind == "event":
        ev = item[1]
        if ev.kind == "tool_start":
            view.tool_start(ev.name, ev.args)
        elif ev.kind == "tool_result":
            view.tool_result(ev.name, ev.result, ev.error)
        elif ev.kind == "token":
            view.token(ev.text)
        elif ev.kind == "answer" and ev.answer is not None and ev.answer.answer:
            view.finish(ev.answer.answer)
