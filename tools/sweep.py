"""Parameter sweeps on Dask: any experiment tool over a grid of settings × seeds.

``run_sweep`` validates every point against the target tool's argument model before anything
runs, then runs the points as futures on ``dask.distributed``: on a ``LocalCluster`` of worker
processes sized to the machine, or, where Dask's own configuration names a scheduler
(``DASK_SCHEDULER_ADDRESS``, or ``scheduler-address`` in a dask config file), on that cluster — a
``dask scheduler`` with ``dask worker``s, dask-jobqueue, dask-kubernetes — with no change here.

Each point runs only the science (the tool's function, figures off, in a scratch directory that
is discarded) and returns its metrics. Results are consumed as they complete and cached in the
workspace under a hash of the point's arguments, so a sweep that was interrupted (Ctrl-C, a lost
worker) or is run again computes only what is missing. The whole sweep is one run: an xarray
Dataset (one dimension per swept argument plus ``seed``) saved as NetCDF, line or heat-map figures
and the run record.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
from pydantic import field_validator

from tools import sweepplots
from tools.base import Example, RunContext, ToolArgs, ToolError, ToolSpec, Workspace, arg
from tools.cluster import Outcome, Point, PointCache, local_workers, run_points
from tools.sweepquestions import sweep_from_question, sweepable

MAX_POINTS = 10_000
CACHE_VERSION = 1
"""part of every point's cache key: raise it when a change to the science makes old results stale"""
MAIN_METRICS = ("rmse_a", "rmse_analysis", "rmse_final", "val_loss")
"""the tool's main metric, for "best": the first of these it reports (else its first numeric one)"""
HIGHER_IS_BETTER = re.compile(r"skill|accuracy|corr|\br2\b|score|coverage|likelihood")
NC_NAME = "sweep.nc"

Scalar = bool | int | float | str


class SweepArgs(ToolArgs):
    tool: str = arg(..., phrases=["experiment", "tool to sweep"],
                    description="the experiment tool run at every point, e.g. run_da_experiment, run_3dvar_cycle, "
                                "run_origen_oscillator, train_obs2obs")
    grid: dict[str, list[Scalar]] = arg(
        ..., phrases=["grid", "sweep over", "values of"],
        description='argument name -> list of values to try, e.g. {"n_members": [5, 10, 20], "inflation": [1.0, 1.05]} '
                    "(every combination is run; JSON text is accepted)")
    fixed: dict[str, Any] = arg({}, description='the tool\'s other arguments, the same at every point, e.g. '
                                               '{"method": "enkf"} (JSON text is accepted)')
    seeds: int = arg(1, ge=1, le=1000, phrases=["repetitions", "seeds", "repeats"],
                     description="repetitions of each setting: the tool's seed runs 0 … seeds−1 "
                                 "(offset by a seed given in fixed)")
    metric: str | None = arg(None, description="the metric that decides the best setting (default: the first of "
                                               "rmse_a, rmse_analysis, rmse_final, val_loss the tool reports)")

    @field_validator("grid", "fixed", mode="before")
    @classmethod
    def _json_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f'not JSON ({exc.msg}); write a mapping such as {{"sigma_o": [0.5, 1, 2]}}') from None
        return value


# ----------------------------------------------------------------------------- the plan

