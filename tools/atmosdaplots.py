"""Figures of the 2D assimilation comparison (``assimilate_atmosphere``)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from tools.plots import DIFF_CMAP, _field, _style, _subplots

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


def fields_and_errors(x, z, truth, fields: dict[str, np.ndarray], time: float, rs_ix=None) -> Figure:
    """Top row: truth | each method's field (shared colour limits); bottom row: their errors
    (shared symmetric limits), RMSE in the titles."""
    n = 1 + len(fields)
    fig, axes = _subplots(2, n, figsize=(3.6 * n + 1.2, 5.6), constrained_layout=True, squeeze=False)
    vmax = float(max(truth.max(), *(f.max() for f in fields.values())))
    vmin = float(min(0.0, truth.min(), *(f.min() for f in fields.values())))
    im = _field(axes[0, 0], x, z, truth, f"truth, t = {time:.1f}", vmin, vmax)
    axes[1, 0].axis("off")
    errs = {k: f - truth for k, f in fields.items()}
    d = float(max(np.abs(e).max() for e in errs.values())) or 1.0
    for i, (name, f) in enumerate(fields.items(), start=1):
        _field(axes[0, i], x, z, f, LABELS.get(name, name), vmin, vmax)
        rmse = float(np.sqrt(np.mean(errs[name] ** 2)))
        im2 = _field(axes[1, i], x, z, errs[name], f"error ({name}): RMSE {rmse:.4f}", -d, d, cmap=DIFF_CMAP)
        if rs_ix is not None:
            for j in rs_ix:
                axes[0, i].axvline(x[j], color="white", lw=0.5, ls="--", alpha=0.6)
    fig.colorbar(im, ax=axes[0, :].tolist(), label="tracer φ")
    fig.colorbar(im2, ax=axes[1, 1:].tolist(), label="error (method − truth)")
    fig.suptitle("Analyses at one held-out time (dashed: radiosonde stations)", fontsize=11)
    return fig
