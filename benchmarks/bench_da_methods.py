"""Every DA method on DAPPER's reference setups, next to DAPPER's published rmse_a and wall time.

sakov2012 (Lorenz-63): dt 0.01, obs every 25 steps, all observed, R = 2I, 1,000 obs times, burn-in 16.
sakov2008 (Lorenz-96): n 40, F 8, dt 0.05, obs every step, all observed, R = I, 1,000 obs times, burn-in 20.
The settings are the tools' presets (tools.dasetup.PRESETS); goals: within 10% of DAPPER's rmse_a or
better, and at least 2x faster than DAPPER where it publishes a time.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import Row
from tools.dasetup import DAPPER, PRESETS, REFERENCE
from toyda.da import make_method
from toyda.da.diagnostics import score
from toyda.experiment import Experiment, get_model, twin

DAPPER_WALL_S = {("lorenz63", "3dvar"): 1.3, ("lorenz63", "etkf"): 2.4, ("lorenz63", "4dvar"): 20.0,
                 ("lorenz63", "pf"): 2.5}
METHODS = {"lorenz63": ["oi", "3dvar", "extkf", "enkf", "etkf", "4dvar", "pf"],
           "lorenz96": ["oi", "3dvar", "extkf", "enkf", "etkf", "letkf"]}


def rows() -> list[Row]:
    out = []
    for model, names in METHODS.items():
        ref = REFERENCE[model]
        exp = Experiment(get_model(model, dt=ref["dt"]), obs_every=ref["obs_every"], sigma_o=ref["sigma_o"],
                         n_obs=1000, burn_in=ref["burn_in"], seed=3)
        obs = twin(exp)
        for name in names:
            settings = PRESETS[model].get(name, {})
            t0 = time.perf_counter()
            result = make_method(name, **settings).assimilate(exp, obs, np.random.default_rng(1))
            wall = time.perf_counter() - t0
            rmse = score(result, obs, exp.burn_in).get("rmse_a", float("nan"))
            published = DAPPER.get((model, name))
            theirs = DAPPER_WALL_S.get((model, name))
            ok = published is not None and rmse <= 1.1 * published and (theirs is None or wall <= theirs / 2)
            note = (f"{ref['setup']}, {', '.join(f'{k}={v}' for k, v in settings.items()) or 'no settings'}; "
                    f"DAPPER rmse_a {published}" + (f", DAPPER {theirs:g} s; ours {wall:.2f} s" if theirs else
                                                     f"; ours {wall:.2f} s"))
            out.append(Row(f"toyda.da ({model})", f"{name} rmse_a (1,000 obs times)", rmse, "RMSE",
                           f"<= {1.1 * published:.3g}" if published else "-", ok, note))
    return out
