"""The DA methods lab: ``run_da_experiment`` and ``compare_da_methods`` on Lorenz-63 and Lorenz-96.

A twin experiment (truth and observations made by :func:`toyda.experiment.twin`) or the student's
own files (:mod:`tools.dafiles`) are assimilated by a method of :mod:`toyda.da`; the scores are
DAPPER's (rmse_a, rmse_f, spread_a) plus CRPS, and innovation statistics that need no truth.
Left-out settings take the DAPPER reference setups (sakov2012 for Lorenz-63, sakov2008 for
Lorenz-96) and their tuned method settings (:data:`tools.dasetup.PRESETS`). The science path is
:mod:`tools.dasetup`; this module draws, summarises, records and declares the tools.
"""

from __future__ import annotations

import json
import math
import pprint
import re
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from tools import daemulator, daplots
from tools.base import Example, RunContext, ToolError, ToolSpec
from tools.dafiles import state_names, write_csv
from tools.dasetup import (DAPPER, N_OBS, PRESETS, REFERENCE, SETTINGS, DAArgs, SetupArgs, arg,
                           assimilate, check_size, describe, estimate_seconds, make, planned_cost,
                           refuse_long_together, settings_of, setup)
from toyda.da import METHODS
from toyda.da.diagnostics import rank_histogram
from toyda.experiment import Experiment, Observations


def _short(label: str) -> str:
    """'etkf (n_members=10, inflation=1.02)' -> 'etkf\nN=10, infl=1.02' for a figure's tick label."""
    for long, short in (("n_members", "N"), ("inflation", "infl"), ("localisation_radius", "radius"),
                        ("background=", ""), ("b_scale", "b")):
        label = label.replace(long, short)
    return label.replace(" (", "\n").rstrip(")")


def _setup_words(args: SetupArgs, exp: Experiment, obs: Observations) -> str:
    src = (f"your observations {args.observations}" + (" with truth" if obs.x_true is not None else " (no truth)")
           if args.observations else f"a twin ({REFERENCE[args.model]['setup']}-style: obs every "
                                     f"{'step' if exp.obs_every == 1 else f'{exp.obs_every} steps'}, "
                                     f"observed {exp.observed})")
    return (f"{args.model} (dt {exp.model.dt:g}), {src}, {len(obs.t)} observation times, σo = {exp.sigma_o:.4g}, "
            f"burn-in {exp.burn_in:g}")


def _draw(ctx: RunContext, exp: Experiment, obs: Observations, result, metrics: dict[str, Any], label: str) -> None:
    K = len(result.x_a)
    if K == 0:
        return
    x_true = obs.x_true[:K] if obs.x_true is not None else None
    keep = obs.t[:K] > exp.burn_in if (obs.t[:K] > exp.burn_in).any() else np.ones(K, bool)
    ranks = rank_histogram(result.E_a[keep], x_true[keep]) if result.E_a is not None and x_true is not None else None
    figures = daplots.experiment_figures(
        obs.t[:K], obs.y[:K], result.x_a, result.x_f, state_names(exp.model.n), f"{label} on {exp.model.name}",
        sigma_o=exp.sigma_o, burn_in=exp.burn_in, x_true=x_true, E_a=result.E_a, spread_a=result.spread_a,
        ranks=ranks, t_div=metrics.get("diverged_at_t"))
    for name, fig in figures.items():
        ctx.save_figure(fig, name)


def _save_twin(ctx: RunContext, exp: Experiment, obs: Observations) -> None:
    """The twin's observations and truth as CSV, in the format observations=/truth= read."""
    write_csv(ctx.file("observations.csv"), obs.t, obs.y)
    if obs.x_true is not None:
        t0 = [0.0] if obs.x0_true is not None else []
        x0 = [obs.x0_true] if obs.x0_true is not None else []
        write_csv(ctx.file("truth.csv"), np.concatenate([t0, obs.t]), np.concatenate([x0, obs.x_true]) if x0 else obs.x_true)


