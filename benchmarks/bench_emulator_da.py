"""The learned Lorenz-63 emulator as the forecast model inside DA, beside the true model.

The emulator is trained as ``train_lorenz63_emulator`` trains it (ORIGEN reconstruction x^a of a
5,000-step twin, one training call giving the one-step model and its rollout-fine-tuned version).
Then ETKF (N = 10) and 3D-Var run on DAPPER's sakov2012 L63 setup (dt 0.01, observations every 25
steps, σo = √2, 1,000 times, burn-in 16) on the same twins (``SEEDS``) with the true model, the
fine-tuned emulator and the one-step emulator (25 network steps per observation interval). The
ETKF runs at the true model's preset inflation 1.1 and at the best of ``INFLATIONS`` for each
model (tuned on rmse_a, as DAPPER's presets are). rmse_a is the mean over the seeds.
Run alone with ``python -m benchmarks.bench_emulator_da``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from benchmarks import Row
from benchmarks.bench_learning import _emulator_data
from toyda import emulated
from toyda import emulator as emu
from toyda import lorenz63 as l63
from toyda.da import make_method
from toyda.da.diagnostics import score
from toyda.experiment import Experiment, get_model, twin

AREA = "toyda.emulated"
SEEDS = range(3)
INFLATIONS = (1.1, 1.25, 1.5, 1.8)
SETUP = "L63 sakov2012 (obs every 25 steps, σo = √2, 1,000 times), ETKF N=10"


def _rmse(exp: Experiment, model, method, seed: int) -> float:
    obs = twin(dataclasses.replace(exp, seed=seed))
    if model is not None:
        exp = dataclasses.replace(exp, model=model, observed="all")
        obs = emulated.on_emulator_clock(obs, 0.01, model.dt)
    res = method.assimilate(exp, obs, np.random.default_rng([seed, 1]))
    if res.diverged_at is not None:
        return float("inf")
    return float(score(res, obs, exp.burn_in)["rmse_a"])


def rows() -> list[Row]:
    truth, xa = _emulator_data(l63.X0, 0)
    fine = emu.train_emulator(xa, emu.TRAINING_DATA_DEFAULTS["dt"], rollout_steps=emu.DEFAULT_ROLLOUT_STEPS, seed=0)
    models = {"true model": None, f"emulator, fine-tuned (K={fine.rollout_steps})": emulated.emulated_model(fine),
              "emulator, one-step only": emulated.emulated_model(fine.one_step)}
    exp = Experiment(get_model("lorenz63", dt=0.01), obs_every=25, sigma_o=float(np.sqrt(2.0)), n_obs=1000,
                     burn_in=16.0)
    out: list[Row] = []
    true_best = None
    for label, model in models.items():
        by_infl = {f: float(np.mean([_rmse(exp, model, make_method("etkf", n_members=10, inflation=f), s)
                                     for s in SEEDS])) for f in INFLATIONS}
        best = min(by_infl, key=by_infl.get)
        var3d = float(np.mean([_rmse(exp, model, make_method("3dvar", background="climatology", b_scale=0.1), s)
                               for s in SEEDS]))
        true_best = by_infl[best] if model is None else true_best
        ratio = "" if model is None else f"; {by_infl[best] / true_best:.2f}× the true model's best"
        out += [Row(AREA, f"ETKF rmse_a, {label}, inflation 1.1", by_infl[1.1], "RMSE",
                    note=f"{SETUP}; mean of {len(SEEDS)} twins"),
                Row(AREA, f"ETKF rmse_a, {label}, inflation retuned ({best:g})", by_infl[best], "RMSE",
                    note="best of " + ", ".join(f"{f:g}: {v:.3f}" for f, v in by_infl.items()) + ratio),
                Row(AREA, f"3D-Var rmse_a, {label}", var3d, "RMSE",
                    note="B = 0.1 × the model's own climatology (the emulator's free run for the emulator)")]
    out.append(Row(AREA, "emulator training (one call: one-step + fine-tuned)", fine.train_seconds, "s",
                   note=f"ORIGEN x^a, {len(xa)} states; one-step phase {fine.one_step.train_seconds:.0f} s"))
    return out


if __name__ == "__main__":
    from benchmarks import markdown_table

    print(markdown_table(rows()))
