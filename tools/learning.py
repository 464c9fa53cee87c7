"""Tools for learning from observations: the obs-to-obs network and the Lorenz-63 emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from tools import plots
from tools.assimilation import EMULATOR_STATES as MIN_EMULATOR_STATES
from tools.atmosphere import SOURCE, ObservationsArgs, observe
from tools import words
from tools.base import Example, RunContext, ToolArgs, ToolError, ToolSpec, arg, flat_cost
from tools.datasets import NPZ_NAME, load_npz, save_npz

MODEL_NAME = "obs2obs.pt"
MODEL_INFO = "model_info.json"
EMULATOR_NAME = "emulator.pt"
EMULATOR_ONE_STEP_NAME = "emulator_one_step.pt"
"""the same run's model before rollout fine-tuning (saved when it was fine-tuned)"""
MIN_TRANSITIONS = 100
DATASET = Field(None, description="dataset: a run name or path of a dyn_truth_obs.npz; default: the latest one")
MODEL = Field(None, description="trained model: a run name or path of obs2obs.pt; default: the latest one")


class TrainArgs(ToolArgs):
    dataset: str | None = Field(
        None, description="dataset: a run name or path of a dyn_truth_obs.npz; default: the latest one if it has "
                          f"at least {MIN_TRANSITIONS} transitions, else a training dataset is generated")
    mode: Literal["A", "B"] = arg("A", description="RS inputs: A = sampled anywhere from the truth + noise, "
                                                     "B = only the stored radiosondes",
        values={"A": ("mode a", "a mode", "variant a"),
                "B": ("mode b", "b mode", "variant b")})
    epochs: int = arg(60, ge=1, le=500, description="maximum training epochs (early stopping may end sooner)",
        phrases=words.EPOCHS)
    alpha: float = arg(1.0, ge=0, le=100, description="weight α of the RS query loss in L = L_sat + α L_rs",
        phrases=("alpha", "α", "rs weight", "query loss weight"))
    lr: float = arg(2e-3, gt=0, le=1, description="Adam learning rate",
        phrases=("lr", "learning rate"))
    seed: int = arg(0, ge=0, le=2**31 - 1, description="random seed (weights, sampling)",
        phrases=words.SEED)


def _training_dataset(args: TrainArgs, ctx: RunContext):
    """The dataset to train on, and a sentence saying where it came from."""
    from toyda.observations import TRAINING_DATASET_DEFAULTS  # noqa: PLC0415

    if args.dataset:
        path = ctx.find("dataset", args.dataset, NPZ_NAME, "generate_observations", "dataset")
        return load_npz(path), f"Training data: dataset {path.parent.name}."
    latest = ctx.workspace.latest(NPZ_NAME)
    if latest is not None:
        ds = load_npz(latest)
        if len(ds.transitions()) >= MIN_TRANSITIONS:
            ctx.record("dataset", latest.resolve())
            return ds, f"Training data: the latest dataset ({latest.parent.name})."
        note = (f"The latest dataset has only {len(ds.transitions())} transitions (too few to learn from), so ")
    else:
        note = "There was no dataset in this workspace, so "
    # the student's observing system (stations, channels, noise, model) with enough snapshots to learn from
    chosen = _generation_args(latest)
    gen = ObservationsArgs(**{**chosen, **TRAINING_DATASET_DEFAULTS, "seed": args.seed})
    spec = ", ".join(f"{k}={v}" for k, v in {**{k: v for k, v in chosen.items() if k != "seed"},
                                             **TRAINING_DATASET_DEFAULTS}.items())
    ctx.progress(0.0, "generating a training dataset")
    ds = observe(gen)
    path = save_npz(ds, ctx.file(NPZ_NAME))
    ctx.resolved["dataset"] = ctx.final_path(path)
    source = "the latest dataset's settings" if chosen else "generate_observations defaults"
    return ds, note + f"I generated a training dataset with {source} and {spec}."


def _generation_args(dataset: Path | None) -> dict[str, Any]:
    """The arguments the student gave generate_observations for ``dataset`` (from its run record),
    without the ones that set the dataset's size."""
    if dataset is None or not (dataset.parent / "args.json").is_file():
        return {}
    given = json.loads((dataset.parent / "args.json").read_text())
    defaults = ObservationsArgs()
    size = {"n_snapshots", "snapshot_every", "n_trajectories", "seed"}
    return {k: v for k, v in given.items()
            if k in ObservationsArgs.model_fields and k not in size and v != getattr(defaults, k)}