def _verdict(m: dict[str, Any], sigma_o: float, ref: float | None) -> str:
    if "rmse_a" in m:
        s = f"rmse_a {m['rmse_a']:.3f} ({m['rmse_a'] / sigma_o:.2f} σo), rmse_f {m.get('rmse_f', float('nan')):.3f}"
        if "spread_a" in m:
            s += f", spread_a {m['spread_a']:.3f} (spread/error {m['spread_a'] / max(m['rmse_a'], 1e-12):.2f})"
        if "crps_a" in m:
            s += f", CRPS {m['crps_a']:.3f}"
        if ref is not None:
            s += f"; DAPPER's published value for this setup is {ref:g}"
        return s
    return "no truth, so no RMSE" if "diverged_at_t" not in m else "no analysis before the divergence to score"


def _innovation_words(m: dict[str, Any], sigma_o: float) -> str:
    if "sigma_o_desroziers" not in m:
        return ""
    est = m["sigma_o_desroziers"]
    verdict = ("consistent with it" if abs(est / sigma_o - 1) < 0.15 else
               "so the given σo looks too large" if est < sigma_o else "so the given σo looks too small")
    return (f" Innovations: obs−forecast mean {m['omf_mean']:+.3f}, RMS {m['omf_rms']:.3f}; obs−analysis mean "
            f"{m['oma_mean']:+.3f}, RMS {m['oma_rms']:.3f}; Desroziers σo estimate {est:.3f} against the given "
            f"{sigma_o:.3g}, {verdict}.")


def _reference(args: DAArgs, exp: Experiment, settings: dict[str, Any]) -> float | None:
    plain = (args.observations is None and args.dt is None and args.obs_every is None and args.sigma_o is None
             and args.observed in (None, "all") and exp.n_obs >= N_OBS)
    same = settings == {k: v for k, v in PRESETS[args.model].get(args.method, {}).items() if k in settings}
    return DAPPER.get((args.model, args.method)) if plain and same else None


def run_da_experiment(args: DAArgs, ctx: RunContext) -> tuple[str, dict[str, Any]]:
    """Run one classical data-assimilation method on Lorenz-63 or Lorenz-96 and score it.

    Methods: 'oi' (optimal interpolation), '3dvar', 'extkf' (extended Kalman filter), 'enkf'
    (stochastic ensemble Kalman filter), 'etkf' (square-root ensemble transform KF), 'letkf'
    (localised ETKF, lorenz96), '4dvar' (strong-constraint, window in observation intervals), 'pf'
    (bootstrap particle filter). A twin experiment by default (DAPPER's reference setups: L63 dt 0.01,
    obs every 25 steps, σo = √2; L96 dt 0.05, obs every step, σo = 1; 1,000 observation times), or the
    student's own observations= (CSV/NetCDF, gaps allowed) with an optional truth=. Settings left out
    take tuned presets (e.g. ETKF N=10 inflation 1.02 on L63; LETKF N=7, radius 4 on L96).

    Use it for "run an EnKF on Lorenz-63 with 20 members", "4D-Var on Lorenz-96", "assimilate my own
    observations". Returns rmse_a, rmse_f (time means after burn-in, as DAPPER), spread_a and crps_a
    for ensembles, wall_s, and innovation statistics (obs−forecast, obs−analysis, Desroziers σo) that
    need no truth; figures of the analysis against truth and observations, error and spread, the rank
    histogram and, for Lorenz-96, a Hovmöller diagram. A diverging method is reported with the time.

    forecast_model='emulator' (Lorenz-63) uses the learned network of train_lorenz63_emulator
    (checkpoint=, default the latest) as the forecast model, beside the true model on the same
    observations: rmse_a with each, without the rollout fine-tuning, and with inflation retuned for
    model error, and a figure of both analyses against the truth ("use the emulator as the forecast
    model", "ETKF with the learned model").
    """
    daemulator.check(args)
    method, settings = make(args)
    exp, obs = setup(args, ctx.workspace, ctx.resolved)
    check_size(exp, obs, args.method, settings, bool(args.observations))
    _record(ctx, args, exp)
    ctx.resolved.update(settings)
    if not args.observations:
        _save_twin(ctx, exp, obs)
    label = describe(args, settings)
    if args.forecast_model == "emulator":
        return daemulator.run(args, ctx, exp, obs, method, settings, label, _draw)
    ctx.progress(0.1, f"assimilating {len(obs.t)} observation times with {args.method}")
    result, m = assimilate(exp, obs, method)
    if ctx.figures_enabled:            # off for each point of a sweep: only the numbers are wanted
        ctx.progress(0.85, "drawing figures")
        _draw(ctx, exp, obs, result, m, label)
    div = (f" It DIVERGED at t = {m['diverged_at_t']:.4g}: the figures and scores cover the times before."
           if "diverged_at_t" in m else "")
    summary = (f"{label} on {_setup_words(args, exp, obs)}: {_verdict(m, exp.sigma_o, _reference(args, exp, settings))}; "
               f"{m['wall_s']:.2f} s.{div}{_innovation_words(m, exp.sigma_o)}")
    return summary, {"model": args.model, "method": args.method, **m, "sigma_o": exp.sigma_o,
                     "diverged": int("diverged_at_t" in m)}


