"""The experiment behind the DA tools: arguments, DAPPER's reference setups and presets, the
model/experiment/observations of a call, the method, its run and its scores.

One science path serves ``run_da_experiment``, ``compare_da_methods``, ``reproduce.py`` and sweeps:
:func:`setup` (model, experiment, observations: a twin or the student's files), :func:`make` (the
toyda method with the given or preset settings), :func:`assimilate` (run it, :func:`evaluate`).
Every refusal is a :class:`~tools.base.ToolError` naming the argument and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from typing import Any, Literal

import numpy as np
from pydantic import field_validator

from tools import words
from tools.base import ToolArgs, ToolError, Workspace, arg
from tools.dafiles import read_observations, resolve_path
from toyda.da import METHODS, make_method
from toyda.da.diagnostics import score
from toyda.experiment import Experiment, Observations, get_model, twin

MethodName = Literal["oi", "3dvar", "extkf", "enkf", "etkf", "letkf", "4dvar", "pf"]
SETTINGS = ("n_members", "inflation", "localisation_radius", "window", "background", "b_scale")
"""The tool arguments that are method settings (fields of the toyda method dataclasses)."""

REFERENCE = {
    "lorenz63": {"setup": "sakov2012", "dt": 0.01, "obs_every": 25, "sigma_o": math.sqrt(2.0), "burn_in": 16.0},
    "lorenz96": {"setup": "sakov2008", "dt": 0.05, "obs_every": 1, "sigma_o": 1.0, "burn_in": 20.0},
}
"""DAPPER's reference twin setups (all components observed, 1,000 observation times)."""
N_OBS = 1000
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "lorenz63": {"3dvar": {"background": "climatology", "b_scale": 0.1}, "extkf": {"inflation": 4.0},
                 "enkf": {"n_members": 10, "inflation": 1.1}, "etkf": {"n_members": 10, "inflation": 1.1},
                 "4dvar": {"window": 1, "background": "climatology", "b_scale": 0.1}, "pf": {"n_members": 100}},
    "lorenz96": {"3dvar": {"background": "climatology", "b_scale": 0.02}, "extkf": {"inflation": 1.1},
                 "enkf": {"n_members": 40, "inflation": 1.06}, "etkf": {"n_members": 24, "inflation": 1.013},
                 "letkf": {"n_members": 7, "inflation": 1.04, "localisation_radius": 4.0},
                 "4dvar": {"window": 1, "background": "climatology", "b_scale": 0.02}, "pf": {"n_members": 100}},
}
"""Tuned settings used where the student leaves them out (DAPPER's suggested tuning for the setups)."""
DAPPER = {("lorenz63", "oi"): 1.25, ("lorenz63", "3dvar"): 1.03, ("lorenz63", "extkf"): 0.9,
          ("lorenz63", "enkf"): 0.65, ("lorenz63", "etkf"): 0.60, ("lorenz63", "4dvar"): 0.79,
          ("lorenz63", "pf"): 0.35, ("lorenz96", "oi"): 0.95, ("lorenz96", "3dvar"): 0.41,
          ("lorenz96", "extkf"): 0.24, ("lorenz96", "enkf"): 0.22, ("lorenz96", "etkf"): 0.18,
          ("lorenz96", "letkf"): 0.22}
"""DAPPER's published rmse_a on the reference setups with the preset settings."""
MAX_SECONDS = 90.0
"""An interactive call is refused when its estimated run time exceeds this."""
_OBSERVED = re.compile(r"^(all|[xyz]{1,3}|every:[1-9]\d*|random:[1-9]\d*)$")


def _model_arg():
    return arg("lorenz63", description="the model: 'lorenz63' (3 variables) or 'lorenz96' (40 variables, F = 8)",
               phrases=("model", "system"),
               values={"lorenz63": ["lorenz 63", "lorenz-63", "l63", "butterfly", "lorenz63"],
                       "lorenz96": ["lorenz 96", "lorenz-96", "l96", "40 variables", "lorenz96"]})


