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

from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

FIELD_CMAP = "viridis"
DIFF_CMAP = "RdBu_r"
LEN = "domain units"
TIME = "time (model units)"
PHI = "tracer φ (concentration units)"
C_TRUTH, C_BG, C_AN, C_OBS = "black", "tab:orange", "tab:blue", "tab:red"
C_SOURCE = "tab:red"


def _subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], constrained_layout: bool = False,
              **kwargs):
    """``plt.subplots`` without pyplot: a thread-safe ``Figure`` and its axes."""
    fig = Figure(figsize=figsize, layout="constrained" if constrained_layout else None)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _finish(fig: Figure, ax, xlabel: str, ylabel: str, title: str) -> Figure:
    """The last touches of a one-panel line plot: axis labels, title, legend outside the data, grid."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    _legend_outside(ax)
    _style(ax)
    return fig


def _style(ax) -> None:
    ax.grid(True, alpha=0.3, lw=0.6)


def _legend_outside(ax, **kwargs) -> None:
    """The legend to the right of the axes, where it covers no data."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs)


def _fit_width(text: str, inches: float, fontsize: float) -> str:
    """``text`` broken into lines that fit ``inches`` at ``fontsize`` (an average glyph is about
    0.55 em wide in DejaVu Sans)."""
    import textwrap  # noqa: PLC0415

    return textwrap.fill(text, max(20, int(inches * 72 / (0.55 * fontsize))))


def _margins_for_legends(fig: Figure, axes, *, left: float = 1.0, top: float = 0.45, bottom: float = 0.55,
                         hspace: float = 0.18) -> None:
    """Place the axes with margins in inches: the right margin as wide as the widest legend outside
    the axes (measured, a few texts), the others fixed. For the figures drawn at every run of a
    class (the 3D-Var cycle): the layout engine measures every tick label of every panel before it
    draws, which took a third of a run's time. tests/tools/test_figures.py checks that nothing
    leaves the canvas."""
    renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else None
    if renderer is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415

        renderer = FigureCanvasAgg(fig).get_renderer()
    widest = max((ax.get_legend().get_window_extent(renderer).width / fig.dpi
                  for ax in axes if ax.get_legend() is not None), default=0.0)
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - (widest + 0.25) / w, top=1 - top / h, bottom=bottom / h,
                        hspace=hspace)
    fig.fitted = True      # saved as it is, without cropping (which would draw it twice)