class CompareArgs(SetupArgs):
    methods: str = arg("3dvar,etkf,pf", phrases=("methods", "compare", "versus"),
                       description="the methods and their settings, all on the same truth and observations: a comma list "
                                   "such as '3dvar,etkf,pf', or JSON '[{\"method\": \"etkf\", \"n_members\": 10, "
                                   "\"inflation\": 1.02}, {\"method\": \"3dvar\"}]' (at most 8; settings as in run_da_experiment)")


MAX_METHODS = 8


def parse_methods(text: str) -> list[dict[str, Any]]:
    """``'3dvar, etkf and the particle filter'`` or a JSON list into ``[{"method": ..., settings...}]``."""
    from tools.base import values_of  # noqa: PLC0415

    text = text.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ToolError(f"methods: not valid JSON ({exc.msg} at character {exc.pos}); write e.g. "
                            '[{"method": "etkf", "n_members": 10}, {"method": "3dvar"}]') from None
    else:
        items = [p for p in re.split(r"\s*(?:,|;|\band\b|\bvs\.?|\bversus\b)\s*", text.lower()) if p.strip()]
    aliases = {alias: name for name, words in values_of(DAArgs, "method").items() for alias in [name, *words]}
    entries = []
    for i, item in enumerate(items if isinstance(items, list) else [None]):
        if isinstance(item, str):
            key = re.sub(r"^(?:the|a|an)\s+", "", item.strip().lower())
            if key not in aliases:
                raise ToolError(f"methods[{i}] = {item!r} is not a method; the methods are: {', '.join(METHODS)}")
            item = {"method": aliases[key]}
        if not isinstance(item, dict) or "method" not in item:
            raise ToolError(f"methods[{i}] must be a method name or an object with a 'method' key, got {item!r}")
        extra = set(item) - {"method", *SETTINGS}
        if extra:
            raise ToolError(f"methods[{i}]: unknown setting(s) {', '.join(sorted(extra))}; allowed: method, {', '.join(SETTINGS)}")
        entries.append(item)
    if not 1 <= len(entries) <= MAX_METHODS:
        raise ToolError(f"methods: give between 1 and {MAX_METHODS} methods, got {len(entries)}")
    return entries


