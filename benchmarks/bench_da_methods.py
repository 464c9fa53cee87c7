"""Every DA method of :mod:`toyda.da` on DAPPER's two reference setups, beside DAPPER's numbers.

Setups (DAPPER's ``mods/Lorenz63/sakov2012.py`` and ``mods/Lorenz96/sakov2008.py``):

- L63 sakov2012: dt 0.01, observations every 25 steps, all components, R = 2 I, 1,000 observation
  times, burn-in 16 time units, X0 = N(x0, 2 I).
- L96 sakov2008: 40 variables, F = 8, dt 0.05, observations every step, all components, R = I,
  1,000 observation times, burn-in 20 time units, X0 = N(x0, 0.001 I).

Each method runs with the settings of DAPPER's preset (its "suggested tuning" comments) on the same
twins (seeds ``SEEDS``); rmse_a is the mean over the seeds of the time-mean analysis RMSE after the
burn-in (DAPPER's rmse.a), wall time the fastest seed's run of the method (the twin not included).
Conventions that differ from DAPPER's and how the settings are translated:

- inflation multiplies the *forecast* anomalies before each analysis; DAPPER multiplies the
  analysis anomalies after it (``post_process``). Same factor per cycle.
- DAPPER's ExtKF inflation is per unit model time; per analysis that is ``infl ** (dt·obs_every)``.
- ``rotate=True`` is DAPPER's ``rot=True`` (random mean-preserving rotation of the anomalies).
- the LETKF's radius is DAPPER's ``loc_rad`` (Gaspari–Cohn half-width √(10/3)·radius).
- PF ``jitter`` and ``resample_threshold`` are DAPPER's ``reg`` and ``NER``.

Goals (issue 13): rmse_a within 10% of DAPPER's or better; wall time at least 2x faster than
DAPPER's published timings (1,000 L63 cycles: 3D-Var 1.3 s, ETKF N=10 2.4 s, 4D-Var 20 s, PF
N=100 2.5 s). Run alone with ``python -m benchmarks.bench_da_methods [--seeds K]`` for the table.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from benchmarks import Row
from toyda.da import make_method
from toyda.da.diagnostics import score
from toyda.experiment import Experiment, get_model, twin

SEEDS = range(10)
SETUPS = {
    "lorenz63": ("L63 sakov2012", dict(obs_every=25, sigma_o=float(np.sqrt(2.0)), n_obs=1000, burn_in=16.0), 0.01),
    "lorenz96": ("L96 sakov2008", dict(obs_every=1, sigma_o=1.0, n_obs=1000, burn_in=20.0), 0.05),
}


@dataclass(frozen=True)
class Case:
    """One method on one setup with DAPPER's preset and published figures."""

    model: str
    method: str
    settings: dict = field(default_factory=dict)
    dapper: str = ""                    # DAPPER's preset, as written in its file
    dapper_rmse: float | None = None    # its expected rmse.a
    dapper_wall: float | None = None    # its wall time for the 1,000 cycles (s), where published
    note: str = ""                      # what the row shows besides DAPPER's preset


CASES = (
    Case("lorenz63", "oi", {}, "OptInterp()", 1.25),
    Case("lorenz63", "3dvar", {"background": "climatology", "b_scale": 0.1}, "Var3D(xB=0.1)", 1.04, 1.3),
    Case("lorenz63", "extkf", {"inflation": round(180.0 ** (0.01 * 25), 3)}, "ExtKF(infl=180)", 0.92),
    Case("lorenz63", "enkf", {"n_members": 10, "inflation": 1.04}, "EnKF('PertObs', N=10, infl=1.04)", 0.65),
    Case("lorenz63", "etkf", {"n_members": 10, "inflation": 1.02, "rotate": True},
         "EnKF('Sqrt', N=10, infl=1.02, rot=True)", 0.60, 2.4),
    Case("lorenz63", "enkf", {"n_members": 10, "inflation": 1.1}, "EnKF('PertObs', N=10, infl=1.04)", 0.65,
         note="our default inflation"),
    Case("lorenz63", "etkf", {"n_members": 10, "inflation": 1.1},
         "EnKF('Sqrt', N=10, infl=1.02, rot=True)", 0.60, 2.4, note="our default: no rotation, inflation 1.1"),
    Case("lorenz63", "4dvar", {"window": 1, "background": "climatology", "b_scale": 0.1}, "Var4D(Lag=1, xB=0.1)", 0.79, 20.0),
    Case("lorenz63", "pf", {"n_members": 100, "resample_threshold": 0.3, "jitter": 2.4},
         "PartFilt(N=100, reg=2.4, NER=0.3)", 0.38, 2.5),
    Case("lorenz96", "oi", {}, "OptInterp()", 0.95),
    Case("lorenz96", "3dvar", {"background": "climatology", "b_scale": 0.02}, "Var3D(xB=0.02)", 0.41),
    Case("lorenz96", "extkf", {"inflation": round(10.0 ** 0.05, 3)}, "ExtKF(infl=10)", 0.24),
    Case("lorenz96", "enkf", {"n_members": 40, "inflation": 1.06}, "EnKF('PertObs', N=40, infl=1.06)", 0.22),
    Case("lorenz96", "etkf", {"n_members": 24, "inflation": 1.013, "rotate": True},
         "EnKF('Sqrt', N=24, infl=1.013, rot=True)", 0.18),
    Case("lorenz96", "letkf", {"n_members": 7, "inflation": 1.04, "localisation_radius": 4.0, "rotate": True},
         "LETKF(N=7, infl=1.04, loc_rad=4, rot=True)", 0.22),
    Case("lorenz96", "letkf", {"n_members": 7, "inflation": 1.04, "localisation_radius": 4.0},
         "LETKF(N=7, infl=1.04, loc_rad=4, rot=True)", 0.22, note="our default: no rotation"),
    Case("lorenz96", "4dvar", {"window": 1, "background": "climatology", "b_scale": 0.02}, "-",
         note="no sakov2008 preset in DAPPER; B as its Var3D"),
    Case("lorenz96", "pf", {"n_members": 100, "resample_threshold": 0.3, "jitter": 2.4}, "-",
         note="no DAPPER preset: a bootstrap PF with 100 particles collapses in 40 dimensions "
              "(Snyder et al. 2008); climatology scores 3.6"),
)


