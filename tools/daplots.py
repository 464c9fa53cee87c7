"""Figures of the DA methods lab: arrays in, a matplotlib ``Figure`` out (no pyplot state).

Colours and helpers are those of :mod:`tools.plots`: truth black, observations red markers (never
a line, so they cannot be mistaken for an analysis), analysis blue, forecast orange. Legends sit
outside the data, above the panels. The Lorenz models are nondimensional, so their unit is written
"model units" and time "model time units".
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from tools.plots import C_AN, C_BG, C_OBS, C_TRUTH, DIFF_CMAP, FIELD_CMAP, TIME, _fit_width, _style, _subplots

UNIT = "model units"
SERIES_MAX = 200
"""At most this many (the last) observation times in the time-series figure."""
C_SPREAD = "tab:green"


def _burn_in(ax, burn_in: float, label: bool = True, start: float = 0.0) -> None:
    if burn_in > start:
        ax.axvspan(start, burn_in, color="0.85", alpha=0.6, lw=0, label="burn-in (not scored)" if label else None)


def _diverged(ax, t_div: float | None, label: bool = True) -> None:
    if t_div is not None:
        ax.axvline(t_div, color="tab:purple", ls="-.", lw=1.4, label=f"diverged at t = {t_div:.4g}" if label else None)


def _legend_above(fig: Figure, ax, ncol: int = 4, where: str = "upper") -> None:
    """The legend of ``ax`` outside the panels, above them (``where="lower"``: below, under a suptitle)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc=f"outside {where} center", ncol=min(ncol, len(handles)), fontsize=8)


def pick_components(n: int, observed: np.ndarray | None = None, k: int = 3) -> list[int]:
    """Which components to draw: all of them up to ``k``, else ``k`` spread over the state,
    preferring observed ones (``observed (n,)`` bool: observed at least once)."""
    if n <= k:
        return list(range(n))
    candidates = np.flatnonzero(observed) if observed is not None and observed.any() else np.arange(n)
    pick = candidates[np.round(np.linspace(0, len(candidates) - 1, k)).astype(int)]
    return sorted(set(int(i) for i in pick))


def da_timeseries(t, x_a, y, components, names, title: str, *, x_true=None, spread=None, burn_in: float = 0.0,
                  t_div: float | None = None, method: str = "analysis") -> Figure:
    """Truth, observations and the analysis mean ± spread for a few state components.

    Parameters
    ----------
    t : ndarray (K,)
        Observation times (model time units).
    x_a : ndarray (K, n)
        Analysis mean; ``y (K, n)`` observations with NaN where not observed; ``x_true (K, n)`` or None.
    spread : ndarray (K, n) or (K,) or None
        Ensemble standard deviation per component (or the RMS spread of all components), drawn as a band.
    components : list of int
        Indices of the components drawn, one panel each; ``names`` the names of all n components.
    """
    fig, axes = _subplots(len(components), 1, figsize=(10, 1.9 * len(components) + 1.3), sharex=True,
                          squeeze=False, constrained_layout=True)
    axes = axes[:, 0]
    for ax, i in zip(axes, components):
        _burn_in(ax, burn_in, ax is axes[0], start=min(float(t[0]), burn_in) if len(t) else 0.0)
        if x_true is not None:
            ax.plot(t, x_true[:, i], color=C_TRUTH, lw=1.4, label="truth")
        if spread is not None:
            s = spread[:, i] if np.ndim(spread) == 2 else spread
            ax.fill_between(t, x_a[:, i] - s, x_a[:, i] + s, color=C_AN, alpha=0.25, lw=0,
                            label="analysis ± ensemble spread")
        ax.plot(t, x_a[:, i], color=C_AN, lw=1.1, label=f"{method} analysis mean")
        seen = np.isfinite(y[:, i])
        ax.plot(t[seen], y[seen, i], "o", ms=3.2, mfc="none", mec=C_OBS, mew=0.9, label="observations")
        _diverged(ax, t_div, ax is axes[0])
        ax.set_ylabel(f"{names[i]} ({UNIT})")
        _style(ax)
    axes[-1].set_xlabel(TIME)
    fig.suptitle(_fit_width(title, fig.get_figwidth() - 0.5, 11), fontsize=11)   # over the stacked panels
    _legend_above(fig, axes[0], ncol=5, where="lower")
    return fig


