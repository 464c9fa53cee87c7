"""Running many calls of one tool on Dask, with each finished call cached (used by ``run_sweep``).

The cluster is Dask's business: where Dask's configuration names a scheduler
(``DASK_SCHEDULER_ADDRESS``, or ``scheduler-address`` in a dask config file) the calls go there —
a ``dask scheduler`` with ``dask worker``s on several machines, dask-jobqueue on an HPC system,
dask-kubernetes — otherwise to a ``LocalCluster`` of single-threaded worker processes, one per core.

A call is shipped as the tool's function and argument model (pickled by reference, so the worker
imports only that tool's module) plus its arguments; it runs the science only (figures off, in a
scratch directory that is discarded) and returns the metrics.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.base import Progress, RunContext, ToolArgs, ToolError, ToolFn, Workspace, clean_metrics

CONNECT_TIMEOUT_S = 10.0
"""how long to try to reach a scheduler named by Dask's configuration before giving up (s)"""


@dataclass(frozen=True)
class Point:
    """One call of the tool: where it sits in the sweep, its full validated arguments, its cache key."""

    index: tuple[int, ...]
    args: dict[str, Any]
    key: str


def run_point(fn: ToolFn, model: type[ToolArgs], tool: str, args: dict[str, Any], home: str,
              confined: bool = False) -> dict[str, float | int | str]:
    """Run one call's science in a Dask worker and return its metrics (no figures, no record).

    Earlier products (a dataset, a trained model) are looked up in the workspace ``home``, which
    on a remote cluster must be on a file system the workers share.
    """
    parsed = model.model_validate(args)
    with tempfile.TemporaryDirectory(prefix=f"dalab-point-{tool}-") as scratch:
        ctx = RunContext(tool, parsed, Path(scratch), Workspace(Path(home), confined), figures_enabled=False)
        try:
            _, metrics = fn(parsed, ctx)
            return clean_metrics(metrics)
        except ToolError:
            raise
        except (ValueError, FloatingPointError) as exc:
            raise ToolError(f"{tool}: {exc}") from exc


@dataclass(frozen=True)
class PointCache:
    """Each call's outcome as ``<key>.json`` under ``root``, written whole or not at all."""

    root: Path

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads((self.root / f"{key}.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put(self, key: str, record: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.write_text(json.dumps(record, sort_keys=True))
        tmp.replace(self.root / f"{key}.json")

    def __len__(self) -> int:
        return len(list(self.root.glob("*.json"))) if self.root.is_dir() else 0


def local_workers(n_tasks: int) -> int:
    """One worker per core this process may use, no more than there are tasks."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, n_tasks))


@contextmanager
def dask_client(n_tasks: int) -> Iterator[tuple[Any, str]]:
    """A ``distributed.Client`` and what it is connected to: the scheduler address Dask's
    configuration names, or ``"local"`` for a new LocalCluster. Both are closed on exit.

    Raises ToolError within ``CONNECT_TIMEOUT_S`` when the configured scheduler cannot be reached.
    """
    import dask  # noqa: PLC0415
    from distributed import Client, LocalCluster  # noqa: PLC0415

    address = dask.config.get("scheduler-address", None)
    if address:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ToolError(f"cannot reach the Dask scheduler at {address!r} (named by DASK_SCHEDULER_ADDRESS or "
                            f"dask's 'scheduler-address' setting) within {CONNECT_TIMEOUT_S:g} s ({exc}); start it, "
                            "correct the address, or unset it to run on a local cluster") from None
        with client:
            yield client, str(address)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # port and dashboard notices are not the student's concern
        cluster = LocalCluster(n_workers=local_workers(n_tasks), threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=40)
    with cluster, Client(cluster, set_as_default=False) as client:
        yield client, "local"


@dataclass(frozen=True)
class Outcome:
    """Each call's record ({"metrics": ...} or {"error": ...}) by key, and how they were obtained."""

    results: dict[str, dict[str, Any]]
    n_computed: int
    n_cached: int
    scheduler: str
    """the scheduler's address, "local" for a LocalCluster, or "none" when everything was cached"""
    workers: int


def run_points(points: Iterable[Point], fn: ToolFn, model: type[ToolArgs], tool: str, cache: PointCache,
               home: Path, *, confined: bool = False, check: Callable[[dict[str, Any]], None] = lambda r: None,
               progress: Progress = lambda f, m: None, client: Any = None) -> Outcome:
    """Run the calls that are not cached, as Dask futures, consuming results as they complete.

    Every completed call is cached at once, so an interruption (Ctrl-C, an exception from
    ``check`` or ``progress``) loses only the calls in flight, which are cancelled. A worker lost
    mid-call does not lose it: Dask reschedules it on another worker. ``client``: an existing
    ``distributed.Client`` to use instead of the one Dask's configuration gives.
    """
    results: dict[str, dict[str, Any]] = {}
    todo: dict[str, Point] = {}
    for point in points:
        cached = cache.get(point.key)
        if cached is not None:
            results[point.key] = cached
            check(cached)
        else:
            todo.setdefault(point.key, point)
    n_cached, n = len(results), len(results) + len(todo)
    if not todo:
        progress(1.0, f"all {n} points from the cache")
        return Outcome(results, 0, n_cached, "none", 0)
    progress(n_cached / n, f"starting Dask for {len(todo)} points ({n_cached} cached)")
    with _client(client, len(todo)) as (client, scheduler):
        from distributed import as_completed  # noqa: PLC0415

        workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        futures = {client.submit(run_point, fn, model, tool, p.args, str(home), confined, pure=False,
                                 key=f"dalab-{tool}-{p.key[:12]}-{uuid.uuid4().hex[:8]}"): p for p in todo.values()}
        try:
            for done, future in enumerate(as_completed(futures, loop=client.loop), start=1):
                record = _record(tool, futures[future], future)
                if record.pop("cache", True):
                    cache.put(futures[future].key, record)
                results[futures[future].key] = record
                future.release()
                check(record)
                progress((n_cached + done) / n, f"{n_cached + done}/{n} points ({scheduler}, {workers} workers)")
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                client.cancel(pending)
    return Outcome(results, len(todo), n_cached, scheduler, workers)


@contextmanager
def _client(client: Any, n_tasks: int) -> Iterator[tuple[Any, str]]:
    if client is not None:
        yield client, "local" if client.cluster is not None else str(client.scheduler.address)
        return
    with dask_client(n_tasks) as pair:
        yield pair


def _record(tool: str, point: Point, future: Any) -> dict[str, Any]:
    """A finished future as a cache record. A ToolError (a setting the tool refuses) is the point's
    answer and is cached; any other failure (a worker lost too often, a bug) is not."""
    base = {"tool": tool, "args": point.args}
    if future.status == "finished":
        return base | {"metrics": future.result()}
    exc = future.exception()
    if isinstance(exc, ToolError):
        return base | {"error": str(exc)}
    return base | {"error": f"{type(exc).__name__}: {exc}", "cache": False}
