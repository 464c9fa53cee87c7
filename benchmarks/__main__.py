"""Run the benchmarks and print one Markdown table: ``python -m benchmarks [AREA ...]``."""

from __future__ import annotations

import importlib
import sys
import traceback

from benchmarks import Row, markdown_table

# Listed by hand, in the order of the table. Each module has ``rows() -> list[Row]``.
MODULES = [
    "benchmarks.bench_atmosphere",
    "benchmarks.bench_da",
    "benchmarks.bench_da_methods",
    "benchmarks.bench_learning",
    "benchmarks.bench_emulator_da",
    "benchmarks.bench_retrieval",
    "benchmarks.bench_agent",
    "benchmarks.bench_tools",
    "benchmarks.bench_sweep",
    "benchmarks.bench_ui",
    "benchmarks.bench_load",
]


def main(argv: list[str]) -> int:
    wanted = [a for a in argv if not a.startswith("-")]
    rows: list[Row] = []
    failed = 0
    for name in MODULES:
        if wanted and not any(w in name for w in wanted):
            continue
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            rows.extend(importlib.import_module(name).rows())
        except Exception:  # a broken benchmark is reported, the others still run
            failed += 1
            traceback.print_exc()
    print(markdown_table(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
