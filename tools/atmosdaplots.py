"""Figures of the 2D assimilation comparison (``assimilate_atmosphere``)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from tools.plots import DIFF_CMAP, _field, _source, _style, _subplots, when

LABELS = {"obs2obs": "obs2obs network (obs at t only)", "3dvar": "3D-Var, true-model background",
          "enkf": "EnKF, true model", "3dvar_no_model": "3D-Var, persistence background",
          "climatology": "climatology (mean training field)", "persistence": "persistence (truth at t)"}
STYLES = {"obs2obs": ("tab:purple", "-"), "3dvar": ("tab:blue", "-"), "enkf": ("tab:green", "-"),
          "3dvar_no_model": ("tab:orange", "-"), "climatology": ("gray", "--"), "persistence": ("black", ":")}


def rmse_vs_time(t_eval: np.ndarray, curves: dict[str, np.ndarray], traj: np.ndarray | None = None) -> Figure:
    """Full-field RMSE against time for every method on the held-out times.

    ``t_eval`` (K,) model times; ``curves`` method → (K,) RMSE; ``traj`` (K,) trajectory of
    each time: trajectories are drawn one after another, separated by vertical lines.
    """
    fig, ax = _subplots(figsize=(10.5, 4.6), constrained_layout=True)
    k = np.arange(len(t_eval))
    for name, r in curves.items():
        colour, ls = STYLES.get(name, (None, "-"))
        ax.plot(k, r, marker="o", ms=3, color=colour, ls=ls, label=f"{LABELS.get(name, name)}: mean {np.mean(r):.4f}")
    if traj is not None:
        for b in np.flatnonzero(np.diff(np.asarray(traj)) != 0):
            ax.axvline(b + 0.5, color="gray", lw=0.8, alpha=0.6)
    ax.set_xticks(k[:: max(1, len(k) // 12)])
    ax.set_xticklabels([f"{t:.1f}" for t in np.asarray(t_eval)[:: max(1, len(k) // 12)]])
    ax.set_xlabel("held-out time (model time units); vertical lines separate trajectories")
    ax.set_ylabel("full-field RMSE (tracer units)")
    ax.set_yscale("log")
    ax.set_title("Classical DA vs the obs-to-obs network on the held-out times")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _style(ax)
    return fig


def fields_and_errors(x, z, truth, fields: dict[str, np.ndarray], time: float, rs_ix=None, *,
                      k: int | None = None, source: dict | None = None) -> Figure:
    """Top row: truth | each method's field (shared colour limits); bottom row: their errors
    (shared symmetric limits), RMSE in the titles. The stations (dashed) and the source (red
    ellipse, ``source`` as ``tools.atmosphere.SOURCE``) on every panel; model time ``time``
    with the snapshot index ``k`` in the titles."""
    n = 1 + len(fields)
    fig, axes = _subplots(2, n, figsize=(3.6 * n + 1.2, 5.8), constrained_layout=True, squeeze=False)
    vmax = float(max(truth.max(), *(f.max() for f in fields.values())))
    vmin = float(min(0.0, truth.min(), *(f.min() for f in fields.values())))
    im = _field(axes[0, 0], x, z, truth, f"truth at {when(time, k)}", vmin, vmax)
    axes[1, 0].remove()                                   # no error panel for the truth
    errs = {name: f - truth for name, f in fields.items()}
    d = float(max(np.abs(e).max() for e in errs.values())) or 1.0
    im2 = im
    for i, (name, f) in enumerate(fields.items(), start=1):
        _field(axes[0, i], x, z, f, LABELS.get(name, name), vmin, vmax)
        rmse = float(np.sqrt(np.mean(errs[name] ** 2)))
        im2 = _field(axes[1, i], x, z, errs[name], f"error ({name}): RMSE {rmse:.4f}", -d, d, cmap=DIFF_CMAP)
    panels = [axes[0, 0], *axes[0, 1:], *axes[1, 1:]]
    for j, ax in enumerate(panels):
        on_diff = j > len(fields)
        for s, i in enumerate(rs_ix if rs_ix is not None else []):
            ax.axvline(x[i], color="black" if on_diff else "white", lw=0.6, ls="--", alpha=0.7,
                       label="radiosonde stations" if j == 0 and s == 0 else None)
        _source(ax, source, label=j == 0)
    fig.colorbar(im, ax=axes[0, :].tolist(), label="tracer φ (concentration units)")
    if fields:
        fig.colorbar(im2, ax=axes[1, 1:].tolist(), label="error, method − truth (φ)")
    handles = [Line2D([], [], color="gray", lw=0.9, ls="--", label="radiosonde stations")] * (rs_ix is not None)
    handles += [h for h, lab in zip(*axes[0, 0].get_legend_handles_labels()) if lab.startswith("source")]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8)
    fig.suptitle(f"Analyses at one held-out time, {when(time, k)}", fontsize=11)
    return fig
