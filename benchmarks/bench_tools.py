"""Wall time of each tool's default run, figures and run record included (issue goals)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks import Row

# (tool, arguments, goal in seconds); in the order a student meets them, so that the
# evaluation tools find the trained model.
RUNS = [
    ("run_3dvar_cycle", {}, 1.0),
    ("run_origen_oscillator", {}, 5.0),
    ("run_origen_lorenz63", {}, 5.0),
    ("simulate_atmosphere", {}, 5.0),
    ("generate_observations", {}, 15.0),
    ("train_obs2obs", {}, 90.0),
    ("predict_profile", {}, 5.0),
    ("reconstruct_field", {}, 5.0),
    ("train_lorenz63_emulator", {}, 90.0),
]


def rows() -> list[Row]:
    from tools.registry import run_tool

    out = []
    with tempfile.TemporaryDirectory() as home:
        run_tool("run_3dvar_cycle", workspace=Path(home) / "warm-up")  # imports, numba cache
        for name, args, goal in RUNS:
            t0 = time.perf_counter()
            run_tool(name, args, workspace=Path(home))
            dt = time.perf_counter() - t0
            out.append(Row("tools", f"{name} (defaults)", dt, "s", f"< {goal:g} s", dt < goal,
                           "in-process, figures and run record included"))
    return out
