"""Lorenz-63 emulator: one-step skill, forecasts, valid time, rollout fine-tuning, checkpoints."""

import io

import numpy as np
import pytest
import torch

from toyda import emulator, lorenz63

DT = 0.01
SMALL = emulator.EmulatorConfig(hidden=64)


def truth(x0, n_steps, spinup=500):
    return lorenz63.simulate(x0, n_steps + spinup, DT)[spinup:]


@pytest.fixture(scope="module")
def train_truth():
    return truth(lorenz63.X0, 2000)


@pytest.fixture(scope="module")
def test_truth(train_truth):
    return truth(train_truth[-1], 3000)                 # an independent stretch of the attractor


@pytest.fixture(scope="module")
def truth_model(train_truth):
    return emulator.train_emulator(train_truth, DT, epochs=60, seed=0, config=SMALL)


@pytest.fixture(scope="module")
def analysis(train_truth):
    """The ORIGEN reconstruction x^a of the training stretch (what the lab learns from)."""
    rec = lorenz63.origen_reconstruction(train_truth, n_cycles=20, sigma_o=1.0,
                                         rng=np.random.default_rng(0))
    return rec.x_a[-1]


def test_one_step_rmse_is_small_on_held_out_data(truth_model, test_truth):
    persistence = np.sqrt(np.mean(np.diff(test_truth, axis=0) ** 2))
    err = emulator.one_step_rmse(truth_model, test_truth)
    assert err < 0.1 * persistence                        # persistence ≈ 0.57 at dt = 0.01
    assert truth_model.history["val"][-1] < truth_model.history["val"][0]


def test_forecast_shapes_and_initial_state(truth_model, test_truth):
    x0 = test_truth[[0, 100, 200, 300]]
    fc = emulator.forecast(truth_model, x0, 25)
    assert fc.shape == (4, 26, 3) and np.all(np.isfinite(fc))
    np.testing.assert_allclose(fc[:, 0], x0, rtol=1e-6)
    np.testing.assert_allclose(fc[:, 1], truth_model.step(x0), rtol=1e-6)
    assert emulator.forecast(truth_model, x0[0], 7).shape == (8, 3)
    assert emulator.forecast(truth_model, x0, 0).shape == (4, 1, 3)


def test_forecast_skill_and_valid_time(truth_model, test_truth):
    sk = emulator.forecast_skill(truth_model, test_truth, 600, n_starts=100)
    assert sk.error.shape == sk.rmse.shape == sk.lead_time.shape == (601,)
    assert sk.error[0] == pytest.approx(0.0, abs=1e-5)    # starts from the reference itself
    assert sk.lead_time[1] == pytest.approx(DT)
    assert sk.spread == pytest.approx(np.sqrt(np.mean(test_truth.var(axis=0))))
    assert sk.threshold == pytest.approx(emulator.VALID_FRACTION * sk.spread)
    assert np.isfinite(sk.valid_time) and 0 < sk.valid_time <= 6.0
    assert sk.valid_time_lyapunov == pytest.approx(emulator.LYAPUNOV_EXPONENT * sk.valid_time)
    k = int(round(sk.valid_time / DT))
    assert sk.error[k] > sk.threshold and np.all(sk.error[:k] <= sk.threshold)
    assert sk.starts.size == 100
    # a larger threshold cannot give a shorter valid time
    assert emulator.forecast_skill(truth_model, test_truth, 600, n_starts=100,
                                   fraction=0.8).valid_time >= sk.valid_time


def test_rollout_fine_tuning_improves_the_valid_time(analysis, test_truth):
    one_step = emulator.train_emulator(analysis, DT, epochs=60, seed=0, config=SMALL)
    rollout = emulator.train_emulator(analysis, DT, epochs=60, rollout_steps=10,
                                      rollout_epochs=15, seed=0, config=SMALL)
    v0 = emulator.forecast_skill(one_step, test_truth, 600, n_starts=100).valid_time
    v1 = emulator.forecast_skill(rollout, test_truth, 600, n_starts=100).valid_time
    assert v1 > v0 + 0.2, (v0, v1)                        # seed 0: about 1.0 → 1.55 time units
    assert len(rollout.history["rollout_val"]) >= 1 and rollout.rollout_steps == 10
    assert one_step.history["rollout_val"] == [] and one_step.one_step is None
    # one training call yields both models: its one-step snapshot is the one-step-only model
    snap = rollout.one_step
    assert snap is not None and snap.rollout_steps == 0 and snap.history == one_step.history
    np.testing.assert_array_equal(emulator.forecast(snap, test_truth[:5], 50),
                                  emulator.forecast(one_step, test_truth[:5], 50))
    assert snap.train_seconds <= rollout.train_seconds


def test_save_load_round_trip(truth_model, test_truth, tmp_path):
    buf = io.BytesIO()
    emulator.save(truth_model, buf)
    buf.seek(0)
    again = emulator.load(buf, device="cpu")
    truth_model.save(tmp_path / "emu.pt")
    from_path = emulator.Emulator.load(tmp_path / "emu.pt", device="cpu")
    ref = emulator.forecast(truth_model, test_truth[:5], 50)
    for m in (again, from_path):
        np.testing.assert_array_equal(emulator.forecast(m, test_truth[:5], 50), ref)
        assert m.normalisation == truth_model.normalisation and m.config == truth_model.config
        assert m.dt == DT and m.history == truth_model.history


def test_training_is_seeded_and_reports_progress(train_truth):
    calls = []
    a = emulator.train_emulator(train_truth[:600], DT, epochs=3, rollout_steps=2,
                                rollout_epochs=2, seed=3, progress=lambda *c: calls.append(c))
    b = emulator.train_emulator(train_truth[:600], DT, epochs=3, rollout_steps=2,
                                rollout_epochs=2, seed=3)
    assert a.history == b.history
    assert [c[:2] for c in calls] == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


def test_bad_arguments_are_refused(train_truth, truth_model):
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        emulator.train_emulator(train_truth[:, :2], DT)
    with pytest.raises(ValueError, match="dt must be finite and > 0"):
        emulator.train_emulator(train_truth, 0.0)
    with pytest.raises(ValueError, match="rollout_steps must be an integer >= 0"):
        emulator.train_emulator(train_truth, DT, rollout_steps=-1)
    with pytest.raises(ValueError, match="rollout_steps=500 needs windows"):
        emulator.train_emulator(train_truth[:1000], DT, rollout_steps=500)
    bad = train_truth.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="must be finite"):
        emulator.train_emulator(bad, DT)
    with pytest.raises(ValueError, match="n_steps must be an integer >= 0"):
        emulator.forecast(truth_model, train_truth[:2], -1)
    with pytest.raises(ValueError, match=r"n_steps must be an integer in 1\.\.1999"):
        emulator.forecast_skill(truth_model, train_truth[:2000], 2000)
    with pytest.raises(ValueError, match="initial must have the shape"):
        emulator.forecast_skill(truth_model, train_truth, 10, initial=train_truth[:-1])
    with pytest.raises(ValueError, match="not an emulator checkpoint"):
        buf = io.BytesIO()
        torch.save({"format": "x"}, buf)
        buf.seek(0)
        emulator.load(buf)