def method_args(args: SetupArgs, entries: list[dict[str, Any]]) -> list[DAArgs]:
    """One validated :class:`DAArgs` per entry, on the shared setup; a ToolError naming the entry otherwise."""
    shared = args.model_dump(exclude={"methods"})
    out = []
    for i, entry in enumerate(entries):
        try:
            out.append(DAArgs.model_validate(shared | entry))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))!r} = {e.get('input')!r} is not allowed: {e['msg']}"
                                 for e in exc.errors())
            raise ToolError(f"methods[{i}] {entry}: {problems} (see run_da_experiment for each setting)") from None
    return out


def compare_da_methods(args: CompareArgs, ctx: RunContext) -> tuple[str, dict[str, Any]]:
    """Compare several DA methods on the SAME truth and observations (Lorenz-63 or Lorenz-96).

    `methods` lists them with their settings, e.g. '3dvar,etkf,pf' or
    '[{"method": "3dvar"}, {"method": "etkf", "n_members": 10, "inflation": 1.02}]'; the experiment
    arguments are those of run_da_experiment (twin by default, or observations=/truth= files).
    Use it for "compare 3D-Var, ETKF and the particle filter on Lorenz-96", "3D-Var vs 4D-Var", "which
    method is best for my data". Returns one table (rmse_a, rmse_f, spread, wall time per method; without
    truth the obs−forecast RMS ranks them) and one figure of rmse_a and wall time per method.
    """
    runs = [(a, *make(a)) for a in method_args(args, parse_methods(args.methods))]
    exp, obs = setup(args, ctx.workspace, ctx.resolved)
    refuse_long_together(len(runs), sum(estimate_seconds(exp, obs, a.method, s) for a, _, s in runs))
    _record(ctx, args, exp)
    if not args.observations:
        _save_twin(ctx, exp, obs)
    rows, keys = [], []
    for i, (a, method, settings) in enumerate(runs):
        ctx.progress(0.05 + 0.85 * i / len(runs), f"{a.method} ({i + 1} of {len(runs)})")
        _, m = assimilate(exp, obs, method)
        key = a.method if a.method not in keys else f"{a.method}_{keys.count(a.method) + 1}"
        keys.append(a.method)
        rows.append((key, describe(a, settings), m))
    crit = "rmse_a" if obs.x_true is not None else "omf_rms"
    order = sorted(range(len(rows)), key=lambda i: ("diverged_at_t" in rows[i][2], rows[i][2].get(crit, math.inf)))
    labels = [_short(r[1]) for r in rows]
    ctx.save_figure(daplots.method_comparison(
        labels, [r[2].get(crit, 0.0) for r in rows], [r[2]["wall_s"] for r in rows], exp.sigma_o,
        f"{len(rows)} methods on the same {'truth and ' if obs.x_true is not None else ''}observations: "
        f"{args.model}, σo = {exp.sigma_o:.3g}", diverged=["diverged_at_t" in r[2] for r in rows],
        rmse_f=[r[2].get("rmse_f", 0.0) for r in rows] if crit == "rmse_a" else None,
        score_name="analysis RMSE (rmse_a)" if crit == "rmse_a" else "RMS obs − forecast (omf_rms)"), "comparison")
    metrics: dict[str, Any] = {"model": args.model, "n_methods": len(rows), "sigma_o": exp.sigma_o, "criterion": crit}
    for key, _, m in rows:
        for name in ("rmse_a", "rmse_f", "spread_a", "crps_a", "omf_rms", "sigma_o_desroziers", "wall_s", "diverged_at_t"):
            if name in m:
                metrics[f"{name}_{key}"] = m[name]
    best, worst = rows[order[0]], rows[order[-1]]
    metrics |= {"best_method": best[0], f"best_{crit}": best[2].get(crit, 0.0)}
    table = "\n".join(f"| {label} | " + " | ".join(f"{m[c]:.3f}" if c in m else "–" for c in (crit, "rmse_f", "spread_a"))
                      + f" | {m['wall_s']:.2f} |" + (f" diverged at t = {m['diverged_at_t']:.3g}" if "diverged_at_t" in m else "")
                      for _, label, m in (rows[i] for i in order))
    gap = (f", {worst[2][crit] / max(best[2][crit], 1e-12):.2f}× lower than {'the worst, ' if len(rows) > 2 else ''}"
           f"{worst[1]} ({worst[2][crit]:.3f})"
           if len(rows) > 1 and crit in worst[2] and crit in best[2] else "")
    summary = (f"On {_setup_words(args, exp, obs)}, the best by {crit} is {best[1]}: {best[2].get(crit, float('nan')):.3f} "
               f"({best[2].get(crit, 0.0) / exp.sigma_o:.2f} σo){gap}.\n"
               f"| method | {crit} | rmse_f | spread_a | wall_s |\n|---|---|---|---|---|\n{table}")
    return summary, metrics