def error_spread(t, sigma_o: float, title: str, *, err_a=None, err_f=None, spread_a=None,
                 omf=None, oma=None, burn_in: float = 0.0, t_div: float | None = None) -> Figure:
    """Error and spread against time, burn-in shaded.

    With truth: RMS analysis and forecast error over components ``err_a, err_f (K,)`` and the RMS
    ensemble spread ``spread_a (K,)`` (they should match for a well-tuned filter). Without truth: RMS
    observation-minus-forecast and observation-minus-analysis per time, ``omf, oma (K,)``.
    """
    fig, ax = _subplots(figsize=(10, 4.0), constrained_layout=True)
    _burn_in(ax, burn_in)
    if err_f is not None:
        ax.plot(t, err_f, color=C_BG, lw=0.9, alpha=0.8, label="forecast error (RMS over components)")
    if err_a is not None:
        ax.plot(t, err_a, color=C_AN, lw=1.2, label="analysis error (RMS over components)")
    if spread_a is not None:
        ax.plot(t, spread_a, color=C_SPREAD, lw=1.2, ls="--", label="analysis ensemble spread")
    if omf is not None:
        ax.plot(t, omf, color=C_BG, lw=0.9, label="RMS obs − forecast (innovation)")
    if oma is not None:
        ax.plot(t, oma, color=C_AN, lw=1.1, label="RMS obs − analysis (residual)")
    ax.axhline(sigma_o, color="gray", ls=":", lw=1.2, label=f"observation error σo = {sigma_o:.3g}")
    _diverged(ax, t_div)
    ax.set_yscale("log")
    ax.set_xlabel(TIME)
    ax.set_ylabel(f"RMS error / spread ({UNIT})" if omf is None else f"RMS departure ({UNIT})")
    ax.set_title(_fit_width(title, fig.get_figwidth() - 1.5, 10), fontsize=10)
    _style(ax)
    _legend_above(fig, ax, ncol=3)
    return fig


def rank_histogram(counts, title: str) -> Figure:
    """Rank of the truth among the sorted ensemble members, counted over times and components.

    ``counts (N+1,)``: flat = reliable; U-shaped = spread too small (under-dispersive); dome = too large.
    """
    counts = np.asarray(counts, float)
    ranks = np.arange(len(counts))
    fig, ax = _subplots(figsize=(7.5, 4.0), constrained_layout=True)
    ax.bar(ranks, counts, width=0.85, color=C_AN, alpha=0.8, label="count of the truth's rank")
    ax.axhline(counts.sum() / len(counts), color="black", ls="--", lw=1.2, label="flat (reliable ensemble)")
    ax.set_xlabel(f"rank of the truth among the {len(counts) - 1} sorted members (0 = below all)")
    ax.set_ylabel("count (scored times × components)")
    ax.set_title(_fit_width(title, fig.get_figwidth() - 1.0, 10), fontsize=10)   # a long setup breaks, never leaves
    _style(ax)
    _legend_above(fig, ax, ncol=2)
    return fig


def hovmoeller(t, x_a, title: str, *, x_true=None, y=None, burn_in: float = 0.0) -> Figure:
    """Time × variable diagrams for Lorenz-96: truth, analysis (shared colour limits) and their error;
    without truth the observations (blank where not observed) and the analysis."""
    first = ("truth", x_true) if x_true is not None else ("observations", y)
    shown = [first, ("analysis mean", x_a)]
    ncols = 3 if x_true is not None else 2
    fig, axes = _subplots(1, ncols, figsize=(4.2 * ncols + 0.8, 4.8), sharey=True, constrained_layout=True)
    n = x_a.shape[1]
    vals = np.concatenate([a[np.isfinite(a)] for _, a in shown])
    lim = float(np.abs(vals).max()) if vals.size else 1.0
    var = np.arange(n)
    for ax, (name, arr) in zip(axes, shown):
        im = ax.pcolormesh(var, t, np.ma.masked_invalid(arr), shading="nearest", cmap=FIELD_CMAP, vmin=-lim, vmax=lim)
        ax.set_title(name, fontsize=10)
    fig.colorbar(im, ax=list(axes[:2]), label=f"state value ({UNIT})", location="bottom", shrink=0.8)
    if x_true is not None:
        err = x_a - x_true
        e = float(np.abs(err).max()) or 1.0
        im2 = axes[2].pcolormesh(var, t, err, shading="nearest", cmap=DIFF_CMAP, vmin=-e, vmax=e)
        axes[2].set_title("error: analysis − truth", fontsize=10)
        fig.colorbar(im2, ax=axes[2], label=f"error ({UNIT})", location="bottom")
    for ax in axes:
        ax.set_xlabel("state variable index i")
        if burn_in > 0:
            ax.axhline(burn_in, color="white", ls="--", lw=1.0)
    axes[0].set_ylabel(TIME + (" (dashed: end of burn-in)" if burn_in > 0 else ""))
    fig.suptitle(_fit_width(title, fig.get_figwidth() - 0.5, 11), fontsize=11)
    return fig


