"""Every figure dalab draws. Functions take arrays and return a matplotlib ``Figure``.

Figures are made to be read by students: a title that says what is shown, axis labels with
units, colour bars with their quantity, legends, and the lecture's panels.

Figures are built as plain ``Figure`` objects, never through pyplot's global figure manager, so
tools can draw in several threads at once (the web UI serves many sessions in one process).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from matplotlib import colormaps  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

FIELD_CMAP = "viridis"
DIFF_CMAP = "RdBu_r"
LEN = "domain units"
TIME = "time (model units)"
C_TRUTH, C_BG, C_AN, C_OBS = "black", "tab:orange", "tab:blue", "tab:red"


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], constrained_layout: bool = False,
              **kwargs):
    """``plt.subplots`` without pyplot: a thread-safe ``Figure`` and its axes."""
    fig = Figure(figsize=figsize, layout="constrained" if constrained_layout else None)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _finish(fig: Figure, ax, xlabel: str, ylabel: str, title: str) -> Figure:
    """The last touches of a one-panel line plot: axis labels, title, legend, grid."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    _style(ax)
    return fig


def _style(ax) -> None:
    ax.grid(True, alpha=0.3, lw=0.6)


def _field(ax, x, z, field, title, vmin=None, vmax=None, cmap=FIELD_CMAP):
    im = ax.pcolormesh(x, z, field, shading="auto", cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(f"x ({LEN})")
    ax.set_ylabel(f"z ({LEN})")
    return im


def atmosphere_snapshots(x, z, snaps, t_snap, rs_ix=None, rs_iz=None, max_panels: int = 6) -> Figure:
    """Snapshots of φ on one colour scale; radiosonde stations marked when given."""
    T = len(snaps)
    pick = np.unique(np.round(np.linspace(0, T - 1, min(T, max_panels))).astype(int))
    ncols = 2 if len(pick) > 1 else 1
    nrows = int(np.ceil(len(pick) / ncols))
    fig, axes = _subplots(nrows, ncols, figsize=(6.2 * ncols, 2.6 * nrows + 0.6), squeeze=False,
                             constrained_layout=True)
    vmax = float(np.max(snaps[pick])) or 1.0
    im = None
    for ax, k in zip(axes.flat, pick):
        im = _field(ax, x, z, snaps[k], f"snapshot {k}: t = {t_snap[k]:.1f}", vmin=0.0, vmax=vmax)
        if rs_ix is not None:
            for s, i in enumerate(rs_ix):
                ax.axvline(x[i], color="white", lw=0.8, ls="--", alpha=0.8)
                if rs_iz is not None:
                    ax.plot(np.full(len(rs_iz), x[i]), z[rs_iz], "o", ms=2.2, color="white",
                            label="radiosonde levels" if s == 0 else None)
            if k == pick[0]:
                ax.legend(loc="upper right", fontsize=7, framealpha=0.6)
    for ax in list(axes.flat)[len(pick):]:
        ax.set_visible(False)
    fig.colorbar(im, ax=axes, label="tracer φ", shrink=0.9)
    fig.suptitle("Toy atmosphere: advection–diffusion with a pulsed bottom-left source"
                 + (" (dashed: radiosonde stations)" if rs_ix is not None else ""), fontsize=11)
    return fig


def budget(t, C, I, L, acc_in, acc_loss) -> Figure:
    """Budget monitoring: content C(t), injection and loss rates, and the cumulative balance."""
    fig, (a1, a2) = _subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    a1.plot(t, C, color="black", lw=1.6, label="content C(t) = ∫φ")
    a1.plot(t, C[0] + acc_in - acc_loss, color="tab:green", ls="--", lw=1.2,
            label="C(0) + acc_in − acc_loss")
    a1.set_xlabel(TIME)
    a1.set_ylabel("content (φ × area)")
    a1.set_title("Does the budget close?")
    a1.legend(fontsize=8)
    _style(a1)
    a2.plot(t, I, color="tab:red", lw=1.0, label="injection I(t) = ∫A S")
    a2.plot(t, L, color="tab:blue", lw=1.4, label="loss L(t) = ∫(λ+λ_top)φ")
    ax3 = a2.twinx()
    ax3.plot(t, acc_in, color="tab:red", ls=":", lw=1.4, label="acc_in (cumulative)")
    ax3.plot(t, acc_loss, color="tab:blue", ls=":", lw=1.4, label="acc_loss (cumulative)")
    ax3.set_ylabel("cumulative content")
    a2.set_xlabel(TIME)
    a2.set_ylabel("rate (content per time unit)")
    a2.set_title("Injected vs lost: balanced at equilibrium")
    h1, l1 = a2.get_legend_handles_labels()
    h2, l2 = ax3.get_legend_handles_labels()
    a2.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
    _style(a2)
    return fig


def weighting_functions(z, sat_w) -> Figure:
    """The satellite channels' Gaussian vertical weighting functions."""
    fig, ax = _subplots(figsize=(4.2, 4.6), constrained_layout=True)
    for c, w in enumerate(sat_w):
        ax.plot(w, z, lw=2, label=f"channel {c}")
    ax.set_xlabel("weight w_c(z) (per domain unit)")
    ax.set_ylabel(f"z ({LEN})")
    ax.set_title("Satellite weighting functions\n(each channel: a weighted vertical mean)", fontsize=10)
    ax.legend(fontsize=8)
    _style(ax)
    return fig


def satellite_curtain(x, ysat_t, t: float, truth_mean=None) -> Figure:
    """The satellite 'curtain' y_sat(c, x) at one time: every channel along x."""
    fig, ax = _subplots(figsize=(9, 3.6), constrained_layout=True)
    for c, row in enumerate(ysat_t):
        ax.plot(x, row, lw=1.5, label=f"channel {c}")
    ax.set_xlabel(f"x ({LEN})")
    ax.set_ylabel("y_sat (weighted mean of φ)")
    ax.set_title(f"Satellite curtain at t = {t:.1f}: all columns, integrated in z")
    ax.legend(fontsize=8, ncol=len(ysat_t))
    _style(ax)
    return fig


def satellite_hovmoeller(x, t_snap, ysat) -> Figure:
    """Each channel as a time–x diagram: stripes moving right are the advected tracer train."""
    n = ysat.shape[1]
    fig, axes = _subplots(1, n, figsize=(3.3 * n, 3.6), sharey=True, constrained_layout=True)
    axes = np.atleast_1d(axes)
    vmax = float(ysat.max())
    for c, ax in enumerate(axes):
        im = ax.pcolormesh(x, t_snap, ysat[:, c], shading="auto", cmap=FIELD_CMAP, vmin=0, vmax=vmax)
        ax.set_title(f"channel {c}", fontsize=10)
        ax.set_xlabel(f"x ({LEN})")
    axes[0].set_ylabel(TIME)
    fig.colorbar(im, ax=axes, label="y_sat")
    fig.suptitle("Satellite observations over time (ysat[time, channel, x])", fontsize=11)
    return fig


def radiosonde_profiles(z, rs_iz, yrs_t, truth_cols, x_st, t: float) -> Figure:
    """Radiosonde observations at one time against the true profiles at the stations."""
    n = len(x_st)
    fig, axes = _subplots(1, n, figsize=(1.7 * n + 1, 3.8), sharey=True, constrained_layout=True)
    axes = np.atleast_1d(axes)
    for s, ax in enumerate(axes):
        ax.plot(truth_cols[:, s], z, color=C_TRUTH, lw=1.3, label="truth")
        ax.plot(yrs_t[s], z[rs_iz], "o", ms=3.5, color=C_OBS, label="radiosonde")
        ax.set_title(f"x = {x_st[s]:.1f}", fontsize=9)
        ax.set_xlabel("φ")
        _style(ax)
    axes[0].set_ylabel(f"z ({LEN})")
    axes[0].legend(fontsize=7, loc="upper right")
    fig.suptitle(f"Radiosonde profiles at t = {t:.1f} (yrs[time, station, level])", fontsize=11)
    return fig


# ---------------------------------------------------------------- ORIGEN: oscillator, Lorenz-63

def _obs_markers(ax, k, y, which, comp, label=True):
    sel = which == comp
    colour = "tab:blue" if comp == 0 else "tab:orange"
    ax.plot(k[sel], y[sel], "o", ms=3.5, color=colour, alpha=0.8,
            label=f"observations of x{comp + 1}" if label else None)


def cycle_timeseries(truth, x_b, x_a, y, which, title: str) -> Figure:
    """Truth, background, analysis and the scalar observations for x1 and x2 (lecture panel)."""
    k = np.arange(len(truth))
    fig, axes = _subplots(2, 1, figsize=(10, 5.6), sharex=True, constrained_layout=True)
    for comp, ax in enumerate(axes):
        ax.plot(k, truth[:, comp], color=C_TRUTH, lw=1.6, label="truth")
        if x_b is not None:
            ax.plot(k, x_b[:, comp], color=C_BG, lw=1.0, ls="--", label="background x_b")
        ax.plot(k, x_a[:, comp], color=C_AN, lw=1.4, label="analysis x_a")
        _obs_markers(ax, k, y, which, comp)
        ax.set_ylabel(f"x{comp + 1}")
        _style(ax)
    axes[0].legend(fontsize=8, ncol=4, loc="upper right")
    axes[1].legend(fontsize=8, ncol=4, loc="upper right")
    axes[1].set_xlabel("time step k")
    axes[0].set_title(title)
    return fig


def rmse_per_cycle(curves: dict[str, np.ndarray], sigma_o: float | None, title: str) -> Figure:
    """RMSE of the reconstructed trajectory per ORIGEN cycle (log scale), one line per variant."""
    fig, ax = _subplots(figsize=(7.5, 4.2), constrained_layout=True)
    for (label, r), colour in zip(curves.items(), ["tab:red", "tab:green", "tab:purple", "tab:gray"]):
        ax.semilogy(np.arange(len(r)), r, "o-", ms=3, lw=1.5, color=colour, label=label)
    if sigma_o is not None:
        ax.axhline(sigma_o, color="gray", ls=":", label=f"observation error σ_o = {sigma_o:g}")
    return _finish(fig, ax, "assimilation cycle (0 = persistence 3D-Var)", "RMSE vs truth", title)


def oscillator_trajectories(truth, x_a_cycles, cycles_to_show) -> Figure:
    """The 2D trajectory: truth circle and selected reconstruction cycles."""
    fig, ax = _subplots(figsize=(5.4, 5.2), constrained_layout=True)
    ax.plot(truth[:, 0], truth[:, 1], color=C_TRUTH, lw=2.2, label="truth")
    cmap = colormaps["plasma"]
    for i, c in enumerate(cycles_to_show):
        ax.plot(x_a_cycles[c][:, 0], x_a_cycles[c][:, 1], lw=1.0, alpha=0.85,
                color=cmap(i / max(len(cycles_to_show) - 1, 1) * 0.85), label=f"cycle {c}")
    ax.set_aspect("equal")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title("Reconstruction over cycles: later cycles closer to the truth")
    ax.legend(fontsize=7, loc="center")
    _style(ax)
    return fig


def sequential_rounds(truth, x_a1, x_a2, y1, y2) -> Figure:
    """Two rounds: x1 observed everywhere, then x2 with round 1's analysis as background."""
    k = np.arange(len(truth))
    fig, axes = _subplots(2, 2, figsize=(11, 5.2), sharex=True, constrained_layout=True)
    for r, (xa, y, comp_obs) in enumerate(((x_a1, y1, 0), (x_a2, y2, 1))):
        for comp in range(2):
            ax = axes[comp, r]
            ax.plot(k, truth[:, comp], color=C_TRUTH, lw=1.6, label="truth")
            ax.plot(k, xa[:, comp], color=C_AN, lw=1.3, label=f"analysis after round {r + 1}")
            if comp == comp_obs:
                ax.plot(k, y, ".", ms=3, color=C_OBS, label=f"observed x{comp + 1}")
            ax.set_ylabel(f"x{comp + 1}")
            _style(ax)
            ax.legend(fontsize=7, loc="upper right")
        axes[0, r].set_title(f"Round {r + 1}: observe x{comp_obs + 1} at every step")
        axes[1, r].set_xlabel("time step k")
    return fig


def lorenz_timeseries(t, truth, first, final, y, title: str) -> Figure:
    """x, y, z of the truth, the first and the final reconstruction, and the observations."""
    fig, axes = _subplots(3, 1, figsize=(10, 6.8), sharex=True, constrained_layout=True)
    for i, (ax, name) in enumerate(zip(axes, "xyz")):
        if truth is not None:
            ax.plot(t, truth[:, i], color=C_TRUTH, lw=1.6, label="truth")
        ax.plot(t, first[:, i], color=C_BG, lw=1.0, ls="--", label="cycle 0 (persistence 3D-Var)")
        ax.plot(t, final[:, i], color=C_AN, lw=1.3, label="final cycle")
        ax.plot(t, y[:, i], ".", ms=2.5, color=C_OBS, alpha=0.6, label="observations (last cycle)")
        ax.set_ylabel(name)
        _style(ax)
    axes[0].legend(fontsize=8, ncol=4, loc="upper right")
    axes[-1].set_xlabel("time (Lorenz units)")
    axes[0].set_title(title)
    return fig


def lorenz_phase(truth, first, final) -> Figure:
    """The x–z projection of the attractor: truth, cycle 0 and the final reconstruction."""
    fig, axes = _subplots(1, 2, figsize=(10, 4.4), sharex=True, sharey=True, constrained_layout=True)
    for ax, rec, name, colour in ((axes[0], first, "cycle 0", C_BG), (axes[1], final, "final cycle", C_AN)):
        if truth is not None:
            ax.plot(truth[:, 0], truth[:, 2], color=C_TRUTH, lw=1.0, alpha=0.7, label="truth")
        ax.plot(rec[:, 0], rec[:, 2], color=colour, lw=0.9, label=name)
        ax.set_xlabel("x")
        ax.set_title(f"Lorenz-63 reconstruction, {name}")
        ax.legend(fontsize=8)
        _style(ax)
    axes[0].set_ylabel("z")
    return fig


# ---------------------------------------------------------------- learning: obs-to-obs, emulator

def loss_curves(history: dict[str, list[float]], best_epoch: int | None, title: str,
                phase: tuple[int, str] | None = None) -> Figure:
    """Training and validation loss per epoch (log scale), with the kept epoch marked; ``phase``
    (first epoch, label) marks where a second training phase with another loss begins."""
    fig, ax = _subplots(figsize=(7.5, 4.2), constrained_layout=True)
    styles = {"train": ("tab:blue", "-", "training loss"), "val": ("tab:red", "-", "validation loss"),
              "val_sat": ("tab:orange", "--", "validation L_sat"), "val_rs": ("tab:green", "--", "validation L_rs")}
    for key, (colour, ls, label) in styles.items():
        if history.get(key):
            ax.semilogy(np.arange(1, len(history[key]) + 1), history[key], ls, color=colour, lw=1.5, label=label)
    if best_epoch:
        ax.axvline(best_epoch, color="gray", ls=":", label=f"kept weights (epoch {best_epoch})")
    if phase is not None:
        ax.axvline(phase[0] - 0.5, color="black", ls="--", lw=1, label=phase[1])
    return _finish(fig, ax, "epoch", "loss (normalised units², MSE)", title)


def profile_vs_truth(z, pred, truth, persistence, column: int, x_col: float, t: int, is_station: bool) -> Figure:
    """Evaluation 1: the predicted profile at t+1 at one column against the truth."""
    fig, ax = _subplots(figsize=(4.6, 5.2), constrained_layout=True)
    ax.plot(truth, z, color=C_TRUTH, lw=2, label="truth xtrue[t+1]")
    ax.plot(pred, z, color=C_AN, lw=1.8, ls="--", label="predicted ŷ_rs(t+1)")
    ax.plot(persistence, z, color="gray", lw=1.0, ls=":", label="persistence xtrue[t]")
    ax.set_xlabel("φ")
    ax.set_ylabel(f"z ({LEN})")
    where = "a radiosonde column" if is_station else "no radiosonde here"
    ax.set_title(f"Profile at t+1 = {t + 1}, column {column} (x = {x_col:.1f}; {where})", fontsize=10)
    ax.legend(fontsize=8)
    _style(ax)
    return fig


def reconstruction_panels(x, z, previous, truth, pred, rs_ix, t: int, metrics: dict[str, float]) -> Figure:
    """Evaluation 2, the lecture's four panels: xtrue[t], xtrue[t+1], x_pred[t+1], difference."""
    fig, axes = _subplots(2, 2, figsize=(12.5, 6.4), constrained_layout=True)
    vmax = float(max(previous.max(), truth.max(), pred.max()))
    im = _field(axes[0, 0], x, z, previous, f"truth xtrue[t], t = {t} (reference, not an input)", 0, vmax)
    _field(axes[0, 1], x, z, truth, "truth xtrue[t+1]", 0, vmax)
    im_pred = _field(axes[1, 0], x, z, pred, f"prediction x_pred[t+1]: RMSE {metrics['rmse']:.3f}, "
                                             f"corr {metrics['correlation']:.3f}", 0, vmax)
    for i in rs_ix:
        axes[1, 0].axvline(x[i], color="white", lw=0.7, ls="--", alpha=0.7)
    fig.colorbar(im, ax=axes[0, :].tolist(), label="tracer φ")
    fig.colorbar(im_pred, ax=axes[1, 0], label="tracer φ (same scale)")
    diff = pred - truth
    d = float(np.abs(diff).max()) or 1.0
    im2 = _field(axes[1, 1], x, z, diff, f"difference x_pred − xtrue (climatology RMSE "
                                         f"{metrics['rmse_climatology']:.3f}, persistence {metrics['rmse_persistence']:.3f})",
                 -d, d, cmap=DIFF_CMAP)
    fig.colorbar(im2, ax=axes[1, 1], label="error")
    fig.suptitle("Full-field reconstruction at t+1 by querying the RS head everywhere "
                 "(dashed: radiosonde stations used as inputs)", fontsize=11)
    return fig


def sat_prediction(x, sat_pred, sat_truth, sat_prev, t: int) -> Figure:
    """Predicted satellite curtain at t+1 against the observed one and persistence."""
    n = len(sat_pred)
    fig, axes = _subplots(n, 1, figsize=(9, 1.7 * n + 0.8), sharex=True, constrained_layout=True)
    axes = np.atleast_1d(axes)
    for c, ax in enumerate(axes):
        ax.plot(x, sat_truth[c], color=C_TRUTH, lw=1.5, label="observed ysat[t+1]")
        ax.plot(x, sat_pred[c], color=C_AN, lw=1.3, ls="--", label="predicted")
        ax.plot(x, sat_prev[c], color="gray", lw=0.9, ls=":", label="persistence ysat[t]")
        ax.set_ylabel(f"ch {c}")
        _style(ax)
    axes[0].legend(fontsize=8, ncol=3, loc="upper right")
    axes[-1].set_xlabel(f"x ({LEN})")
    axes[0].set_title(f"Satellite curtain at t+1 = {t + 1}: prediction vs observation")
    return fig


def emulator_rollouts(t, reference, starts, rollouts, title: str) -> Figure:
    """Forecast rollouts (blue) from analysis states (red dots) against the reference (black dashed)."""
    fig, axes = _subplots(3, 1, figsize=(10, 6.8), sharex=True, constrained_layout=True)
    for i, (ax, name) in enumerate(zip(axes, "xyz")):
        ax.plot(t, reference[:, i], "k--", lw=1.2, label="reference trajectory")
        for j, (k0, roll) in enumerate(zip(starts, rollouts)):
            tt = t[k0:k0 + len(roll)]
            ax.plot(tt, roll[:len(tt), i], color="tab:blue", lw=1.3, label="NN forecast rollout" if j == 0 else None)
            ax.plot(t[k0], reference[k0, i], "o", color="tab:red", ms=4, label="analysis start" if j == 0 else None)
        ax.set_ylabel(name)
        _style(ax)
    axes[0].legend(fontsize=8, ncol=3, loc="upper right")
    axes[-1].set_xlabel("time (Lorenz units)")
    axes[0].set_title(title)
    return fig


def error_vs_lead(lead_times, curves: dict[str, np.ndarray], threshold: float | None, title: str) -> Figure:
    """Forecast RMSE against lead time, one line per model, with the valid-time threshold."""
    fig, ax = _subplots(figsize=(7.5, 4.2), constrained_layout=True)
    for (label, r), colour in zip(curves.items(), ["tab:gray", "tab:blue", "tab:green"]):
        ax.plot(lead_times, r, lw=1.8, color=colour, label=label)
    if threshold is not None:
        ax.axhline(threshold, color="tab:red", ls=":", label="valid-time threshold")
    return _finish(fig, ax, "lead time (Lorenz time units)", "forecast error (RMSE, mean over start points)", title)
