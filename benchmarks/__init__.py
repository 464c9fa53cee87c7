"""dalab benchmarks: speed and skill figures, measured on this machine and printed as a table.

Each module listed in ``benchmarks.__main__.MODULES`` has a function ``rows() -> list[Row]``.
Benchmarks are measurements, not tests: nothing here is asserted, the goal column says whether
the figure meets its goal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    area: str          # e.g. "toyda.atmosphere"
    name: str          # what was measured
    value: float       # the measured figure
    unit: str          # its unit ("steps/s", "s", "RMSE", ...)
    goal: str = ""     # the goal in words, e.g. ">= 5000" or "< 1 s"
    ok: bool | None = None   # whether the goal is met (None: no goal)
    note: str = ""     # context: reference value, machine limit, settings


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time in seconds of ``repeat`` calls of ``fn`` (the least disturbed run)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def markdown_table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ["| area | benchmark | value | unit | goal | met | note |",
             "|---|---|---:|---|---|---|---|"]
    for r in rows:
        met = "" if r.ok is None else ("yes" if r.ok else "**no**")
        value = f"{r.value:.4g}" if abs(r.value) < 1e5 else f"{r.value:,.0f}"
        lines.append(f"| {r.area} | {r.name} | {value} | {r.unit} | {r.goal} | {met} | {r.note} |")
    return "\n".join(lines)