@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: the grid's coordinates (as the tool's model reads them) and every point."""

    tool: str
    names: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]
    seeds: tuple[int, ...]
    points: tuple[Point, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.values) + (len(self.seeds),)


def point_key(tool: str, args: Mapping[str, Any]) -> str:
    """A stable hash of one call: the same tool with the same arguments (defaults filled in)."""
    text = json.dumps({"v": CACHE_VERSION, "tool": tool, "args": args}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def describe(names: tuple[str, ...], values: tuple[Any, ...]) -> str:
    """``"n_members=20, inflation=1.05"``"""
    return ", ".join(f"{n}={v!r}" if isinstance(v, str) else f"{n}={v:g}" if isinstance(v, float) else f"{n}={v}"
                     for n, v in zip(names, values))


def plan_sweep(args: SweepArgs, specs: Mapping[str, ToolSpec],
               validate: Callable[[str, dict[str, Any] | None], ToolArgs]) -> SweepPlan:
    """Check the sweep against the target tool's argument model and list every point.

    ``specs`` and ``validate(tool, args)`` are the registry's tools and argument check, as a
    :class:`RunContext` gives them (``ctx.tools``, ``ctx.validate``).

    Raises ``ToolError`` (before anything runs) for an unknown tool or argument, an empty grid,
    too many points, or a value the tool refuses (naming the point).
    """
    if args.tool not in specs:
        raise ToolError(f"unknown tool {args.tool!r} to sweep; the experiment tools are: "
                        f"{', '.join(n for n, s in specs.items() if sweepable(s))}")
    spec = specs[args.tool]
    if not sweepable(spec):
        raise ToolError(f"{args.tool} is not an experiment tool and cannot be swept; the experiment tools are: "
                        f"{', '.join(n for n, s in specs.items() if sweepable(s))}")
    fields = spec.args.model_fields
    if not args.grid:
        example = next(iter(n for n in fields if n != "seed"), "seed")
        raise ToolError(f"the grid is empty: give at least one argument of {args.tool} with a list of values, "
                        f'e.g. grid={{"{example}": [...]}}; {args.tool} takes: {", ".join(fields)}')
    for name in list(args.grid) + list(args.fixed):
        if name not in fields:
            raise ToolError(f"unknown argument {name!r} for {args.tool}; it takes: {', '.join(fields)}")
    for name, values in args.grid.items():
        if not values:
            raise ToolError(f"grid argument {name!r} has no values: give a list of at least one value")
        if name in args.fixed:
            raise ToolError(f"{name!r} is both swept (grid) and fixed: keep it in one of them")
    if "seed" in args.grid:
        raise ToolError("'seed' cannot be swept in the grid: use seeds=N for N repetitions "
                        "(and fixed={\"seed\": K} to start at seed K)")
    has_seed = "seed" in fields
    if not has_seed and args.seeds > 1:
        raise ToolError(f"{args.tool} has no seed argument, so repetitions would be identical: use seeds=1")
    n_points = math.prod(len(v) for v in args.grid.values()) * args.seeds
    if n_points > MAX_POINTS:
        sizes = " × ".join(f"{len(v)} {n}" for n, v in args.grid.items())
        raise ToolError(f"this sweep asks for {n_points:,} points ({sizes} × {_count(args.seeds, 'seed')}); at most "
                        f"{MAX_POINTS:,} are allowed: use fewer values or seeds")
    first_seed = args.fixed.get("seed", 0) if has_seed else 0
    if not isinstance(first_seed, int) or isinstance(first_seed, bool) or first_seed < 0:
        raise ToolError(f"fixed seed {first_seed!r} is not allowed: the first seed must be an integer >= 0")
    seeds = tuple(range(first_seed, first_seed + args.seeds))
    names = tuple(args.grid)
    grids = [list(enumerate(args.grid[n])) for n in names]
    coords: list[dict[int, Any]] = [{} for _ in names]
    points = []
    for combo in product(*grids):
        setting = {n: v for n, (_, v) in zip(names, combo)}
        for s, seed in enumerate(seeds):
            call = {**args.fixed, **setting, **({"seed": seed} if has_seed else {})}
            try:
                parsed = validate(args.tool, call)
            except ToolError as exc:
                where = describe(names, tuple(setting.values())) + (f" (seed {seed})" if has_seed else "")
                raise ToolError(f"the point {where} is refused by {args.tool}: {exc}") from None
            for d, (i, _) in enumerate(combo):
                coords[d].setdefault(i, getattr(parsed, names[d]))
            full = parsed.model_dump(mode="json")
            points.append(Point(tuple(i for i, _ in combo) + (s,), full, point_key(args.tool, full)))
    values = tuple(tuple(c[i] for i in range(len(c))) for c in coords)
    for name, vals in zip(names, values):
        if len(set(map(repr, vals))) < len(vals):
            raise ToolError(f"grid argument {name!r} repeats a value as {args.tool} reads it ({list(vals)}): "
                            "give each value once")
    return SweepPlan(args.tool, names, values, seeds, tuple(points))


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


# ----------------------------------------------------------------------------- the dataset and the best setting

def to_dataset(plan: SweepPlan, outcome: Outcome, fixed: Mapping[str, Any]):
    """An ``xarray.Dataset``: one dimension per swept argument plus ``seed``; one float variable per
    numeric metric (NaN where a point failed) and ``failed`` (1 where it did)."""
    import xarray as xr  # noqa: PLC0415

    dims = plan.names + ("seed",)
    metrics: dict[str, np.ndarray] = {}
    failed = np.zeros(plan.shape, dtype=np.int8)
    errors: list[str] = []
    for point in plan.points:
        record = outcome.results[point.key]
        if "metrics" not in record:
            failed[point.index] = 1
            where = describe(plan.names, _values(plan, point.index[:-1]))
            errors.append(f"{where} (seed {plan.seeds[point.index[-1]]}): {record.get('error', 'failed')}")
            continue
        for name, value in record["metrics"].items():
            if _is_number(value):
                metrics.setdefault(name, np.full(plan.shape, np.nan))[point.index] = float(value)
    coords = {n: list(v) for n, v in zip(plan.names, plan.values)} | {"seed": list(plan.seeds)}
    ds = xr.Dataset({name: (dims, arr) for name, arr in metrics.items()} | {"failed": (dims, failed)}, coords=coords)
    ds["failed"].attrs["long_name"] = "1 where the point failed (its metrics are NaN)"
    ds.attrs.update({"title": f"dalab parameter sweep of {plan.tool}", "tool": plan.tool,
                     "fixed": json.dumps(dict(fixed), sort_keys=True), "errors": json.dumps(errors[:50])})
    return ds


def cache_for(workspace: Workspace, tool: str) -> PointCache:
    """Where a workspace keeps the finished points of its sweeps (across runs, so that a repeated
    or interrupted sweep computes only what is missing)."""
    return PointCache(workspace.root / "sweep-cache" / tool)


def check_metric(metric: str | None, record: dict[str, Any], tool: str) -> None:
    """Refuse a requested metric as soon as a point shows the tool does not report it."""
    if metric is None or "metrics" not in record:
        return
    numeric = [k for k, v in record["metrics"].items() if _is_number(v)]
    if metric not in numeric:
        raise ToolError(f"metric {metric!r} is not reported by {tool}; its numeric metrics are: {', '.join(numeric)}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def main_metric(ds, requested: str | None) -> str:
    """The metric that decides the best setting: the requested one, else the tool's main one."""
    names = [v for v in ds.data_vars if v != "failed"]
    if requested:
        return requested
    return next((m for m in MAIN_METRICS if m in names), names[0])


