"""Figures of a parameter sweep (``run_sweep``): lines with a ±std band over one swept argument,
heat maps over two (values in the cells, the best cell marked), small multiples over a third.

Functions take arrays and return a matplotlib ``Figure`` built without pyplot (thread-safe).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from tools.plots import _fit_width  # noqa: E402

# Units of the arguments and metrics the lab's tools share (a tool's own description wins for arguments).
ARG_UNITS = {
    "sigma_o": "state units", "sigma_b": "state units", "inflation": "multiplicative factor, 1 = none",
    "n_members": "ensemble members", "epochs": "passes over the data", "n_steps": "time steps",
    "n_cycles": "cycles", "n_obs": "observation times", "dt": "model time units", "lr": "per step",
    "localisation_radius": "grid points", "obs_every": "time steps", "window": "observation times",
    "alpha": "weight of L_rs, dimensionless", "rollout_steps": "steps", "b_scale": "factor",
}
METRIC_UNITS = [
    (re.compile(r"over_sigma|_ratio|gain|corr|skill|fraction"), "dimensionless"),
    (re.compile(r"(?:^|_)s$|seconds|wall"), "s"),
    (re.compile(r"loss"), "normalised units"),
    (re.compile(r"^n_|count"), "count"),
    (re.compile(r"rmse|spread|crps|bias|sigma|error|var"), "state units"),
]


def arg_label(name: str, description: str = "") -> str:
    """``"inflation (multiplicative factor, 1 = none)"``: the argument with its unit."""
    unit = ARG_UNITS.get(name)
    if unit is None:
        m = re.search(r"\(([^()]*)\)\s*$", description)
        unit = m.group(1) if m and len(m.group(1)) <= 40 else None
    return f"{name} ({unit})" if unit else name


def metric_label(name: str) -> str:
    """``"rmse_a (state units)"``: the metric with its unit."""
    unit = next((u for rx, u in METRIC_UNITS if rx.search(name)), None)
    return f"{name} ({unit})" if unit else name


def _tick(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _figure(nrows: int, ncols: int, figsize: tuple[float, float], **kwargs):
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kwargs)


def sweep_lines(x_values: Sequence[Any], x_label: str, curves: dict[str, tuple[np.ndarray, np.ndarray]],
                main: str, best: int, n_seeds: int, title: str) -> Figure:
    """One swept argument: a line per metric (mean over seeds) with a ±1 std band, the best marked.

    Parameters
    ----------
    x_values : sequence, length K
        The swept values (numbers are placed by value, on a log axis when they span ≥ 20×; text
        and booleans evenly).
    curves : dict
        metric name -> (mean, std), each shape (K,); all in the same unit as ``main``.
    main : str
        The metric that decides the best setting; ``best`` is its index along x.
    """
    fig, axes = _figure(1, 1, (7.2, 4.4))
    ax = axes[0, 0]
    numeric = _numeric(x_values)
    x = np.asarray(x_values, dtype=float) if numeric else np.arange(len(x_values), dtype=float)
    for name, (mean, std) in curves.items():
        line, = ax.plot(x, mean, "o-", lw=2.0 if name == main else 1.3, ms=4, label=name)
        if n_seeds > 1:
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.18, lw=0)
    mean_main = curves[main][0]
    ax.plot([x[best]], [mean_main[best]], marker="*", ms=16, color="gold", mec="black", ls="none",
            label=f"best: {_tick(x_values[best])}")
    if numeric and np.all(x > 0) and x.max() / x.min() >= 20:
        ax.set_xscale("log")
    if not numeric or len(x_values) <= 8:
        ax.set_xticks(x, [_tick(v) for v in x_values])
    ax.set_xlabel(x_label)
    ax.set_ylabel(metric_label(main) + (f", mean ± std over {n_seeds} seeds" if n_seeds > 1 else ""))
    ax.set_title(_fit_width(title, fig.get_figwidth() - 2.5, 10), fontsize=10)
    ax.grid(True, alpha=0.3, lw=0.6)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return fig


def sweep_heatmap(rows: Sequence[Any], row_label: str, cols: Sequence[Any], col_label: str,
                  mean: np.ndarray, std: np.ndarray, metric: str, lower_better: bool,
                  best: tuple[int, int, int], n_seeds: int, title: str,
                  panels: Sequence[Any] = (None,), panel_label: str = "") -> Figure:
    """Two swept arguments: a heat map of the seed-mean with the values in the cells and the best
    cell outlined; a third argument gives one panel per value (one colour scale for all).

    Parameters
    ----------
    mean, std : ndarray, shape (P, R, C)
        Seed mean and std for P panels (values of the third argument), R rows, C columns.
    best : (p, r, c)
        The best cell.
    """
    n_panels = len(panels)
    ncols = min(n_panels, 3)
    nrows = -(-n_panels // ncols)
    width = max(5.0, 0.95 * len(cols) + 2.2)
    height = max(3.2, 0.6 * len(rows) + 1.6)
    fig, axes = _figure(nrows, ncols, (width * ncols + 1.2, height * nrows + 0.5), sharex=True, sharey=True)
    finite = mean[np.isfinite(mean)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    cmap = "viridis_r" if lower_better else "viridis"        # the good end is bright either way
    big = n_seeds > 1 and len(rows) * len(cols) <= 30
    image = None
    for p, ax in enumerate(axes.flat):
        if p >= n_panels:
            ax.set_visible(False)
            continue
        image = ax.imshow(mean[p], cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", origin="lower")
        for r in range(len(rows)):
            for c in range(len(cols)):
                v = mean[p, r, c]
                text = "failed" if not np.isfinite(v) else f"{v:.3g}" + (f"\n±{std[p, r, c]:.2g}" if big else "")
                high = np.isfinite(v) and (v - vmin) / ((vmax - vmin) or 1.0) > 0.5
                bright = high != lower_better          # viridis is bright at the top, viridis_r at the bottom
                ax.text(c, r, text, ha="center", va="center", fontsize=7 if big else 8,
                        color="black" if bright else "white")
        if p == best[0]:
            ax.add_patch(Rectangle((best[2] - 0.5, best[1] - 0.5), 1, 1, fill=False, ec="red", lw=2.5,
                                   label="best setting"))
            ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0 if n_panels == 1 else 1.08), fontsize=8,
                      frameon=False, borderaxespad=0.2)
        ax.set_xticks(range(len(cols)), [_tick(v) for v in cols])
        ax.set_yticks(range(len(rows)), [_tick(v) for v in rows])
        if p // ncols == nrows - 1 or p + ncols >= n_panels:
            ax.set_xlabel(col_label)
        if p % ncols == 0:
            ax.set_ylabel(row_label)
        if panels[p] is not None:
            ax.set_title(f"{panel_label} = {_tick(panels[p])}", fontsize=9)
    better = "lower" if lower_better else "higher"
    fig.colorbar(image, ax=axes, shrink=0.9,
                 label=f"{metric_label(metric)}\nmean over {n_seeds} seed{'s' * (n_seeds > 1)}, {better} is better")
    fig.suptitle(_fit_width(title, fig.get_figwidth() - 0.5, 10), fontsize=10)
    return fig