class SetupArgs(ToolArgs):
    """The experiment every method shares (twin, or the student's files)."""

    model: Literal["lorenz63", "lorenz96"] = _model_arg()
    dt: float | None = arg(None, gt=0, le=0.1, phrases=("time step", "model time step"),
                           description="model time step (model time units); default 0.01 (L63) or 0.05 (L96)")
    obs_every: int | None = arg(None, ge=1, le=500, phrases=("observation interval", "obs every", "steps between observations"),
                                description="model steps between observation times (twin only); default 25 (L63) or 1 (L96)")
    observed: str | None = arg(None, phrases=("observed components", "observe only"),
                               description="observed components (twin only): 'all'; L63 letters such as 'x' or 'xz'; "
                                           "'every:k' every k-th variable; 'random:m' m random components per time")
    sigma_o: float | None = arg(None, gt=0, le=100, phrases=("obs error", "observation error", "observation noise", "σo"),
                                description="observation-error standard deviation, R = σo² I (model units); "
                                            "default √2 (L63) or 1 (L96)")
    n_obs: int | None = arg(None, ge=2, le=20_000, phrases=("observation times", "cycles", "number of observations"),
                            description=f"number of observation times (twin only); default {N_OBS}")
    burn_in: float | None = arg(None, ge=0, phrases=("burn-in", "spin-up"),
                                description="model time units not scored at the start; default 16 (L63) or 20 (L96), "
                                            "or a quarter of the experiment when that leaves less than half scored")
    seed: int = arg(0, ge=0, le=2**31 - 1, description="random seed (truth, observation noise, ensembles)")
    observations: str | None = arg(None, phrases=("my observations", "my own observations", "observation file", "my data",
                                                  "observations"), files=(".csv", ".nc"),
                                   description="the student's observations: a .csv (time + one column per variable, empty "
                                               "= not observed) or .nc file; default a twin experiment")
    truth: str | None = arg(None, phrases=("truth file", "true state", "truth"), files=(".csv", ".nc"),
                            description="optional truth file of the same form (may start at t = 0) to score against")

    @field_validator("observed")
    @classmethod
    def _observed(cls, v: str | None) -> str | None:
        if v is not None and not _OBSERVED.match(v.strip().lower()):
            raise ValueError("observed must be 'all', letters of 'xyz' (Lorenz-63), 'every:k' or 'random:m'")
        return v if v is None else v.strip().lower()


class DAArgs(SetupArgs):
    method: MethodName = arg("etkf", phrases=("method", "filter", "scheme"),
                             description="the DA method: oi, 3dvar, extkf, enkf, etkf, letkf (lorenz96), 4dvar, pf",
                             values={"oi": ["optimal interpolation", "optinterp"], "3dvar": ["3d-var", "3d var", "3dvar"],
                                     "extkf": ["extended kalman filter", "ekf", "extkf"],
                                     "enkf": ["enkf", "ensemble kalman filter", "stochastic enkf", "perturbed observations"],
                                     "etkf": ["etkf", "ensemble transform kalman filter", "square-root enkf", "sqrt enkf",
                                              "square root filter", "ensemble square root filter", "deterministic enkf"],
                                     "letkf": ["letkf", "local ensemble transform", "localised etkf"],
                                     "4dvar": ["4d-var", "4d var", "4dvar", "four-dimensional variational"],
                                     "pf": ["particle filter", "pf", "bootstrap filter", "sequential monte carlo"]})
    n_members: int | None = arg(None, ge=2, le=2000, phrases=("ensemble size", "members", "particles", "N"),
                                description="ensemble members / particles (enkf, etkf, letkf, pf); default the preset")
    inflation: float | None = arg(None, ge=1, le=1000, phrases=words.INFLATION,
                                  description="multiplicative inflation of the forecast covariance (>= 1; enkf, etkf, letkf, extkf)")
    localisation_radius: float | None = arg(None, gt=0, le=100, phrases=("localization radius", "localisation radius", "loc radius"),
                                            description="LETKF localisation radius (grid points, Gaspari-Cohn; lorenz96 only)")
    window: int | None = arg(None, ge=1, le=20, phrases=("assimilation window", "window length"),
                             description="4D-Var window (observation intervals, >= 1)")
    background: Literal["climatology", "identity"] | None = arg(
        None, description="B of 3dvar/4dvar: 'climatology' (b_scale × climatological covariance) or 'identity' (b_scale × I)",
        values={"climatology": ["climatological b", "climatology"], "identity": ["identity", "diagonal b"]})
    b_scale: float | None = arg(None, gt=0, le=100, phrases=("b scale", "background scale"),
                                description="scale of B for 3dvar/4dvar (DAPPER's xB)")
    forecast_model: Literal["true", "emulator"] = arg(
        "true", phrases=("forecast model", "model for the forecasts"),
        description="the forecast model inside DA: 'true' (the RK4 model that made the truth) or 'emulator' (the "
                    "learned Lorenz-63 network of train_lorenz63_emulator; lorenz63 only, run beside the true model "
                    "on the same observations)",
        values={"true": ["true model", "the true model", "perfect model", "physical model", "rk4 model"],
                "emulator": ["emulator", "the emulator", "learned model", "learned forecast model", "neural network",
                             "the network", "network as the forecast model", "surrogate", "learned emulator"]})
    checkpoint: str | None = arg(None, phrases=("checkpoint", "emulator checkpoint", "emulator run"),
                                 description="with forecast_model='emulator': a run name or path of a "
                                             "train_lorenz63_emulator result (emulator.pt); default the latest one")


