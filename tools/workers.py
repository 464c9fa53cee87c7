"""Tool runs in worker processes, for a server that many people use at once (``dalab ui``).

In one Python process every run takes turns on the interpreter lock, so a class's runs used one
core however many the machine had, and each page load and chat update waited behind the figures
being drawn. With ``install(RunWorkers(n))``, ``run_tool`` sends each recorded run to one of ``n``
worker processes: runs use every core, the server process stays free for pages and transcripts,
and a run's memory is its own. Arguments, limits and the session's run slots are still checked in
the server first (a refusal costs no worker); progress comes back, Cancel reaches the worker at its
next progress report, and a worker that dies (out of memory, killed) is replaced and the run is
reported as lost, never half-saved.

Workers are forked from a fork server that has already imported the tools, so replacing one is
quick; ``DALAB_RUN_WORKERS`` sets how many there are (0: runs stay in the server process).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Callable

from tools.base import RunCancelled, ToolError, ToolResult, Workspace, clean_partials, fault_location

WATCH_S = 1.0
"""how often a worker checks that the server is still there"""
MAX_IN_FLIGHT = 4096
"""runs submitted and not yet finished, server-wide (each holds one cancel flag)"""

# ----------------------------------------------------------------------------- inside a worker

_PROGRESS: Any = None
_FLAGS: Any = None


def _init(progress: Any, flags: Any, torch_threads: int, server: int) -> None:
    global _PROGRESS, _FLAGS
    _PROGRESS, _FLAGS = progress, flags
    # each worker does one run at a time: torch (imported later, if a run needs it) uses its share
    os.environ["OMP_NUM_THREADS"] = str(torch_threads)
    threading.Thread(target=_watch, args=(server,), daemon=True, name="dalab-server-watch").start()


def _watch(server: int) -> None:
    """End this worker once the server process is gone, however it ended (a worker's parent is the
    fork server, which outlives a killed server while its workers do)."""
    while _alive(server):
        time.sleep(WATCH_S)
    os._exit(0)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (an exited one that its parent has not reaped yet does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except OSError:                # no /proc here: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:    # another user's process has the id now
            return False
        return True
    return state not in ("Z", "X")


class _Flag:
    """``is_set()`` of the server's cancel flag for one run (shared memory, no round trip)."""

    def __init__(self, token: int) -> None:
        self.token = token

    def is_set(self) -> bool:
        return bool(_FLAGS[self.token])


def _ready(hold: float) -> int:
    time.sleep(hold)          # long enough that each of the warm-up calls needs a worker of its own
    return os.getpid()


def _work(token: int, name: str, args: dict[str, Any] | None, root: str, confined: bool) -> ToolResult:
    from tools.registry import run_tool  # noqa: PLC0415

    def progress(fraction: float, message: str) -> None:
        _PROGRESS.put((token, fraction, message))

    # the server has taken the session's run slot: here the workspace has no limit of its own
    workspace = Workspace(Path(root), confined=confined)
    try:
        return run_tool(name, args, workspace=workspace, progress=progress, cancel=_Flag(token))
    except Exception as exc:
        exc.dalab_where = fault_location(exc)    # travels with the exception (its traceback does not)
        raise


# ----------------------------------------------------------------------------- in the server

class RunWorkers:
    """``n`` worker processes that run tools for the server (see the module's description)."""

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"the number of run workers must be a whole number ≥ 1, got {n!r}")
        self.n = n
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(["tools.registry"])
        self._progress = self._ctx.Queue()
        self._flags = self._ctx.RawArray("b", MAX_IN_FLIGHT)
        # oldest-freed first: a run's last progress reports, still on their way when its result came
        # back, can only reach a run thousands of runs later, by then long delivered and dropped
        self._free = deque(range(MAX_IN_FLIGHT))
        self._listeners: dict[int, Callable[[float, str], None]] = {}
        self._stops: dict[int, RunCancelled] = {}
        self._lock = threading.Lock()
        self._pool = self._new_pool()
        self._closed = False
        threading.Thread(target=self._relay, daemon=True, name="dalab-run-progress").start()

    def _new_pool(self) -> ProcessPoolExecutor:
        threads = max(1, workers_wanted(None) // self.n)
        return ProcessPoolExecutor(self.n, mp_context=self._ctx, initializer=_init,
                                   initargs=(self._progress, self._flags, threads, os.getpid()))

    def warm(self) -> list[int]:
        """Start every worker now (not at the first run); their process ids."""
        for hold in (0.2, 1.0, 3.0):          # a loaded machine starts the later ones late
            pids = [f.result() for f in [self._pool.submit(_ready, hold) for _ in range(self.n)]]
            if len(set(pids)) == self.n:
                break
        return sorted(set(pids))

    def _relay(self) -> None:
        while True:
            try:
                token, fraction, message = self._progress.get()
            except (EOFError, OSError, ValueError):   # closed at shutdown
                return
            listener = self._listeners.get(token)
            if listener is None:
                continue
            try:
                listener(fraction, message)
            except RunCancelled as exc:    # the session's way to stop a run from its progress report
                self._stops[token] = exc
                self._flags[token] = 1
            except Exception:  # noqa: BLE001 — a page that stopped listening loses nothing of the run
                pass

    def run(self, name: str, args: dict[str, Any] | None, workspace: Workspace,
            progress: Callable[[float, str], None] | None = None, cancel: Any = None) -> ToolResult:
        """Run tool ``name`` in a worker and return its result (or raise what the run raised)."""
        with self._lock:
            if self._closed:
                raise ToolError("the server is shutting down: no new runs")
            if not self._free:
                raise ToolError(f"the server has {MAX_IN_FLIGHT} runs waiting already: try again in a minute")
            token = self._free.popleft()
            self._flags[token] = 0
            if progress is not None:
                self._listeners[token] = progress
            pool = self._pool
        try:
            try:
                future = pool.submit(_work, token, name, args, str(workspace.root), workspace.confined)
            except (BrokenProcessPool, RuntimeError):
                future = self._replace(pool).submit(_work, token, name, args, str(workspace.root),
                                                    workspace.confined)
            while True:
                try:
                    return future.result(timeout=0.1)
                except RunCancelled:
                    stop = self._stops.get(token)
                    if stop is not None:
                        raise stop from None    # as the session's progress report put it
                    raise
                except FutureTimeout:
                    if cancel is not None and cancel.is_set():
                        self._flags[token] = 1
                except BrokenProcessPool:
                    self._replace(pool)
                    clean_partials(workspace.root)
                    raise ToolError(f"{name} was lost: the worker process running it stopped (out of memory or "
                                    "killed). Nothing of it was saved; try a smaller run.") from None
        finally:
            with self._lock:
                self._listeners.pop(token, None)
                self._stops.pop(token, None)
                self._free.append(token)

    def _replace(self, broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
        """A new pool in place of ``broken`` (once, however many runs noticed)."""
        with self._lock:
            if self._pool is broken and not self._closed:
                broken.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()
            return self._pool

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool = self._pool
        pool.shutdown(wait=False, cancel_futures=True)
        try:
            self._progress.close()
        except (OSError, ValueError):
            pass


def workers_wanted(setting: int | None) -> int:
    """How many run workers ``dalab ui`` starts: the setting, else one per core this process may use."""
    if setting is not None:
        return setting
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        return os.cpu_count() or 1