def _plain_log(ax, axis: str = "y") -> None:
    """Log-axis tick labels as plain numbers (0.01, 0.02, 0.05, 0.1), no labels on the minor ticks."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


def when(t: float, k: int | None = None) -> str:
    """Model time with the snapshot index in brackets: ``t = 24.0 [snapshot 4]``."""
    return f"t = {t:.1f}" + ("" if k is None else f" [snapshot {k}]")


def _field(ax, x, z, field, title, vmin=None, vmax=None, cmap=FIELD_CMAP):
    im = ax.pcolormesh(x, z, field, shading="auto", cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(f"x ({LEN})")
    ax.set_ylabel(f"z ({LEN})")
    return im


def _source(ax, source: dict | None, on: bool | None = None, label: bool = True) -> None:
    """The source region (1-σ ellipse of ``S(x, z)``) on an x–z panel; filled when it is injecting.

    ``source``: ``{"x", "z", "sx", "sz"}`` in domain units (see ``tools.atmosphere.SOURCE``)."""
    if source is None:
        return
    state = "" if on is None else " (filled when injecting)"
    ax.add_patch(Ellipse((source["x"], source["z"]), 2 * source["sx"], 2 * source["sz"], lw=1.4,
                         ec=C_SOURCE, fc=C_SOURCE if on else "none", alpha=0.9 if not on else 0.55, ls="-",
                         label=f"source{state}" if label else None))


def _stations(ax, x, rs_ix, z=None, rs_iz=None, label: bool = True) -> None:
    """Radiosonde stations: dashed columns (and their levels as dots when given)."""
    for s, i in enumerate(rs_ix):
        ax.axvline(x[i], color="white", lw=0.8, ls="--", alpha=0.8,
                   label="radiosonde stations" if label and s == 0 and rs_iz is None else None)
        if rs_iz is not None:
            ax.plot(np.full(len(rs_iz), x[i]), z[rs_iz], "o", ms=2.0, color="white",
                    label="radiosonde levels" if label and s == 0 else None)


def atmosphere_snapshots(x, z, snaps, t_snap, rs_ix=None, rs_iz=None, source=None, source_on=None,
                         max_panels: int = 12, first_index: int = 0) -> Figure:
    """Snapshots of φ on one colour scale, the source marked (filled when on) and the radiosonde
    stations when given. Every snapshot is drawn up to ``max_panels``; beyond that an even
    selection, and the title says which."""
    T = len(snaps)
    pick = np.unique(np.round(np.linspace(0, T - 1, min(T, max_panels))).astype(int))
    ncols = 2 if len(pick) > 1 else 1
    nrows = int(np.ceil(len(pick) / ncols))
    fig, axes = _subplots(nrows, ncols, figsize=(6.2 * ncols, 2.3 * nrows + 1.0), squeeze=False,
                          constrained_layout=True)
    vmax = float(np.max(snaps[pick])) or 1.0
    im = None
    for ax, k in zip(axes.flat, pick):
        on = None if source_on is None else bool(source_on[k])
        state = "" if on is None else (" · source on" if on else " · source off")
        im = _field(ax, x, z, snaps[k], when(t_snap[k], first_index + k) + state, vmin=0.0, vmax=vmax)
        if rs_ix is not None:
            _stations(ax, x, rs_ix, z, rs_iz, label=k == pick[0])
        _source(ax, source, on, label=k == pick[0])
    for ax in list(axes.flat)[len(pick):]:
        ax.set_visible(False)
    fig.colorbar(im, ax=axes, label=PHI, shrink=0.9)
    shown = f"all {T} snapshots" if len(pick) == T else f"{len(pick)} of {T} snapshots, evenly spread"
    if source_on is not None and not np.any(np.asarray(source_on)[pick]):
        shown += "; the source is off at every one of these times (they fall between pulses)"
    fig.suptitle(f"Toy atmosphere: advection–diffusion with a pulsed bottom-left source ({shown})", fontsize=11)
    handles = [h for h, lab in zip(*axes.flat[0].get_legend_handles_labels()) if lab.startswith("source")]
    if rs_ix is not None:      # the stations are white on the field: a grey stand-in for the legend
        handles.insert(0, Line2D([], [], color="gray", ls="--", lw=0.9, marker="o" if rs_iz is not None else None,
                                 ms=2.5, label="radiosonde stations" + (" and levels" if rs_iz is not None else "")))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8)
    return fig


def budget(t, C, I, L, acc_in, acc_loss, period: float | None = None) -> Figure:
    """Budget monitoring in three panels: content, rates (with the injection averaged over one
    pulse ``period`` when given), and the residual of the balance."""
    fig, (a1, a2, a3) = _subplots(3, 1, figsize=(10, 8.4), sharex=True, constrained_layout=True)
    a1.plot(t, C, color="black", lw=1.6, label="content C(t) = ∫φ dA")
    a1.plot(t, C[0] + acc_in - acc_loss, color="tab:green", ls="--", lw=1.2,
            label="C(0) + injected − lost (cumulative)")
    a1.set_ylabel("content (φ × area)")
    a1.set_title("Content: C(t) rises, then levels off at a statistical steady state")
    a2.plot(t, I, color="tab:red", lw=0.9, label="injection I(t) = ∫A(t)S dA")
    a2.plot(t, L, color="tab:blue", lw=1.5, label="loss L(t) = ∫(λ+λ_top)φ dA")
    if period is not None and len(t) > 1:
        n = max(1, int(round(period / (t[1] - t[0]))))
        if n < len(t):
            mean = np.convolve(I, np.ones(n) / n, mode="valid")
            a2.plot(t[n - 1:], mean, color="tab:red", ls="--", lw=1.6, label="injection, mean over one pulse period")
    a2.set_ylabel("rate (content per time unit)")
    a2.set_title("Rates: the loss grows until it matches the pulsed injection on average")
    residual = C - C[0] - (acc_in - acc_loss)
    a3.plot(t, residual, color="tab:purple", lw=1.2, label="C(t) − C(0) − (injected − lost)")
    a3.axhline(0.0, color="gray", lw=0.8, ls=":")
    a3.set_ylabel("residual (φ × area)")
    a3.set_xlabel(TIME)
    final = abs(float(residual[-1])) / max(float(acc_in[-1]), 1e-300)
    a3.set_title(f"Residual of the budget: {final:.3%} of the injected total at the end\n"
                 "(the spikes: time discretisation of the sums during each pulse)", fontsize=11)
    for ax in (a1, a2, a3):
        _legend_outside(ax)
        _style(ax)
    return fig


def weighting_functions(z, sat_w) -> Figure:
    """The satellite channels' Gaussian vertical weighting functions."""
    fig, ax = _subplots(figsize=(5.6, 4.6), constrained_layout=True)
    for c, w in enumerate(sat_w):
        ax.plot(w, z, lw=2, label=f"channel {c}")
    ax.set_xlabel("weight w_c(z) (per domain unit)")
    ax.set_ylabel(f"z ({LEN})")
    ax.set_title("Satellite weighting functions\n(each channel: a weighted vertical mean)", fontsize=10)
    _legend_outside(ax)
    _style(ax)
    return fig


