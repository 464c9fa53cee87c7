"""The agent: overhead per turn apart from tool and model time, offline routing speed and accuracy."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from benchmarks import Row

EVAL = Path(__file__).resolve().parents[1] / "tests" / "assistant" / "routing_eval.json"
TURNS = ["run a 3D-Var cycle with observation error 0.2", "now with the covariance update",
         "again with 50 steps", "same but sigma_o 0.5"]


def _overhead(repeat: int = 3) -> tuple[float, float]:
    """(best agent overhead per turn in s, mean turn wall time in s), offline model, real tool."""
    from assistant.agent import Session  # noqa: PLC0415
    from assistant.offline import OfflineChatModel  # noqa: PLC0415

    spent = {"t": 0.0}

    class TimedOffline(OfflineChatModel):
        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            t0 = time.perf_counter()
            try:
                return super()._generate(messages, stop, run_manager, **kwargs)
            finally:
                spent["t"] += time.perf_counter() - t0

    best, walls = float("inf"), []
    with tempfile.TemporaryDirectory() as home:
        session = Session(TimedOffline(), workspace=Path(home))
        for tool in session.tools:
            inner = tool.func

            def timed(*a, _inner=inner, **kw):
                t0 = time.perf_counter()
                try:
                    return _inner(*a, **kw)
                finally:
                    spent["t"] += time.perf_counter() - t0

            tool.func = timed
        session.ask(TURNS[0])   # warm-up (imports, first figure)
        for _ in range(repeat):
            session.reset()
            for q in TURNS:
                spent["t"] = 0.0
                t0 = time.perf_counter()
                session.ask(q)
                wall = time.perf_counter() - t0
                walls.append(wall)
                best = min(best, wall - spent["t"])
    return best, sum(walls) / len(walls)


def rows() -> list[Row]:
    from assistant.offline import evaluate_routing, route  # noqa: PLC0415

    cases = json.loads(EVAL.read_text())["cases"]
    requests = [t["request"] for c in cases for t in c["turns"]]
    route(requests[0])
    t0 = time.perf_counter()
    for _ in range(5):
        for q in requests:
            route(q, ("run_3dvar_cycle", {"sigma_o": 0.2}))
    per_request = (time.perf_counter() - t0) / (5 * len(requests))
    accuracy, n, _ = evaluate_routing(cases)
    held = json.loads(EVAL.with_name("routing_heldout.json").read_text())["cases"]
    held_accuracy, held_n, _ = evaluate_routing(held)
    overhead, wall = _overhead()
    return [
        Row("assistant.agent", "agent overhead per turn (no tool, no model time)", 1000 * overhead, "ms",
            "< 100 ms", overhead < 0.100, f"offline model, run_3dvar_cycle turns; mean turn wall {1000 * wall:.0f} ms"),
        Row("assistant.offline", "routing time per request", 1000 * per_request, "ms", "< 20 ms",
            per_request < 0.020, f"mean over {len(requests)} evaluation requests"),
        Row("assistant.offline", "routing accuracy (tools and arguments)", accuracy, "fraction", ">= 0.95",
            accuracy >= 0.95, f"{n} requests in tests/assistant/routing_eval.json (written by the developers)"),
        Row("assistant.offline", "routing accuracy, held-out phrasings", held_accuracy, "fraction", ">= 0.9",
            held_accuracy >= 0.9, f"{held_n} requests in tests/assistant/routing_heldout.json (not tuned on)"),
    ]