def train_obs2obs(args: TrainArgs, ctx: RunContext) -> tuple[str, dict[str, Any]]:
    """Train the obs-to-obs network: from the satellite curtain and radiosonde points at time t
    it predicts the satellite curtain and values at any query point (x, z) at t+1. A 1D CNN
    (periodic in x) encodes the satellite channels, DeepSets encodes the radiosonde set, a
    query head predicts values; loss L_sat + α L_rs; per-channel/global normalisation;
    early stopping on a held-out validation split. Mode A samples RS inputs anywhere from
    the truth, mode B uses only the stored radiosondes.

    Use it after generate_observations (or alone: it generates a big enough training dataset
    when the latest one is too small), before predict_profile and reconstruct_field.
    """
    import torch  # noqa: PLC0415

    from toyda import obs2obs  # noqa: PLC0415

    ds, origin = _training_dataset(args, ctx)
    n_epochs = args.epochs

    def progress(epoch: int, total: int, train_loss: float, val_loss: float) -> None:
        ctx.progress(0.05 + 0.9 * epoch / total, f"epoch {epoch}/{total}: train {train_loss:.4f}, val {val_loss:.4f}")

    model = obs2obs.train(ds, mode=args.mode, epochs=n_epochs, alpha=args.alpha, lr=args.lr, seed=args.seed,
                          progress=progress)
    model.save(ctx.file(MODEL_NAME))
    (ctx.run_dir / MODEL_INFO).write_text(json.dumps({"dataset": ctx.resolved["dataset"], "mode": args.mode}))
    scores = obs2obs.evaluate(model, ds, model.val_transitions)   # validation (chose the weights)
    test = obs2obs.evaluate(model, ds)                              # test split: never seen in training
    ctx.save_figure(plots.loss_curves(model.history, model.best_epoch,
                                      f"Obs-to-obs training (mode {args.mode}, α={args.alpha:g})"), "loss_curves")
    t = int(_held_out_transitions(model)[0])
    rec = obs2obs.reconstruct_field(model, ds, t)
    ctx.save_figure(plots.reconstruction_panels(ds.x, ds.z, rec.previous, rec.truth, rec.pred, ds.rs_ix, t, rec.metrics,
                                                _times(ds, t), SOURCE), "reconstruction_heldout")
    h = model.history
    metrics = {
        "epochs_run": len(h["train"]), "best_epoch": model.best_epoch, "train_loss": h["train"][-1],
        "val_loss_best": float(min(h["val"])), "train_seconds": model.train_seconds,
        "n_train_transitions": len(model.train_transitions), "n_val_transitions": len(model.val_transitions),
        "val_rmse": scores["rmse"], "val_correlation": scores["correlation"],
        "val_rmse_climatology": scores["rmse_climatology"], "val_rmse_persistence": scores["rmse_persistence"],
        "val_sat_rmse": scores["sat_rmse"], "val_sat_rmse_persistence": scores["sat_rmse_persistence"],
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "n_test_transitions": len(model.test_transitions),
    } | {f"test_{k}": test[k] for k in ("rmse", "correlation", "rmse_climatology", "rmse_persistence",
                                        "sat_rmse", "sat_rmse_persistence")}
    summary = (
        f"{origin} Trained the obs-to-obs network (mode {args.mode}, α={args.alpha:g}): "
        f"{len(h['train'])} epochs in {model.train_seconds:.0f} s, best validation loss {min(h['val']):.4f} "
        f"at epoch {model.best_epoch}. On the {len(model.test_transitions)} held-out test transitions (never used "
        f"in training or early stopping) the full-field reconstruction at t+1 has RMSE {test['rmse']:.3f} "
        f"(correlation {test['correlation']:.3f}) against {test['rmse_climatology']:.3f} for climatology and "
        f"{test['rmse_persistence']:.3f} for persistence (validation split, used for early stopping: RMSE "
        f"{scores['rmse']:.3f})."
    )
    metrics["converged"] = int(model.best_epoch < n_epochs)
    if not metrics["converged"]:
        more = min(500, max(2 * n_epochs, n_epochs + 20))
        summary += (f" Training has not converged: the validation loss was still falling at the last epoch "
                    f"({n_epochs}); " + (f"try epochs={more} ({more - n_epochs} more)." if more > n_epochs
                                         else "try a larger learning rate lr."))
    return summary, metrics