def method_comparison(labels, scores, wall_s, sigma_o: float, title: str, *, diverged=None, rmse_f=None,
                      score_name: str = "analysis RMSE (rmse_a)") -> Figure:
    """Analysis RMSE (left; ``score_name`` says which score, e.g. the obs−forecast RMS without truth)
    and wall time (right) per method, on the same truth and observations.

    ``labels`` names the methods with their settings; a method that diverged is hatched.
    """
    k = len(labels)
    diverged = list(diverged) if diverged is not None else [False] * k
    fig, (a1, a2) = _subplots(1, 2, figsize=(max(9.0, 1.5 * k + 5), 4.4), constrained_layout=True)
    x = np.arange(k)
    width = 0.4 if rmse_f is not None else 0.7
    shift = width / 2 if rmse_f is not None else 0.0
    bars = a1.bar(x - shift, scores, width, color=C_AN, label=score_name)
    if rmse_f is not None:
        a1.bar(x + shift, rmse_f, width, color=C_BG, alpha=0.8, label="forecast RMSE (rmse_f)")
    a1.axhline(sigma_o, color="gray", ls=":", lw=1.3, label=f"observation error σo = {sigma_o:.3g}")
    for b, v in zip(bars, scores):
        a1.annotate(f"{v:.3g}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=8)
    a1.set_ylabel(f"time mean after burn-in ({UNIT})")
    a1.set_title("Accuracy: lower is better", fontsize=10)
    wbars = a2.bar(x, wall_s, 0.7, color="0.45")
    for b, v in zip(wbars, wall_s):
        a2.annotate(f"{v:.2g} s", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=8)
    a2.set_ylabel("wall time (s)")
    a2.set_title("Cost", fontsize=10)
    for ax, group in ((a1, bars), (a2, wbars)):
        for b, bad in zip(group, diverged):
            if bad:
                b.set_hatch("//")
                b.set_edgecolor("tab:purple")
        ax.set_xticks(x, labels, rotation=20 if k > 3 else 0, ha="right" if k > 3 else "center", fontsize=8)
        ax.set_xlabel("method (settings)")
        _style(ax)
    handles, names = a1.get_legend_handles_labels()
    if any(diverged):
        handles.append(Patch(hatch="//", facecolor="white", edgecolor="tab:purple"))
        names.append("diverged (scored up to divergence)")
    fig.legend(handles, names, loc="outside lower center", ncol=len(names), fontsize=8)
    fig.suptitle(_fit_width(title, fig.get_figwidth() - 0.5, 11), fontsize=11)
    return fig


def experiment_figures(t, y, x_a, x_f, names, label: str, *, sigma_o: float, burn_in: float = 0.0, x_true=None,
                       E_a=None, spread_a=None, ranks=None, t_div: float | None = None) -> dict[str, Figure]:
    """The figures of one DA run, by name: timeseries, error_spread, rank_histogram (ensemble with truth),
    hovmoeller (more than 3 variables).

    ``t (K,)``, ``y, x_a, x_f, x_true (K, n)``, ``E_a (K, N, n)`` or None, ``spread_a (K,)`` or None,
    ``ranks (N+1,)`` rank-histogram counts or None; ``label`` names the method and model.
    """
    n = x_a.shape[1]
    title = f"{label}, σo = {sigma_o:.3g}"
    spread = E_a.std(axis=1, ddof=1) if E_a is not None else spread_a
    comps = pick_components(n, np.isfinite(y).any(axis=0))
    w = slice(max(len(t) - SERIES_MAX, 0), None)                # the last times, readable as lines and dots
    shown = f" (last {SERIES_MAX} of {len(t)} observation times)" if len(t) > SERIES_MAX else ""
    out = {"timeseries": da_timeseries(t[w], x_a[w], y[w], comps, names, title + shown,
                                       x_true=None if x_true is None else x_true[w],
                                       spread=None if spread is None else spread[w], burn_in=burn_in, t_div=t_div,
                                       method=label.split(" ")[0])}
    if x_true is not None:
        rms = lambda a: np.sqrt(np.mean((a - x_true) ** 2, axis=1))  # noqa: E731
        out["error_spread"] = error_spread(t, sigma_o, f"{title}: error and spread", err_a=rms(x_a), err_f=rms(x_f),
                                           spread_a=spread_a, burn_in=burn_in, t_div=t_div)
    else:
        def rms(a):
            d2 = (y - a) ** 2
            seen = np.isfinite(d2).any(axis=1)
            return np.where(seen, np.sqrt(np.nanmean(np.where(seen[:, None], d2, 0.0), axis=1)), np.nan)
        out["error_spread"] = error_spread(t, sigma_o, f"{title}: departures from the observations (no truth)",
                                           omf=rms(x_f), oma=rms(x_a), burn_in=burn_in, t_div=t_div)
    if ranks is not None:
        out["rank_histogram"] = rank_histogram(ranks, f"{title}: rank histogram of the analysis ensemble")
    if n > 3:
        out["hovmoeller"] = hovmoeller(t, x_a, f"{title}: Hovmöller diagram", x_true=x_true, y=y, burn_in=burn_in)
    return out


EMULATOR_COLOURS = ("tab:purple", "tab:green", "tab:brown")


def emulator_vs_true(t, y, x_true, x_a_true, analyses: dict, names, title: str, *, burn_in: float = 0.0) -> Figure:
    """The analysis with the true model and with learned forecast models against the truth.

    Parameters
    ----------
    t : ndarray (K,)
        Observation times (model time units); ``y (K, n)`` observations (NaN = not observed).
    x_true, x_a_true : ndarray (K, n)
        Truth, and the analysis mean with the true model.
    analyses : dict of label -> ndarray (K', n)
        Analysis means with each emulator (``K' <= K`` when it diverged).
    names : list of str
        Component names. The first panels show the last :data:`SERIES_MAX` times of each
        component, the last the RMS analysis error over components against time for all of them.
    """
    n = len(names)
    fig, axes = _subplots(n + 1, 1, figsize=(10, 1.9 * (n + 1) + 1.3), sharex=True, squeeze=False,
                          constrained_layout=True)
    axes = axes[:, 0]
    K = len(t)
    show = slice(max(K - SERIES_MAX, 0), K)
    for i, ax in enumerate(axes):
        _burn_in(ax, burn_in, i == 0, start=float(t[show][0]) if K else 0.0)
    for i, ax in enumerate(axes[:n]):
        ax.plot(t[show], x_true[show, i], color=C_TRUTH, lw=1.6, label="truth")
        ax.plot(t[show], x_a_true[show, i], color=C_AN, lw=1.1, label="analysis, true model")
        for (label, xa), c in zip(analyses.items(), EMULATOR_COLOURS):
            k = slice(show.start, min(K, len(xa)))
            ax.plot(t[k], xa[k, i], color=c, lw=1.1, ls="--", label=f"analysis, {label}")
        seen = np.isfinite(y[show, i])
        ax.plot(t[show][seen], y[show, i][seen], "o", ms=3.0, mfc="none", mec=C_OBS, mew=0.8, label="observations")
        ax.set_ylabel(f"{names[i]} ({UNIT})")
        _style(ax)
    ax = axes[n]
    err = lambda xa: np.sqrt(np.mean((xa - x_true[:len(xa)]) ** 2, axis=1))  # noqa: E731
    ax.plot(t[show], err(x_a_true)[show], color=C_AN, lw=1.1)
    for (label, xa), c in zip(analyses.items(), EMULATOR_COLOURS):
        e = err(xa)
        k = slice(show.start, min(K, len(xa)))
        ax.plot(t[k], e[k], color=c, lw=1.1, ls="--")
    ax.set_ylabel(f"RMS analysis error\n({UNIT})")
    ax.set_xlabel(TIME)
    _style(ax)
    fig.suptitle(_fit_width(title + (f" (last {SERIES_MAX} of {K} times)" if K > SERIES_MAX else ""),
                            fig.get_figwidth() - 0.5, 11), fontsize=11)
    _legend_above(fig, axes[0], ncol=3, where="lower")
    return fig