def _defaults(args: SetupArgs) -> dict[str, Any]:
    ref = REFERENCE[args.model]
    return {"dt": args.dt or ref["dt"], "sigma_o": args.sigma_o or ref["sigma_o"]}


def setup(args: SetupArgs, workspace: Workspace | None = None, resolved: dict[str, str] | None = None
          ) -> tuple[Experiment, Observations]:
    """The model, the experiment description and the observations (twin or files) of ``args``."""
    ref, d = REFERENCE[args.model], _defaults(args)
    model = get_model(args.model, dt=d["dt"])
    if args.truth and not args.observations:
        raise ToolError("truth= needs observations= (the file of observations it belongs to); leave truth out for a twin")
    if args.observations:
        given = [k for k in ("obs_every", "observed", "n_obs") if getattr(args, k) is not None]
        if given:
            raise ToolError(f"{', '.join(given)} cannot be set with observations=: the observation times and gaps come "
                            "from the file; leave them out")
        workspace = workspace or Workspace(_home())
        paths = {k: resolve_path(getattr(args, k), workspace, k) for k in ("observations", "truth") if getattr(args, k)}
        if resolved is not None:
            resolved.update({k: workspace.shown(v) for k, v in paths.items()})   # relative in a session
        obs = read_observations(paths["observations"], model.n, model.dt, truth=paths.get("truth"))
        obs_every, observed, n_obs = int(np.median(obs.steps)), "all", len(obs.t)
    else:
        obs_every, observed, n_obs = args.obs_every or ref["obs_every"], args.observed or "all", args.n_obs or N_OBS
        if args.model == "lorenz96" and re.fullmatch(r"[xyz]+", observed):
            raise ToolError(f"observed={observed!r} names Lorenz-63 components; for lorenz96 use 'all', 'every:k' or 'random:m'")
        if observed.startswith("random:") and int(observed[7:]) > model.n:
            raise ToolError(f"observed={observed!r}: at most {model.n} components of {args.model} can be observed")
        obs = None
    span = float(n_obs * obs_every * model.dt) if obs is None else float(obs.t[-1])
    burn_in = args.burn_in if args.burn_in is not None else (ref["burn_in"] if ref["burn_in"] <= span / 2 else span / 4)
    if burn_in >= span:
        raise ToolError(f"burn_in={burn_in:g} leaves nothing to score: the experiment ends at t = {span:g}; "
                        "choose a burn_in below it or more n_obs")
    exp = Experiment(model=model, obs_every=obs_every, observed=observed, sigma_o=d["sigma_o"], n_obs=n_obs,
                     burn_in=float(burn_in), seed=args.seed)
    return exp, (obs if obs is not None else twin(exp))


def _home():
    from tools.settings import get_settings  # noqa: PLC0415

    return get_settings().home


def settings_of(args: DAArgs) -> dict[str, Any]:
    """The method's settings: the ones given, the preset for the rest; refuses settings that do not apply."""
    if args.method == "letkf" and args.model != "lorenz96":
        raise ToolError("method='letkf' localises by the distance between grid points, which lorenz63 does not have: "
                        "use model='lorenz96', or method='etkf' on lorenz63")
    if args.localisation_radius is not None and args.model != "lorenz96":
        raise ToolError(f"localisation_radius applies only to model='lorenz96' (a distance in grid points); {args.model} "
                        "has no distance between its variables: leave it out")
    takes = {f.name for f in dataclasses.fields(METHODS[args.method])}
    given = {k: getattr(args, k) for k in SETTINGS if getattr(args, k) is not None}
    for name in given:
        if name not in takes:
            users = [m for m, cls in METHODS.items() if name in {f.name for f in dataclasses.fields(cls)}]
            raise ToolError(f"{name} does not apply to method={args.method!r}; it is a setting of {', '.join(users)} "
                            f"(the settings of {args.method} are: {', '.join(sorted(takes & set(SETTINGS))) or 'none'})")
    preset = {k: v for k, v in PRESETS[args.model].get(args.method, {}).items() if k in takes}
    return preset | given