def _record(ctx: RunContext, args: SetupArgs, exp: Experiment) -> None:
    """Write the defaults that were filled in into the run record, so reproduce.py is exact."""
    ctx.resolved.update({"dt": exp.model.dt, "sigma_o": exp.sigma_o, "burn_in": exp.burn_in})
    if not args.observations:
        ctx.resolved.update({"obs_every": exp.obs_every, "observed": exp.observed, "n_obs": exp.n_obs})


def _script(record: dict[str, Any], methods: list[tuple[str, dict[str, Any]]]) -> str:
    """A reproduce.py that calls toyda directly: model, experiment, observations, method(s), scores."""
    r = record
    head = ""
    if r.get("observations"):
        if not all(Path(r[k]).is_absolute() for k in ("observations", "truth") if r.get(k)):
            # a session's files are recorded relative to its workspace: the folder two above this script
            head = "from pathlib import Path\n\nWORKSPACE = Path(__file__).resolve().parents[2]\n"
        where = lambda k: repr(r[k]) if Path(r[k]).is_absolute() else f"WORKSPACE / {r[k]!r}"  # noqa: E731
        truth = f", truth={where('truth')}" if r.get("truth") else ""
        data = (f"obs = read_observations({where('observations')}, model.n, model.dt{truth})  # your files, checked\n"
                f"exp = Experiment(model=model, obs_every=int(np.median(obs.steps)), observed='all', sigma_o={r['sigma_o']!r},\n"
                f"                 n_obs=len(obs.t), burn_in={r['burn_in']!r}, seed={r['seed']!r})\n")
    else:
        data = (f"exp = Experiment(model=model, obs_every={r['obs_every']!r}, observed={r['observed']!r}, "
                f"sigma_o={r['sigma_o']!r},\n                 n_obs={r['n_obs']!r}, burn_in={r['burn_in']!r}, "
                f"seed={r['seed']!r})\nobs = twin(exp)  # truth from the model, y = x + N(0, σo²) where observed\n")
    if r.get("forecast_model") == "emulator":
        data += ("\n# the learned emulator as the forecast model, on its own clock (network steps per interval)\n"
                 "from toyda.emulator import load\nfrom toyda.emulated import emulated_model, on_emulator_clock\n\n"
                 f"emu = emulated_model(load({r['checkpoint']!r}, device='cpu'), model.x0_variance)\n"
                 "obs = on_emulator_clock(obs, model.dt, emu.dt)\n"
                 "exp = dataclasses.replace(exp, model=emu, obs_every=int(obs.steps[0]), observed='all')\n")
    return (
        "import dataclasses\nimport time\n\nimport numpy as np\n\n"
        "from tools.dasetup import evaluate  # rmse_a/rmse_f/spread_a/crps_a (toyda.da.diagnostics) + innovation statistics\n"
        "from tools.dafiles import read_observations\n"
        "from toyda.da import make_method\n"
        "from toyda.experiment import Experiment, get_model, twin\n"
        f"{head}\n"
        f"model = get_model({r['model']!r}, dt={r['dt']!r})\n{data}\n"
        f"for name, settings in {pprint.pformat(methods, sort_dicts=False)}:\n"
        "    method = make_method(name, **settings)\n"
        "    start = time.perf_counter()\n"
        f"    result = method.assimilate(exp, obs, np.random.default_rng([{r['seed']!r}, 1]))  # the method's own stream\n"
        "    wall_s = time.perf_counter() - start\n"
        "    print(f'{name} {settings}: wall_s = {wall_s:.3f}')\n"
        "    for key, value in evaluate(result, obs, exp.burn_in).items():\n"
        "        print(f'{name}: {key} = {value}')\n"
    )