def lower_is_better(metric: str) -> bool:
    return not HIGHER_IS_BETTER.search(metric)


def seed_stats(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over the last axis (seeds), ignoring failed points."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # all seeds failed: NaN, said in the summary
        return np.nanmean(values, axis=-1), np.nanstd(values, axis=-1)


def best_index(mean: np.ndarray, metric: str, worst: bool = False) -> tuple[int, ...] | None:
    """Where the seed-mean of ``metric`` is best (lowest, or highest for skill-like metrics), or
    worst; None when no setting has a value."""
    if not np.isfinite(mean).any():
        return None
    flat = np.nanargmin(mean) if lower_is_better(metric) != worst else np.nanargmax(mean)
    return tuple(int(i) for i in np.unravel_index(flat, mean.shape))


def related_metrics(names: list[str], main: str, limit: int = 4) -> list[str]:
    """The main metric and others of its family, drawn on the same axis (rmse_a with rmse_f and
    spread_a; val_loss with train_loss)."""
    family = main.split("_")[0]
    kin = {"rmse": ("rmse", "spread", "crps"), "loss": ("loss",)}.get(family, (family,))
    others = [n for n in names if n != main and any(k in n for k in kin) and "over" not in n]
    return [main] + others[:limit - 1]


def sweep_figure(ds, plan: SweepPlan, spec: ToolSpec, metric: str, best: tuple[int, ...], mean: np.ndarray,
                 std: np.ndarray, fixed: Mapping[str, Any] | None = None):
    """The sweep's figure and its name: lines over one argument, a heat map over two, small
    multiples of heat maps over a third (further arguments held at the best setting)."""
    fields = spec.args.model_fields
    labels = [sweepplots.arg_label(n, fields[n].description or "") for n in plan.names]
    n_seeds = len(plan.seeds)
    title = f"{_with_fixed(plan.tool, fixed or {})} swept over {' × '.join(plan.names)}" + (
        "" if len(plan.names) < 2 else f"\nbest setting: {describe(plan.names, _values(plan, best))}")
    if len(plan.names) == 1:
        names = [str(v) for v in ds.data_vars if v != "failed"]
        curves = {m: seed_stats(ds[m].values) for m in related_metrics(names, metric)}
        return sweepplots.sweep_lines(plan.values[0], labels[0], curves, metric, best[0], n_seeds, title), "sweep_lines"
    held = best[3:]
    cube_mean = mean[(slice(None),) * min(3, mean.ndim) + held]
    cube_std = std[(slice(None),) * min(3, std.ndim) + held]
    if len(plan.names) == 2:
        cube_mean, cube_std, panels, panel_label = cube_mean[None], cube_std[None], (None,), ""
    else:
        cube_mean, cube_std = np.moveaxis(cube_mean, 2, 0), np.moveaxis(cube_std, 2, 0)
        panels, panel_label = plan.values[2], labels[2]
        if len(plan.names) > 3:
            title += f"; {describe(plan.names[3:], _values(plan, best)[3:])} in every panel"
    at = (best[2] if len(plan.names) > 2 else 0, best[0], best[1])
    return sweepplots.sweep_heatmap(plan.values[0], labels[0], plan.values[1], labels[1], cube_mean, cube_std,
                                    metric, lower_is_better(metric), at, n_seeds, title, panels,
                                    panel_label), "sweep_heatmap"


def _with_fixed(tool: str, fixed: Mapping[str, Any]) -> str:
    """``"run_da_experiment (method='enkf')"``: the tool and the settings every point shares."""
    return f"{tool} ({describe(tuple(fixed), tuple(fixed.values()))})" if fixed else tool


def _values(plan: SweepPlan, index: tuple[int, ...]) -> tuple[Any, ...]:
    return tuple(plan.values[d][i] for d, i in enumerate(index))


# ----------------------------------------------------------------------------- the tool

def run_sweep(args: SweepArgs, ctx: RunContext) -> tuple[str, dict[str, Any]]:
    """Run an experiment tool over a grid of settings × seeds on Dask, and find the best setting.

    Use it for sensitivity questions: "how does the EnKF error depend on ensemble size and
    inflation?" (tool=run_da_experiment, grid={"n_members": [5, 10, 20], "inflation": [1.0, 1.2,
    1.4]}, fixed={"method": "enkf"}), "where does 3D-Var beat ETKF as σ_o grows?",
    "how many epochs does obs2obs need?". Every point is checked against the tool's arguments
    before anything runs; points run in parallel on a local Dask cluster, or on the cluster that
    DASK_SCHEDULER_ADDRESS names. Finished points are cached, so a repeated or interrupted sweep
    only computes what is missing. Returns the best setting with mean ± std over seeds, a NetCDF
    dataset (one dimension per swept argument plus seed) and a line plot (one argument) or heat
    map (two or more).
    """
    if ctx.validate is None:      # run_tool always gives it; a hand-made context may not
        raise ToolError("run_sweep needs the registry's tools: call it through tools.registry.run_tool")
    t0 = time.perf_counter()
    plan = plan_sweep(args, ctx.tools, ctx.validate)
    spec = ctx.tools[plan.tool]
    outcome = run_points(plan.points, spec.fn, spec.args, plan.tool, cache_for(ctx.workspace, plan.tool),
                         ctx.workspace.root, confined=ctx.workspace.confined,
                         check=lambda record: check_metric(args.metric, record, plan.tool), progress=ctx.progress)
    wall = time.perf_counter() - t0
    ds = to_dataset(plan, outcome, args.fixed)
    n_points, n_failed = len(plan.points), int(ds["failed"].sum())
    if n_failed == n_points:
        first = json.loads(ds.attrs["errors"])[0]
        raise ToolError(f"all {n_points} points of the sweep failed; the first: {first}")
    metric = main_metric(ds, args.metric)
    mean, std = seed_stats(ds[metric].values)
    best = best_index(mean, metric)
    if best is None:
        raise ToolError(f"{metric} was not reported by any point; choose another metric")
    setting = describe(plan.names, _values(plan, best))
    worst = best_index(mean, metric, worst=True)
    worst_setting = describe(plan.names, _values(plan, worst))
    ds.attrs.update({"main_metric": metric, "best": setting, "scheduler": outcome.scheduler})
    ds.to_netcdf(ctx.file(NC_NAME), engine="scipy")
    ctx.progress(1.0, "drawing figures")
    ctx.save_figure(*sweep_figure(ds, plan, spec, metric, best, mean, std, args.fixed))
    spread = f" ± {std[best]:.3g}" if len(plan.seeds) > 1 else ""
    word = "lowest" if lower_is_better(metric) else "highest"
    where = {"local": f"a local Dask cluster of {outcome.workers} workers", "none": "no cluster (all from the cache)"
             }.get(outcome.scheduler, f"the Dask scheduler {outcome.scheduler}")
    sizes = " × ".join(f"{len(v)} {n}" for n, v in zip(plan.names, plan.values))
    first_error = json.loads(ds.attrs["errors"])[:1]
    failed = f" {n_failed} of {n_points} points failed (NaN in the dataset), e.g. {first_error[0]}." if n_failed else ""
    summary = (
        f"Swept {_with_fixed(plan.tool, args.fixed)} over {sizes} × {_count(len(plan.seeds), 'seed')} = {n_points} points on {where} "
        f"({outcome.n_computed} computed, {outcome.n_cached} from the cache) in {wall:.1f} s. Best ({word} mean "
        f"{metric} over seeds): {setting} with {metric} = {mean[best]:.3g}{spread}; worst: {worst_setting} "
        f"with {mean[worst]:.3g}.{failed}"
    )
    metrics = {"n_points": n_points, "n_failed": n_failed, "n_computed": outcome.n_computed,
               "n_cached": outcome.n_cached, "wall_s": wall, "scheduler": outcome.scheduler,
               "workers": outcome.workers, "metric": metric, "best": setting,
               f"best_{metric}": float(mean[best]), f"best_{metric}_std": float(std[best]),
               f"worst_{metric}": float(mean[worst])}
    return summary, metrics


_PERFORMANCE = r"(?:error|errors|rmse|skill|accuracy|loss|spread|crps|performance|score)"

DASK_START_S = 10.0
"""starting a local Dask cluster and shipping the tool to its workers"""
WORKER_BYTES = 256 * 2**20
"""one Dask worker process with the numerics imported"""


def sweep_cost(args: SweepArgs, specs: Mapping[str, ToolSpec],
               validate: Callable[[str, dict[str, Any] | None], ToolArgs]) -> tuple[float, float]:
    """Estimated (bytes, seconds) of a sweep (``ToolSpec.cost`` with the registry): every point's own
    estimate, the points shared among the local workers (one per core), each worker holding one
    point at a time. Cached points are counted too (an upper bound). A point the tool's estimate
    refuses outright (a DA twin too long) refuses the sweep, naming the point."""
    plan = plan_sweep(args, specs, validate)
    cost = specs[plan.tool].cost
    if cost is None:
        return WORKER_BYTES, DASK_START_S
    memory, seconds = 0.0, 0.0
    for point in plan.points:
        try:
            m, s = cost(validate(plan.tool, point.args))
        except ToolError as exc:
            raise ToolError(f"the sweep's point {describe(plan.names, _values(plan, point.index[:-1]))}: {exc}") from None
        memory, seconds = max(memory, m), seconds + s
    workers = local_workers(len(plan.points))
    return workers * (WORKER_BYTES + memory), DASK_START_S + seconds / workers


TOOLS = (
    ToolSpec(
        "run_sweep", run_sweep, SweepArgs, cost=sweep_cost,
        keywords=((8, r"\bsweep|parameter (?:scan|study|grid)|grid search|sensitivity (?:study|analysis|to|of)"
                      r"|how sensitive|as a function of|for (?:a range of|several|various|different) (?:values|settings)"
                      rf"|\b{_PERFORMANCE}\b.{{0,60}}\b(?:depends?|depending|var(?:y|ies)|changes?|scales?) (?:on|with)"
                      r"(?! (?:the )?(?:time|lead time|forecast time)\b)"   # "how the error grows with time": one run
                      r"|which (?:value|setting|combination)s? .{0,60}\bbest\b"),),
        topic="ensemble size inflation observation error sensitivity",
        figures=("sweep_lines", "sweep_heatmap"),
        questions=(r"how (?:does|do|is|are|will|would) .*\b(?:depends?|var(?:y|ies)|changes?|scales?) (?:on|with)",
                   r"sensitiv", r"\bsweep", r"as a function of", r"which (?:value|setting|combination)s? .*\bbest\b"),
        read=sweep_from_question,
        examples=(
            Example("how does the EnKF error depend on ensemble size and inflation?",
                    {"tool": "run_da_experiment", "grid": {"n_members": [5, 10, 20], "inflation": [1.0, 1.2, 1.4]},
                     "fixed": {"method": "enkf"}}),
            Example("sweep the 3D-Var cycle over sigma_o 0.1, 0.2 and 0.5 with 3 seeds",
                    {"tool": "run_3dvar_cycle", "grid": {"sigma_o": [0.1, 0.2, 0.5]}, "seeds": 3}),
            Example("sensitivity of ORIGEN on the oscillator to the observation error and the number of cycles",
                    {"tool": "run_origen_oscillator", "grid": {"sigma_o": [0.05, 0.1, 0.2, 0.4],
                                                               "n_cycles": [10, 20, 40, 80]}}),
            Example("how does the rmse of 3dvar and etkf change with obs error 0.5, 1 and 2?",
                    {"tool": "run_da_experiment", "grid": {"method": ["3dvar", "etkf"], "sigma_o": [0.5, 1, 2]}}),
            Example("how does the 3D-Var cycle's analysis error vary with the background error?",
                    {"tool": "run_3dvar_cycle", "grid": {"sigma_b": [0.075, 0.15, 0.3, 0.6]}}),
            Example("sweep the inflation for the ETKF on Lorenz 96",
                    {"tool": "run_da_experiment", "grid": {"inflation": [1.0, 1.2, 1.4]},
                     "fixed": {"method": "etkf", "model": "lorenz96"}}),
        ),
    ),
)