def make(args: DAArgs):
    """The toyda method object of ``args`` (a ToolError naming the setting when toyda refuses it)."""
    settings = settings_of(args)
    try:
        return make_method(args.method, **settings), settings
    except ValueError as exc:
        raise ToolError(f"method={args.method!r}: {exc}") from None


def truncated(result):
    """The result cut at its divergence index (all time arrays ``[:diverged_at]``); unchanged otherwise."""
    k = result.diverged_at
    if k is None or len(result.x_a) <= k:
        return result
    cut = {f.name: getattr(result, f.name)[:k] for f in dataclasses.fields(result)
           if isinstance(getattr(result, f.name), np.ndarray) and f.name != "info"}
    return dataclasses.replace(result, **cut)


def evaluate(result, obs: Observations, burn_in: float) -> dict[str, float | int]:
    """The metrics of one run: DAPPER's scores when there is truth, innovation statistics always.

    Innovations over the scored times and observed components (NaN-free): mean and RMS of
    ``d_f = y − x_f`` (obs minus forecast) and ``d_a = y − x_a``, and Desroziers et al. (2005)'s
    ``σo² ≈ E[d_a d_f]``. A diverged run is scored over its times before the divergence (all of them
    when the burn-in was not reached); metrics that cannot be computed are left out, never NaN.
    """
    result = truncated(result)
    K = len(result.x_a)
    t = obs.t[:K]
    out: dict[str, float | int] = {"n_obs": int(len(obs.t))}
    if result.diverged_at is not None:
        out["diverged_at_t"] = float(obs.t[min(result.diverged_at, len(obs.t) - 1)])
    if K == 0:
        return out
    if not (t > burn_in).any():
        burn_in = -1.0
        out["scored_from_t"] = float(t[0])
    keep = t > burn_in
    out["n_scored"] = int(keep.sum())
    if obs.x_true is not None:
        part = dataclasses.replace(obs, t=t, y=obs.y[:K], steps=obs.steps[:K], x_true=obs.x_true[:K])
        out |= {k: float(v) for k, v in score(result, part, burn_in).items() if np.isfinite(v)}
    y = obs.y[:K][keep]
    d_f, d_a = y - result.x_f[keep], y - result.x_a[keep]
    seen = np.isfinite(y)
    if seen.any():
        d_f, d_a = d_f[seen], d_a[seen]
        out |= {"omf_mean": float(d_f.mean()), "omf_rms": float(np.sqrt(np.mean(d_f**2))),
                "oma_mean": float(d_a.mean()), "oma_rms": float(np.sqrt(np.mean(d_a**2))),
                "sigma_o_desroziers": float(np.sqrt(max(float(np.mean(d_a * d_f)), 0.0)))}
    return {k: v for k, v in out.items() if not isinstance(v, float) or np.isfinite(v)}


def method_rng(seed: int) -> np.random.Generator:
    """The method's random stream, apart from the twin's (which :func:`twin` draws from the seed)."""
    return np.random.default_rng([seed, 1])


def assimilate(exp: Experiment, obs: Observations, method) -> tuple[Any, dict[str, Any]]:
    """Run ``method`` on the observations; the result and its metrics (with ``wall_s``)."""
    start = time.perf_counter()
    result = truncated(method.assimilate(exp, obs, method_rng(exp.seed)))
    wall = time.perf_counter() - start
    return result, evaluate(result, obs, exp.burn_in) | {"wall_s": wall}


def estimate_seconds(exp: Experiment, obs: Observations, method: str, settings: dict[str, Any]) -> float:
    """A rough run-time estimate (this 2-core machine): model steps × members, plus per-analysis work."""
    return _seconds(exp.model.n, int(np.sum(obs.steps)), len(obs.t), method, settings)


def _seconds(n: int, steps: int, K: int, method: str, settings: dict[str, Any]) -> float:
    """:func:`estimate_seconds` for an ``n``-variable model, ``steps`` model steps and ``K`` analyses."""
    N = settings.get("n_members", 1)
    members = {"oi": 0, "3dvar": 1, "extkf": n + 1, "4dvar": 60}.get(method, N)
    analysis = {"letkf": n * 4e-5, "4dvar": 5e-3, "extkf": 2e-5 + 1e-8 * n**3}.get(method, 3e-5 + 2e-9 * N * N * n)
    return steps * (1.5e-5 + 4e-9 * members * n) + K * analysis


