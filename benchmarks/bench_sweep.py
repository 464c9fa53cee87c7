"""Parameter sweeps on Dask: a 24-point Lorenz-63 sweep, serial vs a LocalCluster of 2 workers.

``python -m benchmarks sweep`` prints the serial and parallel wall times (best of 2, warm workers),
the speed-up, what Dask adds per point (a one-worker cluster against the serial loop), and the
time to start a cluster (paid once per sweep when no cluster is configured; not at all on an
existing cluster named by DASK_SCHEDULER_ADDRESS). The machine is shared, so the speed-up is also
given against the CPU capacity measured at the same time. Last, the chat question of issue 16
answered by the offline model, start to end.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks import Row

TOOL = "run_origen_lorenz63"
GRID = {"sigma_o": [0.5, 1.0, 2.0, 4.0], "covariance_update": [False, True]}
SEEDS = 3                                   # 4 × 2 × 3 = 24 points
WORKERS = 2
REPEAT = 2
SPEED_UP_GOAL, OVERHEAD_GOAL_MS = 1.7, 50.0
CHAT_QUESTION = "how does the EnKF error depend on ensemble size and inflation?"
CHAT_GOAL_S = 60.0


def _burn(n: int = 4_000_000) -> float:
    """Pure-Python CPU work; returns its own wall time (s)."""
    t0 = time.perf_counter()
    s = 0
    for i in range(n):
        s += i
    return time.perf_counter() - t0


def capacity(workers: int = WORKERS) -> float:
    """How many cores this machine gives us right now: the throughput of ``workers`` processes
    burning CPU at once relative to one (2.0 on an idle 2-core machine; less when it is shared)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_burn, [200_000] * workers))                    # processes started
        one = min(pool.submit(_burn).result() for _ in range(2))
        t0 = time.perf_counter()
        list(pool.map(_burn, [4_000_000] * (2 * workers)))
        together = time.perf_counter() - t0
    return 2 * workers * one / together


def _sweep_on(n_workers: int, plan, spec, home: str) -> tuple[float, float, dict]:
    """(cluster start + worker imports, best wall time of the sweep, its results) on a new LocalCluster."""
    from distributed import Client, LocalCluster

    from tools.cluster import PointCache, run_point, run_points

    t0 = time.perf_counter()
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster, set_as_default=False) as client:
        client.run(run_point, spec.fn, spec.args, TOOL, plan.points[0].args, home)   # imports in every worker
        start = time.perf_counter() - t0
        best, results = float("inf"), {}
        for k in range(REPEAT):
            t0 = time.perf_counter()
            out = run_points(plan.points, spec.fn, spec.args, TOOL, PointCache(Path(home) / f"cache-{n_workers}-{k}"),
                             Path(home), client=client)
            best, results = min(best, time.perf_counter() - t0), out.results
    return start, best, results


def rows() -> list[Row]:
    from tools.cluster import run_point
    from tools.registry import TOOLS, validate_args
    from tools.sweep import SweepArgs, plan_sweep

    spec = TOOLS[TOOL]
    plan = plan_sweep(SweepArgs(tool=TOOL, grid=GRID, seeds=SEEDS), TOOLS, lambda t, a: validate_args(TOOLS[t], a))
    n = len(plan.points)
    with tempfile.TemporaryDirectory() as home:
        run_point(spec.fn, spec.args, TOOL, plan.points[0].args, home)           # imports, numba cache
        t_serial = float("inf")
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            serial = [run_point(spec.fn, spec.args, TOOL, p.args, home) for p in plan.points]
            t_serial = min(t_serial, time.perf_counter() - t0)
        cap_before = capacity()
        _, t_one, _ = _sweep_on(1, plan, spec, home)
        t_start, t_parallel, results = _sweep_on(WORKERS, plan, spec, home)
        cap = (cap_before + capacity()) / 2
    same = all(results[p.key]["metrics"] == m for p, m in zip(plan.points, serial))
    speed_up = t_serial / t_parallel
    overhead = max(0.0, (t_one - t_serial) / n)
    setup = f"{TOOL}, {' × '.join(str(len(v)) for v in GRID.values())} × {SEEDS} seeds"
    return [
        Row("sweep", f"{n}-point L63 sweep, serial in-process", t_serial, "s",
            note=f"{setup}; {t_serial / n * 1e3:.0f} ms/point; best of {REPEAT}"),
        Row("sweep", f"{n}-point L63 sweep, LocalCluster {WORKERS} workers", t_parallel, "s",
            note=f"warm workers, best of {REPEAT}; numbers identical to serial: {same}"),
        Row("sweep", f"speed-up with {WORKERS} workers", speed_up, "×", f">= {SPEED_UP_GOAL}",
            speed_up >= SPEED_UP_GOAL, "serial / parallel"),
        Row("sweep", f"CPU capacity now ({WORKERS} busy processes vs 1)", cap, "×",
            note=f"the best speed-up the shared machine allowed meanwhile ({WORKERS} if idle)"),
        Row("sweep", "speed-up / capacity", speed_up / cap, "", ">= 0.85", speed_up / cap >= 0.85,
            "how much of the available parallelism the sweep used"),
        Row("sweep", "Dask overhead per point", 1e3 * overhead, "ms", f"< {OVERHEAD_GOAL_MS:g} ms",
            overhead * 1e3 < OVERHEAD_GOAL_MS, f"(1-worker LocalCluster − serial) / {n}, {t_one:.2f} s vs "
                                               f"{t_serial:.2f} s"),
        Row("sweep", f"LocalCluster start ({WORKERS} workers) + worker imports", t_start, "s",
            note="once per sweep; none on an existing cluster"),
        Row("sweep", "speed-up including cluster start", t_serial / (t_parallel + t_start), "×",
            note=f"one {n}-point sweep from a cold start"),
        chat_row(),
    ]


def chat_row() -> Row:
    """The chat question of issue 16 through the offline model: routing, a cold LocalCluster, the sweep
    and the answer."""
    import dask

    from assistant.agent import Session
    from assistant.offline import OfflineChatModel

    with tempfile.TemporaryDirectory() as home, dask.config.set({"scheduler-address": None}):
        t0 = time.perf_counter()
        a = Session(OfflineChatModel(), workspace=Path(home)).ask(CHAT_QUESTION)
        wall = time.perf_counter() - t0
    points = a.results[0].metrics.get("n_points", 0) if a.results else 0
    return Row("sweep", f"chat: \"{CHAT_QUESTION}\"", wall, "s", f"< {CHAT_GOAL_S:g} s",
               wall < CHAT_GOAL_S and bool(a.figures), f"offline model, {points} points, cold LocalCluster; "
                                                       f"figures: {', '.join(p.name for p in a.figures) or 'none'}")