def _model_and_dataset(args, ctx: RunContext):
    from toyda.obs2obs import TrainedObs2Obs  # noqa: PLC0415

    path = ctx.find("model", args.model, MODEL_NAME, "train_obs2obs", "trained obs-to-obs model")
    try:
        model = TrainedObs2Obs.load(str(path))
    except Exception as exc:  # noqa: BLE001 — a truncated, foreign or damaged file: say so, no traceback
        raise ToolError(f"{ctx.workspace.shown(path)} is not a trained obs-to-obs model that train_obs2obs saved "
                        f"({type(exc).__name__}): train one with train_obs2obs, or name another run") from None
    if args.dataset:
        ds_path = ctx.find("dataset", args.dataset, NPZ_NAME, "generate_observations", "dataset")
    else:
        info = path.parent / MODEL_INFO
        try:
            ds_path = ctx.workspace.path(json.loads(info.read_text())["dataset"])
        except (OSError, ValueError, KeyError, TypeError):
            raise ToolError(f"the model {path.parent.name} does not say which dataset it was trained on "
                            f"(no readable {MODEL_INFO}); name the dataset with dataset=...") from None
        ctx.record("dataset", ds_path)
    try:
        ds = load_npz(ds_path)
    except ValueError as exc:
        raise ToolError(ctx.workspace.scrub(str(exc))) from None
    return model, ds


def _held_out_transitions(model) -> np.ndarray:
    """The model's test transitions (never seen in training); validation ones for old models."""
    return model.test_transitions if len(model.test_transitions) else model.val_transitions


def _times(ds, t: int) -> tuple[float, float]:
    """Model times of snapshots t and t+1 (for the figures)."""
    return float(ds.t_snap[t]), float(ds.t_snap[t + 1])


def _transition(model, ds, time_index: int | None, skip_first: bool = False) -> int:
    """The transition t → t+1 to evaluate: ``time_index``, else a held-out one (with ``skip_first``
    not the first, which train_obs2obs already shows, so an evaluation adds a new figure)."""
    valid = ds.transitions()
    if time_index is None:
        held_out = [int(t) for t in _held_out_transitions(model) if t in set(valid.tolist())]
        if skip_first and len(held_out) > 1:
            return held_out[1]
        return held_out[0] if held_out else int(valid[-1])
    if time_index not in set(valid.tolist()):
        raise ToolError(f"time_index {time_index} has no next snapshot in the same trajectory; allowed: "
                        f"{int(valid.min())}..{int(valid.max())} except the last snapshot of each trajectory")
    return time_index


class ProfileArgs(ToolArgs):
    column: int | None = arg(None, ge=0, le=399, description="grid column of the profile; default: halfway "
                                                               "between the first two radiosonde stations",
        phrases=("column", "col", "x index", "column index"))
    time_index: int | None = arg(None, ge=0, description="snapshot t of the inputs (the profile is at t+1); "
                                                           "default: the first held-out transition",
        phrases=("snapshot", "time index", "t", "time", "snapshot index"))
    model: str | None = MODEL
    dataset: str | None = DATASET