def run_cost(args: DAArgs) -> tuple[float, float]:
    """Estimated (bytes, seconds) of run_da_experiment (``ToolSpec.cost``); with the emulator as the forecast
    model, its runs beside the true model's are added."""
    settings = settings_of(args)
    memory, seconds = planned_cost(args, [(args.method, settings)])
    if args.forecast_model == "emulator":
        seconds += daemulator.planned_seconds(args, settings)
    return memory, seconds


def compare_cost(args: CompareArgs) -> tuple[float, float]:
    """Estimated (bytes, seconds) of compare_da_methods: every method on the same experiment."""
    return planned_cost(args, [(a.method, settings_of(a)) for a in method_args(args, parse_methods(args.methods))])


def reproduce_run(record: dict[str, Any]) -> str:
    """reproduce.py of run_da_experiment."""
    args = DAArgs.model_validate(record)
    return _script(record, [(args.method, settings_of(args))])


def reproduce_compare(record: dict[str, Any]) -> str:
    """reproduce.py of compare_da_methods."""
    args = CompareArgs.model_validate(record)
    return _script(record, [(a.method, settings_of(a)) for a in method_args(args, parse_methods(args.methods))])


_METHOD_WORDS = (r"\benkf\b|\betkf\b|\bletkf\b|ensemble kalman|ensemble transform|particle filter|bootstrap filter"
                 r"|\b4d-? ?var\b|four[- ]dimensional variational|extended kalman|\bekf\b|\bextkf\b|optimal interpolation"
                 r"|locali[sz]ation radius|inflation|square[- ]root (?:enkf|filter)|\bsqrt enkf")
_NAMES = ((r"\benkf\b|ensemble kalman filter|stochastic enkf|perturbed[- ]obs\w*", "enkf"),
          (r"\bletkf\b|local(?:ised|ized)? (?:etkf|ensemble transform)", "letkf"),
          (r"\betkf\b|ensemble transform|square[- ]root (?:enkf|filter)", "etkf"),
          (r"\b4d-? ?var\b|four[- ]dimensional variational", "4dvar"),
          (r"\b3d-? ?var\b|three[- ]dimensional variational", "3dvar"),
          (r"particle filter|\bpf\b|bootstrap filter|particles", "pf"),
          (r"extended kalman|\bekf\b|\bextkf\b", "extkf"),
          (r"optimal interpolation|\boi\b", "oi"))


def read_methods(text: str) -> dict[str, str]:
    """The methods a comparison request names, in order, each with the settings written after it
    ("ETKF with 10 members and inflation 1.02 against 3D-Var")."""
    t = text.lower().replace("_", " ")
    hits = sorted({m.start(): (m.end(), name) for rx, name in _NAMES for m in re.finditer(rx, t)}.items())
    found: list[tuple[str, str]] = []
    for i, (start, (end, name)) in enumerate(hits):
        if any(n == name for n, _ in found) or any(start < e and s < end for s, (e, _) in hits[:i]):
            continue
        nxt = hits[i + 1][0] if i + 1 < len(hits) else len(t)
        found.append((name, t[end:nxt]))
    if not found:
        return {}
    entries = []
    for name, rest in found:
        entry: dict[str, Any] = {"method": name}
        for key, rx, cast in (("n_members", r"(\d+)\s*(?:members|particles)", int),
                              ("inflation", r"inflation\s*(?:of|=|:)?\s*(\d+(?:\.\d+)?)", float),
                              ("localisation_radius", r"locali[sz]ation(?: radius)?\s*(?:of|=|:)?\s*(\d+(?:\.\d+)?)", float)):
            m = re.search(rx, rest)
            if m:
                entry[key] = cast(m.group(1))
        entries.append(entry)
    if all(len(e) == 1 for e in entries):
        return {"methods": ",".join(e["method"] for e in entries)}
    return {"methods": json.dumps(entries)}