def _source_column(ax, source) -> None:
    if source is not None:
        ax.axvline(source["x"], color=C_SOURCE, lw=1.0, ls="-.", label="source column")


def satellite_curtain(x, ysat_t, t: float, k: int | None = None, source=None) -> Figure:
    """The satellite 'curtain' y_sat(c, x) at one time: every channel along x."""
    fig, ax = _subplots(figsize=(10, 3.6), constrained_layout=True)
    for c, row in enumerate(ysat_t):
        ax.plot(x, row, lw=1.5, label=f"channel {c}")
    _source_column(ax, source)
    ax.set_xlabel(f"x ({LEN})")
    ax.set_ylabel("y_sat (weighted vertical mean of φ)")
    ax.set_title(f"Satellite curtain at {when(t, k)}: every column, weighted vertical means of φ")
    _legend_outside(ax)
    _style(ax)
    return fig


def satellite_hovmoeller(x, t_snap, ysat, source=None) -> Figure:
    """Each channel as a time–x diagram: stripes moving right are the advected tracer train."""
    n = ysat.shape[1]
    fig, axes = _subplots(1, n, figsize=(3.4 * n + 1, 3.8), sharey=True, constrained_layout=True)
    axes = np.atleast_1d(axes)
    vmax = float(ysat.max())
    for c, ax in enumerate(axes):
        im = ax.pcolormesh(x, t_snap, ysat[:, c], shading="auto", cmap=FIELD_CMAP, vmin=0, vmax=vmax)
        ax.set_title(f"channel {c}", fontsize=10)
        ax.set_xlabel(f"x ({LEN})")
        ax.xaxis.set_major_locator(MaxNLocator(4))          # no colliding labels between panels
        if source is not None:
            ax.axvline(source["x"], color=C_SOURCE, lw=1.0, ls="-.", label="source column" if c == 0 else None)
    axes[0].set_ylabel(TIME)
    fig.colorbar(im, ax=axes, label="y_sat (weighted vertical mean of φ)")
    fig.suptitle("Satellite observations over time (ysat[time, channel, x])", fontsize=11)
    if source is not None:
        fig.legend(loc="outside lower center", fontsize=8)
    return fig


def radiosonde_profiles(z, rs_iz, yrs_t, truth_cols, x_st, t: float, k: int | None = None) -> Figure:
    """Radiosonde observations at one time against the true profiles at the stations (one x-scale)."""
    n = len(x_st)
    fig, axes = _subplots(1, n, figsize=(1.8 * n + 1.6, 4.0), sharex=True, sharey=True, constrained_layout=True)
    axes = np.atleast_1d(axes)
    for s, ax in enumerate(axes):
        ax.plot(truth_cols[:, s], z, color=C_TRUTH, lw=1.3, label="truth")
        ax.plot(yrs_t[s], z[rs_iz], "o", ms=3.5, color=C_OBS, label="radiosonde")
        ax.set_title(f"x = {x_st[s]:.1f}", fontsize=9)
        ax.set_xlabel("φ (conc.)")
        ax.xaxis.set_major_locator(MaxNLocator(3))
        _style(ax)
    axes[0].set_ylabel(f"z ({LEN})")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=8)
    fig.suptitle(f"Radiosonde profiles at {when(t, k)} (yrs[time, station, level]; one φ scale for all stations)",
                 fontsize=11)
    return fig