@dataclass(frozen=True)
class Result:
    case: Case
    rmse: list[float]                   # per seed (NaN where the run diverged before the burn-in ended)
    wall: float                         # fastest seed (s)
    diverged: int                       # seeds whose run diverged

    @property
    def rmse_a(self) -> float:
        return float(np.nanmean(self.rmse)) if np.isfinite(self.rmse).any() else float("nan")

    @property
    def ratio(self) -> float | None:
        return None if self.case.dapper_rmse is None else self.rmse_a / self.case.dapper_rmse

    @property
    def speedup(self) -> float | None:
        return None if self.case.dapper_wall is None else self.case.dapper_wall / self.wall


def experiment(model: str, seed: int) -> Experiment:
    """The reference setup of ``model`` with twin seed ``seed``."""
    _, kw, dt = SETUPS[model]
    return Experiment(get_model(model, dt=dt), seed=seed, **kw)


def run(case: Case, seeds=SEEDS, twins: dict | None = None) -> Result:
    """``case`` on each seed's twin (shared between cases through ``twins``)."""
    twins = {} if twins is None else twins
    rmse, walls, div = [], [], 0
    for seed in seeds:
        exp = experiment(case.model, seed)
        obs = twins.setdefault((case.model, seed), twin(exp))
        method = make_method(case.method, **case.settings)
        t0 = time.perf_counter()
        res = method.assimilate(exp, obs, np.random.default_rng(seed))
        walls.append(time.perf_counter() - t0)
        div += res.diverged_at is not None
        rmse.append(score(res, obs, exp.burn_in).get("rmse_a", float("nan")))
    return Result(case, rmse, min(walls), div)


def settings_text(case: Case) -> str:
    return ", ".join(f"{k}={v}" for k, v in case.settings.items()) or "-"


def run_all(seeds=SEEDS) -> list[Result]:
    """Every case; each first runs on a 3-time twin so that compiling and loading the model kernels
    stays out of the timings."""
    for case in CASES:
        exp = dataclasses.replace(experiment(case.model, 0), n_obs=3)
        make_method(case.method, **case.settings).assimilate(exp, twin(exp), np.random.default_rng(0))
    twins: dict = {}
    return [run(case, seeds, twins) for case in CASES]


def table(results: list[Result]) -> str:
    """The Markdown table: method, settings, rmse_a, DAPPER's, ratio, wall times."""
    lines = ["| setup | method | settings | rmse_a | DAPPER preset | DAPPER rmse_a | ratio | wall (s) | DAPPER wall (s) | speed-up |",
             "|---|---|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in results:
        c = r.case
        fmt = lambda v, f: "-" if v is None else format(v, f)   # noqa: E731
        lines.append(f"| {SETUPS[c.model][0]} | {c.method}{' (' + c.note + ')' if c.note else ''} | {settings_text(c)} | {r.rmse_a:.3f}"
                     f"{' (diverged ×' + str(r.diverged) + ')' if r.diverged else ''} | {c.dapper} | "
                     f"{fmt(c.dapper_rmse, '.2f')} | {fmt(r.ratio, '.2f')} | {r.wall:.2f} | "
                     f"{fmt(c.dapper_wall, '.1f')} | {fmt(r.speedup, '.1f')}{'×' if r.speedup else ''} |")
    return "\n".join(lines)


def rows() -> list[Row]:
    results = run_all()
    out = []
    for r in results:
        c = r.case
        area = f"toyda.da {SETUPS[c.model][0]}"
        spread = f"mean of {len(r.rmse)} twins ({min(r.rmse):.3f}–{max(r.rmse):.3f})" + (f"; {c.note}" if c.note else "")
        if c.dapper_rmse is not None:
            out.append(Row(area, f"{c.method} ({settings_text(c)}): rmse_a", r.rmse_a, "RMSE",
                           f"<= {1.1 * c.dapper_rmse:.3f} (DAPPER {c.dapper_rmse} + 10%)",
                           bool(r.ratio <= 1.1), f"DAPPER {c.dapper}; ratio {r.ratio:.2f}; {spread}; wall {r.wall:.2f} s"))
        else:
            out.append(Row(area, f"{c.method} ({settings_text(c)}): rmse_a", r.rmse_a, "RMSE", "", None,
                           f"{spread}; wall {r.wall:.2f} s"))
        if c.dapper_wall is not None:
            out.append(Row(area, f"{c.method} ({settings_text(c)}): wall time, 1000 cycles", r.wall, "s",
                           f"<= {c.dapper_wall / 2:.2f} s (DAPPER {c.dapper_wall} s / 2)", bool(r.speedup >= 2),
                           f"{r.speedup:.1f}x faster than DAPPER; fastest of {len(SEEDS)} seeds, numba RK4 kernels"))
    return out


def main(argv: list[str]) -> int:
    seeds = SEEDS
    if "--seeds" in argv:
        seeds = range(int(argv[argv.index("--seeds") + 1]))
    print(table(run_all(seeds)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