def predict_profile(args: ProfileArgs, ctx: RunContext) -> tuple[str, dict[str, Any]]:
    """Evaluation 1: predict the radiosonde profile at t+1 at a column with no station, from
    the satellite curtain and stored radiosondes at t, and compare it with the truth.

    Use it after train_obs2obs to test whether the network generalises to a new location.
    """
    from toyda.obs2obs import predict_profile as predict  # noqa: PLC0415

    model, ds = _model_and_dataset(args, ctx)
    nx = ds.xtrue.shape[2]
    column = args.column if args.column is not None else int((ds.rs_ix[0] + ds.rs_ix[1]) // 2)
    if column >= nx:
        raise ToolError(f"column must be in 0..{nx - 1} for this dataset, got {column}")
    t = _transition(model, ds, args.time_index)
    p = predict(model, ds, t, column)
    ctx.save_figure(plots.profile_vs_truth(p.z, p.pred, p.truth, p.persistence, column, float(ds.x[column]), t,
                                           p.is_station, _times(ds, t)), "profile")
    # honest baselines: the column's time-mean profile, and the nearest station's true profile at t+1
    climatology = ds.xtrue[:, :, column].mean(axis=0)
    station = int(ds.rs_ix[np.argmin(np.minimum(np.abs(ds.rs_ix - column), nx - np.abs(ds.rs_ix - column)))])
    nearest = ds.xtrue[t + 1][:, station]
    rms = lambda a: float(np.sqrt(np.mean((a - p.truth) ** 2)))  # noqa: E731
    r_clim, r_near = rms(climatology), rms(nearest)
    corr = float(np.corrcoef(p.pred, p.truth)[0, 1]) if p.pred.std() > 0 and p.truth.std() > 0 else 0.0
    peak_ratio = float(p.pred.max() / max(p.truth.max(), 1e-12))
    metrics = {"rmse": p.rmse, "rmse_persistence": p.rmse_persistence, "rmse_climatology": r_clim,
               "rmse_nearest_station": r_near, "shape_correlation": corr, "column": column, "time_index": t,
               "is_station": int(p.is_station), "truth_max": float(p.truth.max()), "pred_max": float(p.pred.max())}
    where = "a station column" if p.is_station else "a column with no radiosonde"
    baselines = {"persistence (the true profile at t, unseen by the network)": p.rmse_persistence,
                 "climatology (the column's time-mean profile)": r_clim,
                 f"the nearest station's true profile (column {station})": r_near}
    beaten = [k for k, v in baselines.items() if p.rmse < v]
    lost = [f"{k} {v:.3f}" for k, v in baselines.items() if p.rmse >= v]
    verdict = ("better than all three baselines: " + ", ".join(f"{k} {v:.3f}" for k, v in baselines.items())
               if not lost else "not better than " + "; ".join(lost)
               + (f" (better than {len(beaten)} of 3)" if beaten else ""))
    shape = (f" It misses the shape of the profile: correlation {corr:.2f} with the truth, peak {p.pred.max():.3f} "
             f"against {p.truth.max():.3f}." if corr < 0.7 or not 0.7 <= peak_ratio <= 1.4 else
             f" Its shape follows the truth (correlation {corr:.2f}, peak {p.pred.max():.3f} vs {p.truth.max():.3f}).")
    summary = (f"Predicted the profile at t+1: {plots.when(ds.t_snap[t + 1], t + 1)}, at column {column} "
               f"(x = {ds.x[column]:.1f}, {where}) from observations at {plots.when(ds.t_snap[t], t)}: "
               f"RMSE {p.rmse:.3f} against the truth, {verdict}.{shape}")
    return summary, metrics


class ReconstructArgs(ToolArgs):
    time_index: int | None = arg(None, ge=0, description="snapshot t of the inputs (the field is at t+1); "
                                                         "default: the second held-out transition (train_obs2obs "
                                                         "already shows the first)",
        phrases=("snapshot", "time index", "t", "time", "snapshot index"))
    model: str | None = MODEL
    dataset: str | None = DATASET


def reconstruct_field(args: ReconstructArgs, ctx: RunContext) -> tuple[str, dict[str, Any]]:
    """Evaluation 2: reconstruct the full field at t+1 by querying the trained network at every
    grid point, from the observations at t only; compare with the truth and with two
    baselines (climatological mean field and persistence). Shows the lecture's four panels.

    Use it after train_obs2obs ("reconstruct the field", "query everywhere").
    """
    from toyda.obs2obs import reconstruct_field as reconstruct  # noqa: PLC0415

    model, ds = _model_and_dataset(args, ctx)
    t = _transition(model, ds, args.time_index, skip_first=True)
    rec = reconstruct(model, ds, t)
    m = rec.metrics
    ctx.save_figure(plots.reconstruction_panels(ds.x, ds.z, rec.previous, rec.truth, rec.pred, ds.rs_ix, t, m,
                                                _times(ds, t), SOURCE), "reconstruction")
    ctx.save_figure(plots.sat_prediction(ds.x, rec.sat_pred, rec.sat_truth, ds.ysat[t], t, _times(ds, t), SOURCE),
                    "sat_prediction")
    np.savez_compressed(ctx.file("reconstruction.npz"), pred=rec.pred, truth=rec.truth, previous=rec.previous)
    metrics = {k: float(v) for k, v in m.items()} | {"time_index": t, "held_out": int(not rec.in_training)}
    summary = (
        f"Reconstructed the full field at t+1: {plots.when(ds.t_snap[t + 1], t + 1)} "
        f"({'held out' if not rec.in_training else 'a training time'}) from the observations at "
        f"{plots.when(ds.t_snap[t], t)}: RMSE {m['rmse']:.3f}, correlation {m['correlation']:.3f}; baselines: "
        f"climatology RMSE {m['rmse_climatology']:.3f}, persistence RMSE {m['rmse_persistence']:.3f} (correlation "
        f"{m['correlation_persistence']:.3f}). Predicted SAT at t+1: RMSE {m['sat_rmse']:.4f} vs "
        f"{m['sat_rmse_persistence']:.4f} for SAT persistence."
    ) + _source_note(ds, rec)
    return summary, metrics


def _source_note(ds, rec) -> str:
    """Explain an error concentrated at the source (a puff predicted or missed there)."""
    from toyda.atmosda import model_config  # noqa: PLC0415
    from toyda.atmosphere import source  # noqa: PLC0415

    near = source(model_config(ds)) > 0.5
    err = rec.pred - rec.truth
    r_src, r_far = float(np.sqrt(np.mean(err[near] ** 2))), float(np.sqrt(np.mean(err[~near] ** 2)))
    if r_src < 2 * r_far:
        return ""
    kind = "a puff that is not there yet" if rec.pred[near].mean() > rec.truth[near].mean() else "too weak a puff"
    return (f" Near the source the error is {r_src:.3f} against {r_far:.3f} elsewhere: the network predicts {kind}. "
            f"Whether a new pulse has begun by t+1, and how strong it is (pulse amplitudes are random), is not "
            f"visible in the observations at t, and the network has no clock, so it predicts the average puff for "
            f"the plume's phase; this is a limit of its inputs, not a bug of the reconstruction.")


HORIZON_STEPS = 400


class EmulatorArgs(ToolArgs):
    reconstruction: str | None = Field(
        None, description="ORIGEN reconstruction: a run name or path of origen_l63.npz; default: the latest one if it "
                          f"has at least {MIN_EMULATOR_STATES} states, else ORIGEN is run first (5,000 steps)")
    train_on: Literal["reconstruction", "truth"] = arg("reconstruction", description="learn from the ORIGEN "
                                                         "analysis x_a (as in the lecture) or from the true trajectory",
        values={"truth": ("on the truth", "from the truth", "true trajectory", "on truth"),
                "reconstruction": ("on the reconstruction", "from the reconstruction", "on the analyses", "from the analyses", "on the analysis")})
    epochs: int = arg(150, ge=1, le=5000, description="one-step training epochs (early stopping may end sooner)",
        phrases=words.EPOCHS)
    rollout_steps: int = arg(10, ge=0, le=100, description="steps unrolled in the fine-tuning loss (0 = no fine-tuning)",
        phrases=("rollout", "rollout steps", "roll-out", "# step rollout", "# step rollouts", "rollout of #", "rollouts of #", "rollout length", "# steps rollout"))
    seed: int = arg(0, ge=0, le=2**31 - 1, description="random seed",
        phrases=words.SEED)


def _reconstruction(args: EmulatorArgs, ctx: RunContext) -> tuple[dict[str, np.ndarray], str]:
    """The ORIGEN reconstruction to learn from, and a sentence saying where it came from."""
    from toyda import lorenz63 as l63  # noqa: PLC0415
    from toyda.emulator import TRAINING_DATA_DEFAULTS  # noqa: PLC0415

    def read(path):
        try:
            with np.load(path, allow_pickle=False) as f:
                data = {k: np.asarray(f[k], float) for k in ("x_true", "x_a", "dt")}
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise ToolError(f"{ctx.workspace.shown(path)} is not an ORIGEN reconstruction saved by run_origen_lorenz63 "
                            f"(it needs the arrays x_true, x_a and dt; {type(exc).__name__}: "
                            f"{ctx.workspace.scrub(str(exc))[:120]}): run run_origen_lorenz63, or name another run") from None
        if data["x_a"].ndim != 2 or data["x_a"].shape[-1:] != (3,) or data["x_true"].shape != data["x_a"].shape:
            raise ToolError(f"{ctx.workspace.shown(path)} does not hold a Lorenz-63 reconstruction (x_true and x_a must "
                            "both have shape (T, 3)): run run_origen_lorenz63, or name another run")
        return data

    if args.reconstruction:
        path = ctx.find("reconstruction", args.reconstruction, "origen_l63.npz", "run_origen_lorenz63",
                        "ORIGEN reconstruction")
        return read(path), f"Training data: the reconstruction {path.parent.name}."
    latest = ctx.workspace.latest("origen_l63.npz")
    if latest is not None:
        data = read(latest)
        if len(data["x_a"]) >= MIN_EMULATOR_STATES:
            ctx.record("reconstruction", latest.resolve())
            return data, f"Training data: the latest reconstruction ({latest.parent.name})."
        note = f"The latest reconstruction has only {len(data['x_a'])} states (too short to learn from), so "
    else:
        note = "There was no ORIGEN reconstruction in this workspace, so "
    d = TRAINING_DATA_DEFAULTS
    ctx.progress(0.0, f"ORIGEN reconstruction of {d['n_steps']} Lorenz-63 steps")
    rng = np.random.default_rng(args.seed)
    truth = l63.simulate(l63.X0 + rng.standard_normal(3), d["n_steps"], d["dt"])
    rec = l63.origen_reconstruction(truth, d["n_cycles"], d["sigma_o"], rng)
    path = ctx.file("origen_l63.npz")
    np.savez_compressed(path, x_true=truth, x_a=rec.x_a[-1], x_a_cycle0=rec.x_a[0], rmse=rec.rmse,
                        t=d["dt"] * np.arange(len(truth)), dt=d["dt"], sigma_o=d["sigma_o"])
    ctx.resolved["reconstruction"] = ctx.final_path(path)
    return ({"x_true": truth, "x_a": rec.x_a[-1], "dt": np.asarray(d["dt"])},
            note + f"I ran ORIGEN first ({d['n_steps']} steps, {d['n_cycles']} cycles, σ_o={d['sigma_o']:g}; "
                   f"final reconstruction RMSE {rec.rmse[-1]:.3f}).")


def train_lorenz63_emulator(args: EmulatorArgs, ctx: RunContext) -> tuple[str, dict[str, Any]]:
    """Train the learned Lorenz-63 forecast model of ORIGEN: an MLP one-step map
    x_a(k) → x_a(k+1) learned from the ORIGEN reconstruction, then fine-tuned with rollout
    (loss over several unrolled steps). Shows forecast rollouts from analysis states against
    the reference trajectory and the forecast error against lead time (valid time), with and
    without the rollout fine-tuning.

    Use it after run_origen_lorenz63 (it runs ORIGEN first when there is no long enough
    reconstruction). The last 20% of the trajectory is held out and used for every score.
    One training call gives both models: emulator.pt (fine-tuned) and emulator_one_step.pt
    (the same run before fine-tuning); run_da_experiment can use either as its forecast model.
    """
    from toyda import emulator as emu  # noqa: PLC0415

    data, origin = _reconstruction(args, ctx)
    truth, x_a, dt = data["x_true"], data["x_a"], float(data["dt"])
    split = int(0.8 * len(x_a))
    train_states = (x_a if args.train_on == "reconstruction" else truth)[:split]
    test_truth, test_xa = truth[split:], x_a[split:]
    horizon = min(HORIZON_STEPS, len(test_truth) // 2)
    n_starts = min(100, len(test_truth) - horizon)

    def progress(epoch, total, train_loss, val_loss):
        phase = "rollout" if epoch > args.epochs else "one-step"
        ctx.progress(0.1 + 0.75 * epoch / total, f"{phase} epoch {epoch}/{total}: val {val_loss:.2e}")

    # one training call: the one-step phase once, then (if asked) rollout fine-tuning
    final = emu.train_emulator(train_states, dt, epochs=args.epochs, rollout_steps=args.rollout_steps,
                               seed=args.seed, progress=progress)
    models = {"one-step training": final.one_step or final}
    if args.rollout_steps:
        models[f"with {args.rollout_steps}-step rollout fine-tuning"] = final
        final.one_step.save(ctx.file(EMULATOR_ONE_STEP_NAME))
    final.save(ctx.file(EMULATOR_NAME))
    ctx.progress(0.9, "forecast skill and figures")
    skills = {name: emu.forecast_skill(m, test_truth, horizon, initial=test_xa, n_starts=n_starts)
              for name, m in models.items()}
    skill = skills[list(models)[-1]]
    base = skills["one-step training"]

    t = dt * np.arange(len(test_xa))
    starts = np.arange(0, len(test_xa) - 100, 100)[:6]
    rollouts = [emu.forecast(final, test_xa[k], 100) for k in starts]
    ctx.save_figure(plots.emulator_rollouts(t, test_xa, starts, rollouts,
                                            "Learned Lorenz-63 model: forecast rollouts from held-out analysis states"),
                    "rollouts")
    ctx.save_figure(plots.error_vs_lead(skill.lead_time, {k: v.error for k, v in skills.items()}, skill.threshold,
                                        "Forecast error vs lead time (held-out starts, verified against the truth)"),
                    "error_vs_lead")
    h = final.history
    curves = {"train": h.get("train", []) + h.get("rollout_train", []), "val": h.get("val", []) + h.get("rollout_val", [])}
    # the rollout loss sums the error over the rollout's steps, so it starts higher: a new loss, not a setback
    phase = (len(h.get("train", [])) + 1, f"rollout fine-tuning starts (loss over {args.rollout_steps} steps)")
    ctx.save_figure(plots.loss_curves(curves, None, "Emulator training: one-step phase, then rollout fine-tuning",
                                      phase=phase if h.get("rollout_train") else None), "loss_curves")

    def finite(v: float) -> float:
        return float(v) if np.isfinite(v) else float(skill.lead_time[-1])

    metrics = {
        "one_step_rmse": emu.one_step_rmse(final, test_truth), "valid_time": finite(skill.valid_time),
        "valid_time_lyapunov": finite(skill.valid_time_lyapunov), "valid_time_one_step_only": finite(base.valid_time),
        "valid_time_within_horizon": int(np.isfinite(skill.valid_time)), "threshold": skill.threshold,
        "train_seconds": float(final.train_seconds), "n_train_states": len(train_states),
        "n_test_states": len(test_truth),
    }
    gain = (f" Rollout fine-tuning moved it from {finite(base.valid_time):.2f} to {finite(skill.valid_time):.2f}."
            if args.rollout_steps else "")
    summary = (
        f"{origin} Trained the Lorenz-63 emulator on the {args.train_on} states. On the held-out last 20% "
        f"(verified against the truth) its one-step RMSE is {metrics['one_step_rmse']:.3f} and forecasts from "
        f"analysis states stay valid (error below {skill.threshold:.2f} = {skill.fraction:g} × climatological spread) "
        f"for {finite(skill.valid_time):.2f} time units = {finite(skill.valid_time_lyapunov):.2f} Lyapunov times."
        + gain
    )
    return summary, metrics


# ----------------------------------------------------------------------------- cost estimates

TRANSITION_EPOCH_S = 2.5e-3
"""seconds per training transition and epoch of the obs-to-obs network (measured 1.5e-3 s on the
busy 2-core class machine)"""
STATE_EPOCH_S = 2.5e-4
"""seconds per training state and one-step epoch of the Lorenz-63 emulator (measured 2.5e-4 s)"""
TORCH_BYTES = 0.5 * 2**30
"""working memory of a small torch training run (weights, optimiser state, batches)"""


def train_cost(args: TrainArgs) -> tuple[float, float]:
    """Estimated (bytes, seconds) of train_obs2obs on a training-sized dataset (early stopping may end sooner)."""
    from toyda.observations import TRAINING_DATASET_DEFAULTS as d  # noqa: PLC0415

    transitions = d["n_trajectories"] * (d["n_snapshots"] - 1)
    return TORCH_BYTES, 10.0 + TRANSITION_EPOCH_S * transitions * args.epochs


def emulator_cost(args: EmulatorArgs) -> tuple[float, float]:
    """Estimated (bytes, seconds) of train_lorenz63_emulator: the one-step phase, then the rollout
    phase, whose epochs grow with the steps unrolled (measured: 40 steps ≈ 1.7 one-step epochs)."""
    from toyda.emulator import TRAINING_DATA_DEFAULTS as d  # noqa: PLC0415

    states = 0.8 * d["n_steps"]
    rollout = args.epochs * (1 + args.rollout_steps / 30) if args.rollout_steps else 0.0
    return TORCH_BYTES, 10.0 + STATE_EPOCH_S * states * (args.epochs + rollout)


EVALUATION_COST = flat_cost(1024, 30.0)
"""predict_profile and reconstruct_field: load one model and one dataset (sized by the limits on
generate_observations), evaluate the network at one time, draw one or two figures"""


TOOLS = (
    ToolSpec(
        "train_obs2obs", train_obs2obs, TrainArgs, cost=train_cost,
        keywords=((3.5, r"obs2obs|obs[- ]to[- ]obs|\btrain|network|neural net|\bnn\b|\bmlp\b"),),
        topic="obs2obs network training",
        figures=("loss_curves", "reconstruction_heldout"),
        examples=(
            Example("train the obs2obs network", {}),
            Example("train the network for 20 epochs in mode B", {"epochs": 20, "mode": "B"}),
        ),
    ),
    ToolSpec(
        "predict_profile", predict_profile, ProfileArgs, cost=EVALUATION_COST,
        keywords=((5, r"\bprofiles?\b|unseen colu?mn|eval(?:uation)?\s*(?:1|one|#1|i)\b|new location"
                      r"|colu?mn with(?:out| no) (?:a )?(?:station|radiosonde)|no (?:station|radiosonde)"),
                  (3.2, r"\bcolu?mn \d+")),
        topic="profile at an unseen column",
        figures=("profile",),
        examples=(
            Example("predict the profile at column 100", {"column": 100}),
            Example("evaluation 1: a radiosonde profile where there is no station", {}),
        ),
    ),
    ToolSpec(
        "reconstruct_field", reconstruct_field, ReconstructArgs, cost=EVALUATION_COST,
        keywords=((5, r"reconstruct\w* (?:the )?(?:full |whole |entire |2d )?(?:tracer )?field|field reconstruction"
                      r"|query (?:it |the (?:network|net|model) )?everywhere|eval(?:uation)?\s*(?:2|two|#2|ii)\b"
                      r"|(?:full|whole|entire|complete) (?:2d |tracer |2d tracer )?field"),
                  (1.5, r"\breconstruct\w*")),
        topic="field reconstruction",
        figures=("reconstruction", "sat_prediction"),
        examples=(
            Example("reconstruct the full field", {}),
            Example("reconstruct the field at snapshot 5", {"time_index": 5}),
        ),
    ),
    ToolSpec(
        "train_lorenz63_emulator", train_lorenz63_emulator, EmulatorArgs, cost=emulator_cost,
        keywords=((6, r"emulat|learn\w* (?:l63 |lorenz(?:-?63)? )?(?:forecast )?model|forecast model"
                      r"|roll-?outs?\b|surrogate|learn\w* (?:the )?(?:\w+ )?dynamics"
                      r"|(?:l-?63|lorenz(?:-?63)?) (?:network|net|nn|mlp)"
                      r"|(?:network|net|nn|mlp|model) (?:on|from) (?:the )?(?:origen )?(?:reconstruction|analys)"),),
        topic="learned forecast model emulator rollout",
        figures=("rollouts", "error_vs_lead", "loss_curves"),
        examples=(
            Example("train the Lorenz-63 emulator", {}),
            Example("learn a forecast model with 5-step rollout fine-tuning", {"rollout_steps": 5}),
            Example("train the emulator on the truth", {"train_on": "truth"}),
        ),
    ),
)