_LETTERS = r"[xyz](?:\s*(?:,|and|&)?\s*[xyz]){0,2}"
_OBSERVED_SAID = (
    (re.compile(r"\bobserved\s*[=:]\s*([a-z]+(?::\d+)?)"), lambda m: m.group(1)),
    (re.compile(r"\bevery (?:(other)|(\d+)(?:st|nd|rd|th)?) (?:variable|component|grid ?point|point|site)s?\b"),
     lambda m: f"every:{2 if m.group(1) else int(m.group(2))}"),
    (re.compile(r"\b(\d+) random(?:ly chosen)? (?:variables|components|points)\b|\brandom (\d+) (?:variables|components)\b"),
     lambda m: f"random:{int(m.group(1) or m.group(2))}"),
    (re.compile(rf"(?:\bobserv\w*|\bonly)\s+(?:only\s+)?(?:the\s+)?({_LETTERS})(?![\w.])(?!\s*=)"),
     lambda m: "".join(c for c in "xyz" if c in m.group(1))),
    (re.compile(rf"(?<![\w.])({_LETTERS})(?:\s+(?:components?|variables?))?\s+(?:is |are )?(?:only )?observed\b"),
     lambda m: "".join(c for c in "xyz" if c in m.group(1))),
)
_NO_INFLATION = re.compile(r"\b(?:without|no|zero|switch(?:ed)? off|turn(?:ed)? off)\s+(?:any\s+)?(?:covariance\s+|multiplicative\s+)?inflation\b"
                           r"|\binflation\s+(?:off|switched off|turned off)\b")
_WINDOW = re.compile(r"\b(\d+)[- ](?:cycle|interval|observation[- ]interval|obs[- ]interval|step|time)s?[- ](?:long\s+)?window\b"
                     r"|\bwindow\s+(?:of|=|:)?\s*(\d+)\s+(?:cycles|intervals|observation intervals)\b")


def read_setup(text: str) -> dict[str, Any]:
    """What a request says about the experiment that phrases alone cannot: the observed components
    ("only x and z observed", "every 2nd variable", "5 random components"), a 4D-Var window written
    before its word ("a 5-cycle window") and inflation switched off ("without inflation": 1)."""
    t = text.lower().replace("_", " ")
    out: dict[str, Any] = {}
    for rx, value in _OBSERVED_SAID:
        m = rx.search(t)
        if m:
            out["observed"] = value(m)
            break
    m = _WINDOW.search(t)
    if m:
        out["window"] = int(m.group(1) or m.group(2))
    named = {name for rx, name in _NAMES if re.search(rx, t)}
    if _NO_INFLATION.search(t) and (not named or named & {"enkf", "etkf", "letkf", "extkf"}):
        out["inflation"] = 1.0
    return out


def read_comparison(text: str) -> dict[str, Any]:
    """The methods of a comparison and the shared setup it states."""
    setup = {k: v for k, v in read_setup(text).items() if k in SetupArgs.model_fields}
    return setup | read_methods(text)