# ---------------------------------------------------------------- ORIGEN: oscillator, Lorenz-63

STATE = {0: "x1 = cos θ (state units)", 1: "x2 = sin θ (state units)"}


def _obs_markers(ax, k, y, which, comp):
    sel = which == comp
    ax.plot(k[sel], y[sel], "o", ms=4, mfc="none", mec=C_OBS, mew=1.1, ls="none",
            label="observations y (when this component is observed)")


def cycle_timeseries(truth, x_b, x_a, y, which, title: str, gain=None, B_var=None,
                     gain_fixed: float | None = None) -> Figure:
    """Truth, background, analysis and the scalar observations for x1 and x2 (lecture panel);
    with ``gain`` (T,) and ``B_var`` (T, 2) also the gain on the observed component (and the
    fixed-B gain ``gain_fixed`` for reference) and the background-error variances per step,
    where a collapsing covariance update shows."""
    k = np.arange(len(truth))
    extra = (gain is not None) + (B_var is not None)
    heights = [1.0, 1.0] + [0.65] * extra
    fig, axes = _subplots(2 + extra, 1, figsize=(11, 5.2 + 1.9 * extra), sharex=True,
                          gridspec_kw={"height_ratios": heights})
    for comp, ax in enumerate(axes[:2]):
        ax.plot(k, truth[:, comp], color=C_TRUTH, lw=1.6, label="truth")
        if x_b is not None:
            ax.plot(k, x_b[:, comp], color=C_BG, lw=1.0, ls="--", label="background x_b")
        ax.plot(k, x_a[:, comp], color=C_AN, lw=1.5, label="analysis x_a")
        _obs_markers(ax, k, y, which, comp)
        ax.set_ylabel(STATE[comp])
        _style(ax)
    _legend_outside(axes[0])
    row = 2
    if gain is not None:
        ax = axes[row]
        ax.plot(k, gain, color="tab:purple", lw=1.4, label="gain K on the observed component")
        if gain_fixed is not None:
            ax.axhline(gain_fixed, color="gray", ls=":", lw=1.2, label=f"fixed-B gain σ_b²/(σ_b²+σ_o²) = {gain_fixed:.2f}")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("gain K (dimensionless)")
        _legend_outside(ax)
        _style(ax)
        row += 1
    if B_var is not None:
        ax = axes[row]
        for comp, ls in ((0, "-"), (1, "--")):
            ax.semilogy(k, B_var[:, comp], ls, color="tab:green", lw=1.4, label=f"B variance of x{comp + 1}")
        _plain_log(ax)
        ax.set_ylabel("B variance (state units²)")
        _legend_outside(ax)
        _style(ax)
    axes[-1].set_xlabel("time step k (model time)")
    fig.suptitle(title, fontsize=12)
    _margins_for_legends(fig, axes)
    return fig


