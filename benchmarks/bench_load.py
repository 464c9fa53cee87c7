"""A class on one server: N simulated students at once (default 30, ``DALAB_BENCH_STUDENTS``),
each through its own gradio_client session on 127.0.0.1 only: a 3D-Var chat turn, a Tools-tab
form run and a Runs listing. Reports p50/p95 turn times, lost runs and whether every student saw
only their own runs (and their runs sit in one private session folder each).

Bounded: at most 60 students and ``DEADLINE_S`` seconds for the whole class; students who did not
finish in time count as failures.
"""

from __future__ import annotations

import os
import resource
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

from benchmarks import Row
from benchmarks.bench_ui import _start, _stop, _turn

DEADLINE_S = 600
GOAL_P95_S = 10.0


def _student(url: str, i: int, tmp: str) -> dict:
    from gradio_client import Client  # noqa: PLC0415

    client = Client(url, verbose=False, download_files=os.path.join(tmp, f"s{i}"))
    sigma = round(0.1 + 0.01 * i, 2)
    t0 = time.perf_counter()
    client.predict(f"run a 3D-Var cycle with seed {i} and observation error {sigma}", api_name="/chat")
    turn = time.perf_counter() - t0
    t0 = time.perf_counter()
    status, *_ = client.predict(n_steps=60, seed=1000 + i, api_name="/run_3dvar_cycle")
    form = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, table, _, details, *_ = client.predict(api_name="/runs")
    listing = time.perf_counter() - t0
    return {"i": i, "turn": turn, "form": form, "listing": listing, "form_ok": status.startswith("**Done:**"),
            "runs": [r[0] for r in table["data"]], "tools": [r[1] for r in table["data"]]}


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def rows() -> list[Row]:
    n = max(1, min(60, int(os.environ.get("DALAB_BENCH_STUDENTS", "30"))))
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as tmp:
        proc, url, _ = _start(home)
        try:
            _turn(url, tmp)          # the first turn of a process imports the numerics (and waits for the index)
            server_cpu0, client_cpu0 = _cpu(proc.pid), _own_cpu()
            t0 = time.perf_counter()
            with ThreadPoolExecutor(n) as pool:
                futures = [pool.submit(_student, url, i, tmp) for i in range(n)]
                done, _late = wait(futures, timeout=DEADLINE_S)
            wall = time.perf_counter() - t0
            server_cpu, client_cpu = _cpu(proc.pid) - server_cpu0, _own_cpu() - client_cpu0
            outs = [f.result() for f in done if f.exception() is None]
            errors = [repr(f.exception())[:120] for f in done if f.exception() is not None]
        finally:
            _stop(proc)
        sessions = Path(home) / "sessions"
        finished = {p.name: p.parent.parent for p in sessions.glob("*/runs/*") if (p / "result.json").is_file()}
    expected = 2 * n
    seen = [r for o in outs for r in o["runs"]]
    lost = expected - sum(1 for r in seen if r in finished)
    isolated = all(len(o["runs"]) == 2 and sorted(o["tools"]) == ["run_3dvar_cycle"] * 2
                   and len({finished.get(r) for r in o["runs"]}) == 1 for o in outs) \
        and len({finished.get(o["runs"][0]) for o in outs if o["runs"]}) == len(outs) and len(outs) == n
    turns = [o["turn"] for o in outs] or [float("nan")]
    forms = [o["form"] for o in outs] or [float("nan")]
    cores = os.cpu_count()
    note = f"{n} students, {cores} cores shared with other work; {len(outs)} finished" + (
        f"; failures: {errors[:2]}" if errors else "")
    p95 = _pct(turns, 0.95)
    return [
        Row("load", f"class of {n}: 3D-Var chat turn p50", statistics.median(turns), "s", "", None, note),
        Row("load", f"class of {n}: 3D-Var chat turn p95", p95, "s", f"< {GOAL_P95_S:g} s", p95 < GOAL_P95_S,
            f"slowest {max(turns):.1f} s"),
        Row("load", f"class of {n}: form run p50 / p95", statistics.median(forms), "s", "", None,
            f"p95 {_pct(forms, 0.95):.1f} s; {sum(o['form_ok'] for o in outs)} of {n} done"),
        Row("load", f"class of {n}: lost runs", lost + 2 * (n - len(outs)), "runs", "0", lost == 0 and len(outs) == n,
            f"{len(finished)} finished runs on disk for {expected} asked"),
        Row("load", f"class of {n}: each sees only their own runs", float(isolated), "bool", "1", isolated,
            "2 runs per listing, one private session folder per student"),
        Row("load", f"class of {n}: whole class", wall, "s", f"< {DEADLINE_S} s", wall < DEADLINE_S,
            f"CPU: server {server_cpu:.0f} s ({server_cpu / (3 * n):.2f} s per request), the {n} simulated "
            f"clients {client_cpu:.0f} s, on the same {cores} cores"),
    ]


if __name__ == "__main__":
    from benchmarks import markdown_table

    print(markdown_table(rows()))