TOOLS = (
    ToolSpec(
        "run_da_experiment", run_da_experiment, DAArgs,
        keywords=((6, _METHOD_WORDS), (6, r"lorenz[- ]?96|\bl-?96\b"),
                  (6, r"\b3d-? ?var\b.*\blorenz|\blorenz.*\b3d-? ?var\b|da method|assimilation method"
                      r"|my own (?:lorenz[- ]?\d\d )?(?:observations|data)|observations=|\.csv\b"),
                  (9, r"(?:emulator|learned (?:forecast )?model|network|surrogate) as (?:the |a )?forecast model"
                      r"|(?:assimilat\w*|\bda\b|etkf|enkf|4d-? ?var|3d-? ?var|filter)\b.*\b(?:with|using|through) (?:the |a )?"
                      r"(?:learned (?:forecast )?model|emulator|network)")),
        topic="data assimilation methods EnKF 4D-Var particle filter",
        figures=("timeseries", "error_spread", "rank_histogram", "hovmoeller", "emulator_vs_true"),
        examples=(
            Example("run an EnKF on lorenz 63 with 20 members", {"method": "enkf", "model": "lorenz63", "n_members": 20}),
            Example("run the LETKF on Lorenz-96 with 7 members and localization radius 4",
                    {"method": "letkf", "model": "lorenz96", "n_members": 7, "localisation_radius": 4.0}),
            Example("4D-Var on Lorenz-63 with a window of 2 observation intervals", {"method": "4dvar", "window": 2}),
            Example("particle filter with 200 particles on lorenz 63", {"method": "pf", "n_members": 200}),
            Example("run 3D-Var on my own Lorenz-63 observations obs.csv", {"method": "3dvar", "observations": "obs.csv"}),
            Example("ETKF with inflation 1.05 and observation error 2", {"method": "etkf", "inflation": 1.05, "sigma_o": 2.0}),
            Example("use the emulator as the forecast model in the ETKF", {"method": "etkf", "forecast_model": "emulator"}),
        ),
        reproduce=reproduce_run, cost=run_cost,
        read=read_setup,
        questions=(r"^how (?:well|good|accurate\w*|badly|fast) (?:does|do|would|will|can|is|are)\b",
                   r"^what (?:rmse|error|analysis error|accuracy) (?:does|do|would|will|can)\b"),
    ),
    ToolSpec(
        "compare_da_methods", compare_da_methods, CompareArgs,
        keywords=((7, r"\bcompar\w*\b.*(?:" + _METHOD_WORDS + r"|\b3d-? ?var\b|\bpf\b|da methods|assimilation methods|filters)"),
                  (7, r"(?:\b3d-? ?var|\b4d-? ?var|enkf|etkf|letkf|particle filter)\b.*\b(?:vs\.?|versus|against|or)\b.*"
                      r"(?:\b3d-? ?var|\b4d-? ?var|enkf|etkf|letkf|particle filter|\bpf)\b"),
                  (7, r"difference between (?:3d-? ?var|4d-? ?var|enkf|etkf|the enkf|a particle filter)")),
        topic="3D-Var 4D-Var EnKF particle filter comparison",
        figures=("comparison",),
        examples=(
            Example("compare 3dvar, etkf and the particle filter on lorenz 96", {"methods": "3dvar,etkf,pf", "model": "lorenz96"}),
            Example("Explain the difference between 3D-Var and 4D-Var and show me", {"methods": "3dvar,4dvar"}),
            Example("compare ETKF with 10 members and inflation 1.02 against 3D-Var",
                    {"methods": '[{"method": "etkf", "n_members": 10, "inflation": 1.02}, {"method": "3dvar"}]'}),
        ),
        reproduce=reproduce_compare, cost=compare_cost,
        read=read_comparison,
        questions=(r"\bwhich (?:da |assimilation )?(?:method|filter|scheme|one)s? (?:is|are|does|do|works?|gives?|performs?)"
                   r" (?:the )?(?:best|better|most accurate|lowest)",
                   r"\b(?:does|do|can|would) (?:the |an? )?(?:\w+[- ]?){1,3} (?:beat|outperform|do better than)\b"),
    ),
)