def rmse_per_cycle(curves: dict[str, np.ndarray], sigma_o: float | None, title: str) -> Figure:
    """RMSE of the reconstructed trajectory per ORIGEN cycle (log scale), one line per variant."""
    fig, ax = _subplots(figsize=(9.5, 4.2), constrained_layout=True)
    for (label, r), colour in zip(curves.items(), ["tab:red", "tab:green", "tab:purple", "tab:gray"]):
        ax.semilogy(np.arange(len(r)), r, "o-", ms=3, lw=1.5, color=colour, label=label)
    if sigma_o is not None:
        ax.axhline(sigma_o, color="gray", ls=":", label=f"observation error σ_o = {sigma_o:g}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _plain_log(ax)
    return _finish(fig, ax, "assimilation cycle (0 = persistence 3D-Var)", "RMSE vs truth (state units)", title)


def oscillator_trajectories(truth, x_a_cycles, cycles_to_show) -> Figure:
    """The 2D trajectory: truth circle and selected reconstruction cycles."""
    fig, ax = _subplots(figsize=(7.0, 5.2), constrained_layout=True)
    ax.plot(truth[:, 0], truth[:, 1], color=C_TRUTH, lw=2.2, label="truth")
    cmap = colormaps["plasma"]
    for i, c in enumerate(cycles_to_show):
        ax.plot(x_a_cycles[c][:, 0], x_a_cycles[c][:, 1], lw=1.0, alpha=0.85,
                color=cmap(i / max(len(cycles_to_show) - 1, 1) * 0.85), label=f"cycle {c}")
    ax.set_aspect("equal")
    ax.set_xlabel(STATE[0])
    ax.set_ylabel(STATE[1])
    ax.set_title("Reconstruction over cycles: later cycles closer to the truth")
    _legend_outside(ax)
    _style(ax)
    return fig


def sequential_rounds(truth, x_a1, x_a2, y1, y2) -> Figure:
    """Two rounds: x1 observed everywhere, then x2 with round 1's analysis as background."""
    k = np.arange(len(truth))
    fig, axes = _subplots(2, 2, figsize=(11, 5.6), sharex=True, constrained_layout=True)
    for r, (xa, y, comp_obs) in enumerate(((x_a1, y1, 0), (x_a2, y2, 1))):
        for comp in range(2):
            ax = axes[comp, r]
            ax.plot(k, truth[:, comp], color=C_TRUTH, lw=1.6, label="truth")
            ax.plot(k, xa[:, comp], color=C_AN, lw=1.3, label=f"analysis after round {r + 1}")
            if comp == comp_obs:
                ax.plot(k, y, "o", ms=3, mfc="none", mec=C_OBS, ls="none", label="observations y")
            ax.set_ylabel(STATE[comp])
            _style(ax)
        axes[0, r].set_title(f"Round {r + 1}: observe x{comp_obs + 1} at every step")
        axes[1, r].set_xlabel("time step k (model time)")
    handles = {lab: h for ax in axes.flat for h, lab in zip(*ax.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=len(handles), fontsize=8)
    fig.suptitle("Two sequential rounds: with complete observations, cycling converges in two", fontsize=12)
    return fig


def lorenz_timeseries(t, truth, first, final, y, title: str) -> Figure:
    """x, y, z of the truth, the first and the final reconstruction, and the observations."""
    fig, axes = _subplots(3, 1, figsize=(11, 6.8), sharex=True, constrained_layout=True)
    for i, (ax, name) in enumerate(zip(axes, "xyz")):
        if truth is not None:
            ax.plot(t, truth[:, i], color=C_TRUTH, lw=1.6, label="truth")
        ax.plot(t, first[:, i], color=C_BG, lw=1.0, ls="--", label="cycle 0 (persistence 3D-Var)")
        ax.plot(t, final[:, i], color=C_AN, lw=1.3, label="final cycle")
        ax.plot(t, y[:, i], "o", ms=2.5, mfc="none", mec=C_OBS, mew=0.7, alpha=0.7, ls="none",
                label="observations (last cycle)")
        ax.set_ylabel(f"{name} (Lorenz state units)")
        _style(ax)
    _legend_outside(axes[0])
    axes[-1].set_xlabel("time (Lorenz units)")
    fig.suptitle(title, fontsize=12)
    return fig


def lorenz_phase(truth, first, final) -> Figure:
    """The x–z projection of the attractor: truth, cycle 0 and the final reconstruction."""
    fig, axes = _subplots(1, 2, figsize=(10, 4.4), sharex=True, sharey=True, constrained_layout=True)
    for ax, rec, name, colour in ((axes[0], first, "cycle 0", C_BG), (axes[1], final, "final cycle", C_AN)):
        if truth is not None:
            ax.plot(truth[:, 0], truth[:, 2], color=C_TRUTH, lw=1.0, alpha=0.7, label="truth")
        ax.plot(rec[:, 0], rec[:, 2], color=colour, lw=0.9, label=name)
        ax.set_xlabel("x (Lorenz state units)")
        ax.set_ylabel("z (Lorenz state units)")
        ax.set_title(f"Lorenz-63 reconstruction, {name}")
        ax.legend(fontsize=8, loc="lower right")
        _style(ax)
    return fig


# ---------------------------------------------------------------- learning: obs-to-obs, emulator

def loss_curves(history: dict[str, list[float]], best_epoch: int | None, title: str,
                phase: tuple[int, str] | None = None) -> Figure:
    """Training and validation loss per epoch (log scale), with the kept epoch marked; ``phase``
    (first epoch, label) marks where a second training phase with another loss begins."""
    fig, ax = _subplots(figsize=(9, 4.2), constrained_layout=True)
    styles = {"train": ("tab:blue", "-", "training loss"), "val": ("tab:red", "-", "validation loss"),
              "val_sat": ("tab:orange", "--", "validation L_sat"), "val_rs": ("tab:green", "--", "validation L_rs")}
    for key, (colour, ls, label) in styles.items():
        if history.get(key):
            ax.semilogy(np.arange(1, len(history[key]) + 1), history[key], ls, color=colour, lw=1.5, label=label)
    if best_epoch:
        ax.axvline(best_epoch, color="gray", ls=":", label=f"kept weights (epoch {best_epoch})")
    if phase is not None:
        ax.axvline(phase[0] - 0.5, color="black", ls="--", lw=1, label=phase[1])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _plain_log(ax)
    return _finish(fig, ax, "epoch", "loss (normalised units², MSE)", title)


def profile_vs_truth(z, pred, truth, persistence, column: int, x_col: float, t: int, is_station: bool,
                     t_model: tuple[float, float] | None = None) -> Figure:
    """Evaluation 1: the predicted profile at t+1 at one column against the truth."""
    fig, ax = _subplots(figsize=(6.8, 5.2), constrained_layout=True)
    ax.plot(truth, z, color=C_TRUTH, lw=2, label="truth xtrue[t+1]")
    ax.plot(pred, z, color=C_AN, lw=1.8, ls="--", label="predicted ŷ_rs(t+1)")
    ax.plot(persistence, z, color="gray", lw=1.0, ls=":", label="persistence xtrue[t]")
    ax.set_xlabel(PHI)
    ax.set_ylabel(f"z ({LEN})")
    where = "a radiosonde column" if is_station else "no radiosonde here"
    at = when(t_model[1], t + 1) if t_model is not None else f"snapshot {t + 1}"
    ax.set_title(f"Profile at t+1: {at}\ncolumn {column} (x = {x_col:.1f}; {where})", fontsize=10)
    _legend_outside(ax)
    _style(ax)
    return fig


def reconstruction_panels(x, z, previous, truth, pred, rs_ix, t: int, metrics: dict[str, float],
                          t_model: tuple[float, float] | None = None, source=None) -> Figure:
    """Evaluation 2, the lecture's four panels: xtrue[t], xtrue[t+1], x_pred[t+1], difference;
    the stations (inputs) and the source on every panel, model time in the titles."""
    fig, axes = _subplots(2, 2, figsize=(13, 6.8), constrained_layout=True)
    vmax = float(max(previous.max(), truth.max(), pred.max()))
    now, nxt = ((when(t_model[0], t), when(t_model[1], t + 1)) if t_model is not None
                else (f"snapshot {t}", f"snapshot {t + 1}"))
    im = _field(axes[0, 0], x, z, previous, f"truth xtrue[t] at {now} (reference, not an input)", 0, vmax)
    _field(axes[0, 1], x, z, truth, f"truth xtrue[t+1] at {nxt}", 0, vmax)
    _field(axes[1, 0], x, z, pred, f"prediction x_pred[t+1]: RMSE {metrics['rmse']:.3f}, "
                                   f"corr {metrics['correlation']:.3f}", 0, vmax)
    diff = pred - truth
    d = float(np.abs(diff).max()) or 1.0
    im2 = _field(axes[1, 1], x, z, diff, f"difference x_pred − xtrue (climatology RMSE "
                                         f"{metrics['rmse_climatology']:.3f}, persistence {metrics['rmse_persistence']:.3f})",
                 -d, d, cmap=DIFF_CMAP)
    for k, ax in enumerate(axes.flat):
        for s, i in enumerate(rs_ix):
            ax.axvline(x[i], color="black" if k == 3 else "white", lw=0.7, ls="--", alpha=0.7,
                       label="radiosonde stations (inputs)" if k == 0 and s == 0 else None)
        _source(ax, source, label=k == 0)
    fig.colorbar(im, ax=axes[0, :].tolist(), label=PHI)
    fig.colorbar(im, ax=axes[1, 0], label="tracer φ (same scale)")
    fig.colorbar(im2, ax=axes[1, 1], label="error x_pred − xtrue (φ)")
    stations = Line2D([], [], color="gray", lw=0.9, ls="--", label="radiosonde stations (inputs)")
    handles = [stations] + [h for h, lab in zip(*axes[0, 0].get_legend_handles_labels()) if lab.startswith("source")]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8)
    fig.suptitle(f"Full-field reconstruction at {nxt} from the observations at {now}, "
                 "querying the RS head at every grid point", fontsize=11)
    return fig


def sat_prediction(x, sat_pred, sat_truth, sat_prev, t: int, t_model: tuple[float, float] | None = None,
                   source=None) -> Figure:
    """Predicted satellite curtain at t+1 against the observed one and persistence."""
    n = len(sat_pred)
    fig, axes = _subplots(n, 1, figsize=(10, 1.8 * n + 0.9), sharex=True, constrained_layout=True)
    axes = np.atleast_1d(axes)
    for c, ax in enumerate(axes):
        ax.plot(x, sat_truth[c], color=C_TRUTH, lw=1.5, label="observed ysat[t+1]")
        ax.plot(x, sat_pred[c], color=C_AN, lw=1.3, ls="--", label="predicted")
        ax.plot(x, sat_prev[c], color="gray", lw=0.9, ls=":", label="persistence ysat[t]")
        _source_column(ax, source)
        ax.set_ylabel(f"y_sat ch {c}\n(φ mean)")
        _style(ax)
    _legend_outside(axes[0])
    axes[-1].set_xlabel(f"x ({LEN})")
    at = when(t_model[1], t + 1) if t_model is not None else f"snapshot {t + 1}"
    fig.suptitle(f"Satellite curtain at t+1 ({at}): prediction vs observation", fontsize=12)
    return fig


def emulator_rollouts(t, reference, starts, rollouts, title: str) -> Figure:
    """Forecast rollouts (blue) from analysis states (red dots) against the reference (black dashed)."""
    fig, axes = _subplots(3, 1, figsize=(11, 6.8), sharex=True, constrained_layout=True)
    for i, (ax, name) in enumerate(zip(axes, "xyz")):
        ax.plot(t, reference[:, i], "k--", lw=1.2, label="reference trajectory")
        for j, (k0, roll) in enumerate(zip(starts, rollouts)):
            tt = t[k0:k0 + len(roll)]
            ax.plot(tt, roll[:len(tt), i], color="tab:blue", lw=1.3, label="NN forecast rollout" if j == 0 else None)
            ax.plot(t[k0], reference[k0, i], "o", color="tab:red", ms=4, label="analysis start" if j == 0 else None)
        ax.set_ylabel(f"{name} (Lorenz state units)")
        _style(ax)
    _legend_outside(axes[0])
    axes[-1].set_xlabel("time (Lorenz units)")
    fig.suptitle(title, fontsize=12)
    return fig


def error_vs_lead(lead_times, curves: dict[str, np.ndarray], threshold: float | None, title: str) -> Figure:
    """Forecast RMSE against lead time, one line per model, with the valid-time threshold."""
    fig, ax = _subplots(figsize=(9.5, 4.2), constrained_layout=True)
    for (label, r), colour in zip(curves.items(), ["tab:gray", "tab:blue", "tab:green"]):
        ax.plot(lead_times, r, lw=1.8, color=colour, label=label)
    if threshold is not None:
        ax.axhline(threshold, color="tab:red", ls=":", label="valid-time threshold")
    return _finish(fig, ax, "lead time (Lorenz time units)", "forecast error\n(RMSE over start points, state units)",
                   title)