MODEL_SIZE = {"lorenz63": 3, "lorenz96": 40}
"""state variables of each model"""
FIGURES_S = 6.0
"""drawing and saving the figures of one run (time series, error/spread, rank histogram, Hovmöller)"""


def planned_cost(args: SetupArgs, runs: list[tuple[str, dict[str, Any]]]) -> tuple[float, float]:
    """Estimated (bytes, seconds) of running ``runs`` (method, settings) on the experiment ``args``
    describe, from the arguments alone (``ToolSpec.cost``), before the truth is made or a file read.

    A twin's truth run (spin-up to the attractor, then ``n_obs × obs_every`` steps) and every
    method's cycle (:func:`estimate_seconds`); memory is dominated by the ensembles kept at each
    analysis time for the CRPS and the rank histogram (forecast and analysis: 2 K N n numbers).
    A student's file is not read yet: its length is taken as the default ``n_obs`` here, and
    :func:`check_size` checks again once it is read. A twin too long for an interactive call
    (``MAX_SECONDS``) is refused here already, with the same advice as :func:`check_size`."""
    n, ref = MODEL_SIZE[args.model], REFERENCE[args.model]
    K, every = args.n_obs or N_OBS, args.obs_every or ref["obs_every"]
    steps = K * every
    spin_up = round(5 / (args.dt or ref["dt"]))
    cycles = [_seconds(n, steps, K, method, settings) for method, settings in runs]
    if not args.observations and len(runs) == 1:
        _refuse_long(cycles[0], K, *runs[0], files=False, obs_every=every)
    elif not args.observations:
        refuse_long_together(len(runs), sum(cycles))
    seconds = 2.0 + _seconds(n, steps + spin_up, 0, "3dvar", {}) + FIGURES_S + sum(cycles)
    members = max((settings.get("n_members", 1) for _, settings in runs), default=1)
    memory = 64 * 2**20 + 8.0 * (2 * K * members * n + 12 * K * n)
    return memory, seconds


def check_size(exp: Experiment, obs: Observations, method: str, settings: dict[str, Any], files: bool) -> float:
    """Refuse an experiment too long for an interactive call, saying how to shorten it."""
    est = estimate_seconds(exp, obs, method, settings)
    _refuse_long(est, len(obs.t), method, settings, files, exp.obs_every)
    return est


def _refuse_long(est: float, K: int, method: str, settings: dict[str, Any], files: bool, obs_every: int) -> None:
    """A ToolError saying how to shorten an experiment of ``est`` seconds over ``K`` analyses, if too long."""
    if est > MAX_SECONDS:
        k = max(int(K * MAX_SECONDS / est), 1)
        how = [f"a file with at most {k} observation times" if files else f"fewer n_obs (at most about {k})"]
        if "n_members" in settings:
            how.append(f"fewer n_members (now {settings['n_members']})")
        if method == "4dvar":
            how.append("a shorter window")
        if not files and obs_every > 1:
            how.append(f"a smaller obs_every (now {obs_every})")
        raise ToolError(f"this experiment is too long for an interactive call (about {est:.0f} s estimated for "
                        f"{method} over {K} observation times; the cap is {MAX_SECONDS:.0f} s): use "
                        + ", or ".join(how))


def refuse_long_together(runs: int, total: float) -> None:
    """A ToolError when ``runs`` methods together (``total`` s) are too long for an interactive call."""
    if total > MAX_SECONDS:
        raise ToolError(f"these {runs} methods together are too long for an interactive call (about {total:.0f} s "
                        f"estimated; the cap is {MAX_SECONDS:.0f} s): use fewer n_obs, fewer methods or fewer n_members")


def describe(args: DAArgs, settings: dict[str, Any]) -> str:
    """'etkf (n_members=10, inflation=1.02)'."""
    inner = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in settings.items())
    return f"{args.method} ({inner})" if inner else args.method


def experiment_metrics(args: DAArgs, workspace: Workspace | None = None) -> dict[str, Any]:
    """The science of one run_da_experiment call without figures or files (for sweeps): its metrics."""
    method, settings = make(args)
    exp, obs = setup(args, workspace)
    check_size(exp, obs, args.method, settings, bool(args.observations))
    return assimilate(exp, obs, method)[1]
