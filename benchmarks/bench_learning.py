"""Learning: obs-to-obs training time and skill against honest baselines, and the Lorenz-63
emulator's valid time with and without rollout fine-tuning."""

from __future__ import annotations

import time

import numpy as np

from benchmarks import Row
from toyda import emulator as emu
from toyda import lorenz63 as l63
from toyda import obs2obs
from toyda.observations import generate_dataset

AREA_O2O = "toyda.obs2obs"
AREA_EMU = "toyda.emulator"
TRAIN_GOAL_S = 60.0


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _free_columns(ds, n: int = 4) -> list[int]:
    """Columns halfway between neighbouring stations (no radiosonde there)."""
    ix = np.sort(ds.rs_ix)
    nx = ds.xtrue.shape[2]
    mids = ((ix + np.diff(np.append(ix, ix[0] + nx)) // 2) % nx).tolist()
    return [c for c in mids if c not in set(ix.tolist())][:n]


def _obs2obs_rows() -> list[Row]:
    rows: list[Row] = []
    d = obs2obs.TRAINING_DATASET_DEFAULTS
    setup = ", ".join(f"{k}={v}" for k, v in d.items())
    ds, t_gen = _timed(lambda: generate_dataset(**d))
    rows.append(Row(AREA_O2O, "generate training dataset", t_gen, "s",
                    note=f"{setup}: {ds.transitions().size} transitions"))
    fresh = generate_dataset(**{**d, "n_trajectories": 2}, rng=1)   # an independent dataset
    for mode in obs2obs.MODES:
        model, t_train = _timed(lambda: obs2obs.train(ds, mode=mode, seed=0))
        cfg = model.config
        rows.append(Row(AREA_O2O, f"train, mode {mode}, defaults", t_train, "s",
                        f"< {TRAIN_GOAL_S:g} s", t_train < TRAIN_GOAL_S,
                        f"{len(model.history['val'])} epochs (max {cfg.epochs}), best "
                        f"{model.best_epoch}; {model.train_transitions.size} train / "
                        f"{model.val_transitions.size} val transitions"))
        m = obs2obs.evaluate(model, ds)          # test split: last 15 % of every trajectory
        clim, pers = m["rmse_climatology"], m["rmse_persistence"]
        rows.append(Row(AREA_O2O, f"full field t+1 RMSE, mode {mode} (held-out times)", m["rmse"],
                        "RMSE", "≤ 0.5 × climatology, < persistence",
                        m["rmse"] <= 0.5 * clim and m["rmse"] < pers,
                        f"climatology {clim:.4f}, persistence {pers:.4f}, ratio to clim. "
                        f"{m['rmse'] / clim:.2f}; correlation {m['correlation']:.3f} "
                        f"(persistence {m['correlation_persistence']:.3f})"))
        f = obs2obs.evaluate(model, fresh, fresh.transitions())
        rows.append(Row(AREA_O2O, f"full field t+1 RMSE, mode {mode} (new dataset, seed 1)",
                        f["rmse"], "RMSE", "≤ 0.5 × climatology",
                        f["rmse"] <= 0.5 * f["rmse_climatology"],
                        f"climatology {f['rmse_climatology']:.4f}, persistence "
                        f"{f['rmse_persistence']:.4f}; {fresh.transitions().size} transitions"))
        rows.append(Row(AREA_O2O, f"SAT t+1 RMSE, mode {mode} (held-out times)", m["sat_rmse"],
                        "RMSE", "< SAT persistence", m["sat_rmse"] < m["sat_rmse_persistence"],
                        f"persistence {m['sat_rmse_persistence']:.4f}; obs noise 0.01"))
        cols = _free_columns(ds)
        prof = [obs2obs.predict_profile(model, ds, int(t), c) for t in model.val_transitions
                for c in cols]
        p_rmse = float(np.sqrt(np.mean([p.rmse**2 for p in prof])))
        p_pers = float(np.sqrt(np.mean([p.rmse_persistence**2 for p in prof])))
        rows.append(Row(AREA_O2O, f"profile t+1 RMSE at unseen columns, mode {mode}", p_rmse,
                        "RMSE", "< persistence", p_rmse < p_pers,
                        f"columns {cols}, held-out times; persistence {p_pers:.4f}"))
        if mode == "A":
            rows += _atmosda_rows(model, ds)
    return rows


def _atmosda_rows(model, ds) -> list[Row]:
    """The 2D comparison table: classical DA against obs2obs on the network's test times."""
    from toyda import atmosda  # noqa: PLC0415

    held = model.test_transitions
    res, t_da = _timed(lambda: atmosda.cycle(ds, held + 1, model.climatology))
    truth = ds.xtrue[held + 1]
    preds = np.stack([obs2obs.reconstruct_field(model, ds, int(t)).pred for t in held])
    r = {"obs2obs (obs at t)": preds, **{k: v for k, v in res.analyses.items()},
         "EnKF forecast (obs up to t)": res.backgrounds["enkf"],
         "climatology": np.broadcast_to(model.climatology, truth.shape), "persistence": ds.xtrue[held]}
    rows = [Row("toyda.atmosda", f"2D full-field RMSE: {k}", float(atmosda.rmse_series(v, truth).mean()),
                "RMSE", note=f"{held.size} test times of the obs2obs network (mode A)") for k, v in r.items()]
    rows.append(Row("toyda.atmosda", "cycle 3D-Var + EnKF (20 members) + model-free 3D-Var", t_da, "s",
                    "< 30", t_da < 30, "defaults, spin-up 8 cycles per trajectory"))
    return rows


def _emulator_data(x0: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    d = emu.TRAINING_DATA_DEFAULTS
    spin = 1000
    truth = l63.simulate(x0, d["n_steps"] + spin, d["dt"])[spin:]
    rec = l63.origen_reconstruction(truth, n_cycles=d["n_cycles"], sigma_o=d["sigma_o"],
                                    rng=np.random.default_rng(seed))
    return truth, rec.x_a[-1]


def _emulator_rows() -> list[Row]:
    rows: list[Row] = []
    d = emu.TRAINING_DATA_DEFAULTS
    dt = d["dt"]
    truth, xa = _emulator_data(l63.X0, 0)
    test_truth, test_xa = _emulator_data(truth[-1], 1)        # an independent stretch
    horizon = 800
    setup = (f"trained on ORIGEN x^a ({d['n_steps']} steps, {d['n_cycles']} cycles, "
             f"σ_o={d['sigma_o']:g}; x^a RMSE {np.sqrt(np.mean((xa - truth) ** 2)):.2f})")
    # the true model from the same analysis states: the best any emulator could do
    starts = np.unique(np.round(np.linspace(0, len(test_truth) - 1 - horizon, 200)).astype(int))
    ref = test_truth[starts[:, None] + np.arange(horizon + 1)]
    perfect = np.moveaxis(l63.simulate(test_xa[starts], horizon, dt), 0, 1)
    err = np.sqrt(np.mean((perfect - ref) ** 2, axis=2)).mean(axis=0)
    thr = emu.VALID_FRACTION * np.sqrt(np.mean(test_truth.var(axis=0)))
    over = np.flatnonzero(err > thr)
    v_perfect = float(over[0] * dt) if over.size else float("inf")
    skill = {}
    for k in (0, emu.DEFAULT_ROLLOUT_STEPS):
        label = "one-step only" if k == 0 else f"+ rollout fine-tuning (K={k})"
        em, t_train = _timed(lambda: emu.train_emulator(xa, dt, rollout_steps=k, seed=0))
        rows.append(Row(AREA_EMU, f"train, {label}", t_train, "s", f"< {TRAIN_GOAL_S:g} s",
                        t_train < TRAIN_GOAL_S, setup))
        rows.append(Row(AREA_EMU, f"one-step RMSE vs truth, {label}",
                        emu.one_step_rmse(em, test_truth), "RMSE",
                        note="held-out trajectory; persistence "
                             f"{np.sqrt(np.mean(np.diff(test_truth, axis=0) ** 2)):.3f}"))
        s_a = emu.forecast_skill(em, test_truth, horizon, initial=test_xa)
        s_t = emu.forecast_skill(em, test_truth, horizon)
        skill[k] = (s_a.valid_time, s_t.valid_time)
        better = None if k == 0 else (s_a.valid_time > skill[0][0])
        rows.append(Row(AREA_EMU, f"valid time from x^a, {label}", s_a.valid_time, "time units",
                        "" if k == 0 else "> one-step only", better,
                        f"{s_a.valid_time_lyapunov:.2f} Lyapunov times; error > "
                        f"{emu.VALID_FRACTION:g}×clim. spread ({s_a.threshold:.2f}); "
                        f"true L63 from the same x^a: {v_perfect:.2f}"))
        better = None if k == 0 else (s_t.valid_time > skill[0][1])
        rows.append(Row(AREA_EMU, f"valid time from truth (model error only), {label}",
                        s_t.valid_time, "time units", "" if k == 0 else "> one-step only", better,
                        f"{s_t.valid_time_lyapunov:.2f} Lyapunov times; held-out trajectory, "
                        f"{s_t.starts.size} starts"))
    return rows


def rows() -> list[Row]:
    return _obs2obs_rows() + _emulator_rows()


if __name__ == "__main__":
    from benchmarks import markdown_table

    print(markdown_table(rows()))
