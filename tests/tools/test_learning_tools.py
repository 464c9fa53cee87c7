"""The learning tools with their defaults, chained as a student would: the lab's full sequence."""

import pytest

from tools.base import ToolError
from tools.registry import run_tool


LECTURE_SIZE = {"n_snapshots": 10, "snapshot_every": 50, "n_trajectories": 1}   # the notebook's dataset


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """generate_observations (defaults) → train_obs2obs (defaults) in one workspace: the lab's flow."""
    ws = tmp_path_factory.mktemp("lab")
    made = run_tool("generate_observations", workspace=ws)
    trained = run_tool("train_obs2obs", workspace=ws)
    return ws, made, trained


def test_a_dataset_made_with_defaults_is_trained_on_as_it_is(lab):
    _, made, trained = lab
    assert made.metrics["n_transitions"] >= 100
    assert "Training data: the latest dataset" in trained.summary and "generated" not in trained.summary
    assert trained.args["dataset"] == str(made.files[0].resolve()) or trained.args["dataset"].startswith(str(made.run_dir))


def test_training_refuses_to_learn_from_the_lecture_sized_dataset_and_says_so(tmp_path):
    small = run_tool("generate_observations", LECTURE_SIZE, workspace=tmp_path)
    trained = run_tool("train_obs2obs", {"epochs": 1}, workspace=tmp_path)
    assert small.metrics["n_transitions"] == 9
    assert "only 9 transitions" in trained.summary and "generated a training dataset" in trained.summary
    assert trained.args["dataset"].endswith("dyn_truth_obs.npz") and str(trained.run_dir) in trained.args["dataset"]


def test_generated_training_data_keeps_the_students_observing_system(tmp_path):
    from tools.datasets import load_npz

    run_tool("generate_observations", {"n_radiosondes": 5, "n_channels": 3, "rs_noise": 0.05, **LECTURE_SIZE},
             workspace=tmp_path)
    trained = run_tool("train_obs2obs", {"epochs": 1}, workspace=tmp_path)
    from tools.atmosphere import ObservationsArgs

    assert "the latest dataset's settings" in trained.summary
    assert all(s in trained.summary for s in ("n_radiosondes=5", "n_channels=3", "rs_noise=0.05"))
    ds = load_npz(trained.args["dataset"])
    assert ds.yrs.shape[1:] == (5, ObservationsArgs().n_levels) and ds.ysat.shape[1] == 3   # stations, channels kept
    assert len(ds.transitions()) >= 100                                    # and enough data to learn from


def test_trained_network_beats_both_baselines_on_held_out_times(lab):
    _, _, trained = lab
    m = trained.metrics
    assert m["val_rmse"] <= 0.5 * m["val_rmse_climatology"]
    assert m["val_rmse"] < m["val_rmse_persistence"]
    assert m["val_sat_rmse"] < m["val_sat_rmse_persistence"]
    assert {p.name for p in trained.figures} == {"loss_curves.png", "reconstruction_heldout.png"}
    assert any(p.name == "obs2obs.pt" for p in trained.files)


def test_evaluations_use_the_latest_model_and_its_dataset(lab):
    ws, _, trained = lab
    prof = run_tool("predict_profile", workspace=ws)
    assert prof.metrics["is_station"] == 0
    assert prof.metrics["rmse"] < prof.metrics["rmse_persistence"]
    # the skill claim names every baseline it beats or does not, from the numbers
    m = prof.metrics
    others = (m["rmse_persistence"], m["rmse_climatology"], m["rmse_nearest_station"])
    assert ("better than all three baselines" in prof.summary) == all(m["rmse"] < v for v in others)
    assert f"{m['rmse_climatology']:.3f}" in prof.summary and f"{m['rmse_nearest_station']:.3f}" in prof.summary
    assert ("misses the shape" in prof.summary) == (m["shape_correlation"] < 0.7
                                                    or not 0.7 <= m["pred_max"] / m["truth_max"] <= 1.4)
    assert prof.args["model"] == str(trained.run_dir / "obs2obs.pt")
    rec = run_tool("reconstruct_field", {"time_index": int(prof.metrics["time_index"])}, workspace=ws)
    assert rec.metrics["held_out"] == 1
    assert rec.metrics["rmse"] < 0.5 * rec.metrics["rmse_climatology"]
    assert rec.metrics["correlation"] > rec.metrics["correlation_persistence"]
    assert [p.name for p in rec.figures] == ["reconstruction.png", "sat_prediction.png"]


def test_time_index_without_a_next_snapshot_is_refused(lab):
    ws, _, _ = lab
    with pytest.raises(ToolError, match="has no next snapshot"):
        run_tool("reconstruct_field", {"time_index": 59}, workspace=ws)   # last snapshot of trajectory 0


def test_emulator_with_defaults_learns_and_rollout_fine_tuning_helps(tmp_path):
    res = run_tool("train_lorenz63_emulator", workspace=tmp_path)
    m = res.metrics
    assert "I ran ORIGEN first" in res.summary
    assert m["valid_time_within_horizon"] == 1
    assert m["valid_time"] > m["valid_time_one_step_only"]
    assert m["valid_time"] > 1.0                  # Lorenz time units (≈ 0.9 Lyapunov times)
    assert m["one_step_rmse"] < 0.1
    assert {p.name for p in res.figures} == {"rollouts.png", "error_vs_lead.png", "loss_curves.png"}


def _cli(*args, home):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = os.environ | {"DALAB_HOME": str(home)}
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "tool", *args, "--json", "--quiet"],
                         capture_output=True, text=True, env=env, timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_every_remaining_tool_runs_with_its_defaults_from_the_cli(lab, tmp_path):
    ws, _, _ = lab   # the lab workspace is a DALAB_HOME: the CLI finds its trained model
    for name in ("predict_profile", "reconstruct_field"):
        result = _cli(name, home=ws)
        assert result["figures"] and result["metrics"]["rmse"] > 0
    for name in ("simulate_atmosphere", "generate_observations", "run_origen_lorenz63", "train_lorenz63_emulator"):
        result = _cli(name, home=tmp_path)
        assert result["tool"] == name and result["figures"], name


def test_tool_defaults_are_the_science_defaults():
    """The learning tools keep torch out of `dalab tools` (their toyda modules import it), so their
    defaults are written in the argument models; they must equal the toyda configs'."""
    from tools.atmosphere import TRAINING_DATASET_DEFAULTS, ObservationsArgs
    from tools.learning import EmulatorArgs, TrainArgs
    from toyda.emulator import DEFAULT_ROLLOUT_STEPS, EmulatorConfig
    from toyda.obs2obs import Obs2ObsConfig

    assert (TrainArgs().epochs, TrainArgs().lr) == (Obs2ObsConfig().epochs, Obs2ObsConfig().lr)
    assert EmulatorArgs().epochs == EmulatorConfig().epochs and EmulatorArgs().rollout_steps == DEFAULT_ROLLOUT_STEPS
    assert all(getattr(ObservationsArgs(), k) == v for k, v in TRAINING_DATASET_DEFAULTS.items())


def test_a_lorenz63_reconstruction_made_with_defaults_is_trained_on(tmp_path):
    run_tool("run_origen_lorenz63", workspace=tmp_path)
    em = run_tool("train_lorenz63_emulator", {"epochs": 3, "rollout_steps": 0}, workspace=tmp_path)
    assert "Training data: the latest reconstruction" in em.summary     # no silent second ORIGEN run
