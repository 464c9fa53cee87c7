"""A class on one server: N simulated students at once (default 30, ``DALAB_BENCH_STUDENTS``),
each through its own gradio_client session on 127.0.0.1 only, fetching what a browser fetches (the
page config once, then the images each answer shows, over a kept-alive connection): a 3D-Var chat
turn, a Tools-tab form run and a Runs listing. The class starts on a warm server (the lecture index
built, the numerics imported), as a teacher's would be. Reports p50/p95 turn times, lost runs and whether every student saw
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
WARM_QUESTION = "what is the background error covariance B?"
GOAL_P95_S = 10.0


def _images(value) -> list[str]:
    """The server paths of the images in a chat history or a gallery (gradio_client's output with
    ``download_files=False``)."""
    found: list[str] = []

    def walk(x) -> None:
        if isinstance(x, dict):
            path = x.get("path")
            if isinstance(path, str) and path.endswith(".png"):
                found.append(path)
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)

    walk(value)
    return found


def _student(url: str, i: int) -> dict:
    """One student as a browser meets the server: the page's config, then each answer over one
    kept-alive connection, fetching the images it shows (files offered for download are fetched
    only when clicked, so not here)."""
    import httpx  # noqa: PLC0415
    from gradio_client import Client  # noqa: PLC0415
    from gradio_client.utils import encode_file_path  # noqa: PLC0415

    client = Client(url, verbose=False, download_files=False)
    sigma = round(0.1 + 0.01 * i, 2)
    with httpx.Client(cookies=client.cookies, timeout=120) as browser:
        def show(value) -> int:
            paths = _images(value)
            for path in paths:
                r = browser.get(client.src_prefixed + "file=" + encode_file_path(path))
                if r.status_code != 200 or not r.content.startswith(b"\x89PNG"):
                    raise RuntimeError(f"student {i} could not load the figure {path}: HTTP {r.status_code}")
            return len(paths)

        t0 = time.perf_counter()
        history, *_ = client.predict(f"run a 3D-Var cycle with seed {i} and observation error {sigma}",
                                     api_name="/chat")
        shown = show(history)
        turn = time.perf_counter() - t0
        t0 = time.perf_counter()
        status, gallery, *_ = client.predict(n_steps=60, seed=1000 + i, api_name="/run_3dvar_cycle")
        shown += show(gallery)
        form = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, table, _, details, gallery, *_ = client.predict(api_name="/runs")
        show(gallery)
        listing = time.perf_counter() - t0
    return {"i": i, "turn": turn, "form": form, "listing": listing, "form_ok": status.startswith("**Done:**"),
            "figures": shown, "runs": [r[0] for r in table["data"]], "tools": [r[1] for r in table["data"]]}


def _ask(url: str, question: str) -> None:
    """A concept question: the class starts on a warm server, as a teacher's server would be (the
    lecture index is built the first time a server runs in a home and kept)."""
    from gradio_client import Client  # noqa: PLC0415

    history, *_ = Client(url, verbose=False).predict(question, api_name="/chat")
    if "Sources" not in str(history):
        raise RuntimeError(f"the warm-up question came back without its sources: {str(history)[:200]}")


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` and the processes it started (the run workers)
    have used so far (Linux /proc)."""
    stats = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue                 # ended meanwhile
        stats[int(stat.parent.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    family, grew = {pid}, True
    while grew:
        more = {p for p, (parent, _) in stats.items() if parent in family} - family
        family |= more
        grew = bool(more)
    return sum(stats[p][1] for p in family if p in stats) / os.sysconf("SC_CLK_TCK")


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
            _turn(url, tmp)          # the first turn of a process imports the numerics
            _ask(url, WARM_QUESTION)  # and a question waits for the lecture index (built once per home)
            server_cpu0, client_cpu0 = _cpu(proc.pid), _own_cpu()
            t0 = time.perf_counter()
            with ThreadPoolExecutor(n) as pool:
                futures = [pool.submit(_student, url, i) for i in range(n)]
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
    figured = len(outs) == n and all(o["figures"] >= 2 for o in outs)
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
        Row("load", f"class of {n}: every student saw their figures", float(figured), "bool", "1", figured,
            "the chat turn's and the form run's figures, fetched as a browser does"),
        Row("load", f"class of {n}: whole class", wall, "s", f"< {DEADLINE_S} s", wall < DEADLINE_S,
            f"CPU: server {server_cpu:.0f} s ({server_cpu / (3 * n):.2f} s per request), the {n} simulated "
            f"clients {client_cpu:.0f} s, on the same {cores} cores"),
    ]


if __name__ == "__main__":
    from benchmarks import markdown_table

    print(markdown_table(rows()))
