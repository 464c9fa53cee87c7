"""Obs-to-obs network: symmetries, normalisation, dataset modes, training, checkpoints, evaluation."""

import inspect
import io

import numpy as np
import pytest
import torch

from toyda import obs2obs
from toyda.atmosphere import AtmosphereConfig
from toyda.observations import generate_dataset

TINY = obs2obs.Obs2ObsConfig(cnn_channels=8, cnn_layers=2, set_dim=8, head_hidden=16, n_in=20,
                             n_query=32, batch_size=4)


@pytest.fixture(scope="module")
def ds():
    """Two short trajectories on a coarse grid: 22 transitions, 4 stations × 8 levels."""
    return generate_dataset(AtmosphereConfig(nx=40, nz=16), n_trajectories=2, n_snapshots=12,
                            snapshot_every=25, spinup_steps=500, n_radiosondes=4, n_levels=8)


@pytest.fixture(scope="module")
def model(ds):
    return obs2obs.train(ds, TINY, epochs=30, lr=1e-2, seed=0)


def seeded_net(config=obs2obs.Obs2ObsConfig(), n_sat=4, seed=0):
    torch.manual_seed(seed)
    return obs2obs.Obs2ObsNet(n_sat, config).eval()


# ----------------------------------------------------------------------------- symmetries


@pytest.mark.parametrize("n_points", [1, 7 * 18, 300])
def test_set_encoder_is_permutation_invariant_for_any_size(n_points):
    net = seeded_net()
    g = torch.Generator().manual_seed(n_points)
    x, z, y = torch.rand(2, n_points, generator=g), torch.rand(2, n_points, generator=g), \
        torch.randn(2, n_points, generator=g)
    perm = torch.randperm(n_points, generator=g)
    with torch.no_grad():
        e = net.encode_set(x, z, y)
        e_perm = net.encode_set(x[:, perm], z[:, perm], y[:, perm])
    assert e.shape == (2, net.rho[-1].out_features)
    torch.testing.assert_close(e_perm, e, rtol=1e-5, atol=1e-6)
    if n_points > 1:   # and it does depend on the values
        with torch.no_grad():
            assert not torch.allclose(net.encode_set(x, z, y + 1.0), e, atol=1e-4)


@pytest.mark.parametrize("shift", [1, 5, 37, 129])
def test_sat_encoder_is_equivariant_to_periodic_shifts(shift):
    net = seeded_net()
    ysat = torch.randn(3, 4, 130, generator=torch.Generator().manual_seed(shift))
    with torch.no_grad():
        f = net.encode_sat(ysat)
        f_rolled = net.encode_sat(torch.roll(ysat, shift, dims=-1))
    assert f.shape == (3, 32, 130)
    torch.testing.assert_close(f_rolled, torch.roll(f, shift, dims=-1), rtol=1e-5, atol=1e-5)


def test_feature_interpolation_hits_columns_and_wraps_seamlessly():
    nx = 10
    feats = torch.randn(1, 3, nx, generator=torch.Generator().manual_seed(0))
    centres = (torch.arange(nx) + 0.5) / nx
    out = obs2obs.Obs2ObsNet.interpolate(feats, centres[None])
    torch.testing.assert_close(out[0].T, feats[0])
    # x = 0 (≡ 1) lies halfway between the last and the first column
    edge = obs2obs.Obs2ObsNet.interpolate(feats, torch.tensor([[0.0, 1.0 - 1e-7]]))
    torch.testing.assert_close(edge[0, 0], 0.5 * (feats[0, :, 0] + feats[0, :, -1]))
    torch.testing.assert_close(edge[0, 1], edge[0, 0], rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- normalisation, data


def test_normalisation_is_per_channel_for_sat_and_global_for_rs(ds):
    snaps = np.arange(10)
    norm = obs2obs.Normalisation.from_dataset(ds, snaps)
    assert len(norm.sat_mean) == len(norm.sat_std) == ds.ysat.shape[1]
    np.testing.assert_allclose(norm.sat_mean, ds.ysat[snaps].mean(axis=(0, 2)))
    np.testing.assert_allclose(norm.sat_std, ds.ysat[snaps].std(axis=(0, 2)))
    assert len(set(np.round(norm.sat_std, 12))) == len(norm.sat_std)   # really per channel
    assert isinstance(norm.phi_mean, float) and isinstance(norm.phi_std, float)
    assert norm.phi_mean == pytest.approx(ds.xtrue[snaps].mean())
    assert norm.phi_std == pytest.approx(ds.xtrue[snaps].std())
    sat_n = norm.sat(ds.ysat[snaps])
    np.testing.assert_allclose(sat_n.mean(axis=(0, 2)), 0.0, atol=1e-12)
    np.testing.assert_allclose(sat_n.std(axis=(0, 2)), 1.0)
    np.testing.assert_allclose(norm.sat_inverse(sat_n), ds.ysat[snaps])
    # RS observations use the truth's statistics: same affine map for both
    np.testing.assert_allclose(norm.phi(ds.yrs[0]), (ds.yrs[0] - norm.phi_mean) / norm.phi_std)
    # coordinates: cell centres inside (0, 1), x periodic
    assert 0 < norm.x_unit(ds.x).min() and norm.x_unit(ds.x).max() < 1
    assert norm.x_unit(ds.x[0] + norm.lx) == pytest.approx(norm.x_unit(ds.x[0]))
    assert 0 < norm.z_unit(ds.z).min() and norm.z_unit(ds.z).max() < 1


def test_mode_b_inputs_are_exactly_the_stored_radiosondes(ds):
    norm = obs2obs.Normalisation.from_dataset(ds)
    batcher = obs2obs._Batcher(ds, norm, torch.device("cpu"))
    t = np.array([3, 15])
    ysat, rx, rz, ry = batcher.inputs(t, "B", n_in=5, rs_noise=0.1, rng=np.random.default_rng(0))
    n_rs, n_vert = ds.yrs.shape[1:]
    assert ry.shape == (2, n_rs * n_vert)
    np.testing.assert_allclose(norm.phi_inverse(ry.double().numpy()),
                               ds.yrs[t].reshape(2, -1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rx[0].numpy(), np.repeat(norm.x_unit(ds.x[ds.rs_ix]), n_vert),
                               rtol=1e-6)
    np.testing.assert_allclose(rz[0].numpy(), np.tile(norm.z_unit(ds.z[ds.rs_iz]), n_rs), rtol=1e-6)
    np.testing.assert_allclose(norm.sat_inverse(ysat.double().numpy()), ds.ysat[t], rtol=1e-5,
                               atol=1e-6)
    # the evaluation inputs are the same stored observations, in physical units
    s, x, z, y = obs2obs._stored_inputs(ds, 3)
    np.testing.assert_array_equal(y, ds.yrs[3].ravel())
    np.testing.assert_array_equal(s, ds.ysat[3])


def test_mode_a_samples_anywhere_from_truth_plus_noise(ds):
    norm = obs2obs.Normalisation.from_dataset(ds)
    batcher = obs2obs._Batcher(ds, norm, torch.device("cpu"))
    t = np.array([4])
    _, rx, rz, ry = batcher.inputs(t, "A", n_in=2000, rs_noise=0.05, rng=np.random.default_rng(1))
    assert ry.shape == (1, 2000)
    ix = np.rint(rx[0].numpy() * 40 - 0.5).astype(int)
    iz = np.rint(rz[0].numpy() * 16 - 0.5).astype(int)
    assert len(np.unique(ix)) == 40                                   # not only station columns
    err = norm.phi_inverse(ry[0].double().numpy()) - ds.xtrue[4][iz, ix]
    assert err.std() == pytest.approx(0.05, rel=0.1)


def test_split_is_by_time_within_each_trajectory(ds):
    train, val = obs2obs.split_transitions(ds, 0.2)
    assert set(train).isdisjoint(val)
    assert sorted([*train, *val]) == sorted(ds.transitions())
    for k in (0, 1):
        tk, vk = train[ds.traj[train] == k], val[ds.traj[val] == k]
        assert vk.size == 2 and tk.max() < vk.min()          # validation = the last ones
    assert all(ds.traj[t] == ds.traj[t + 1] for t in val)


def test_training_dataset_defaults_are_generate_dataset_arguments():
    params = inspect.signature(generate_dataset).parameters
    assert set(obs2obs.TRAINING_DATASET_DEFAULTS) <= set(params)
    d = obs2obs.TRAINING_DATASET_DEFAULTS
    assert d["n_trajectories"] * (d["n_snapshots"] - 1) >= 400


# ----------------------------------------------------------------------------- training, checkpoints


def test_training_reduces_the_loss_and_is_seeded(ds, model):
    h = model.history
    assert len(h["train"]) == len(h["val"]) >= 10
    assert min(h["val"]) < 0.5 * h["val"][0]
    assert np.mean(h["train"][-5:]) < 0.7 * h["train"][0]
    assert model.best_epoch == int(np.argmin(h["val"])) + 1
    calls = []
    again = obs2obs.train(ds, TINY, epochs=3, lr=1e-2, seed=0,
                          progress=lambda *a: calls.append(a))
    assert again.history["val"][0] == h["val"][0]                   # same seed, same numbers
    twice = obs2obs.train(ds, TINY, epochs=3, lr=1e-2, seed=0)
    assert twice.history == again.history
    other = obs2obs.train(ds, TINY, epochs=3, lr=1e-2, seed=1)
    assert other.history["val"] != again.history["val"]
    assert [c[:2] for c in calls] == [(1, 3), (2, 3), (3, 3)]
    assert all(np.isfinite(c[2]) and np.isfinite(c[3]) for c in calls)


def test_mode_b_training_runs(ds):
    m = obs2obs.train(ds, TINY, mode="B", epochs=2, seed=1)
    assert m.mode == "B" and len(m.history["val"]) == 2


def test_checkpoint_round_trip_gives_identical_predictions(ds, model, tmp_path):
    buf = io.BytesIO()
    obs2obs.save(model, buf)
    buf.seek(0)
    again = obs2obs.load(buf, device="cpu")
    path = tmp_path / "model.pt"
    model.save(path)
    from_path = obs2obs.TrainedObs2Obs.load(path, device="cpu")
    ref = obs2obs.reconstruct_field(model, ds, 5)
    for m in (again, from_path):
        rec = obs2obs.reconstruct_field(m, ds, 5)
        np.testing.assert_array_equal(rec.pred, ref.pred)
        np.testing.assert_array_equal(rec.sat_pred, ref.sat_pred)
        assert m.normalisation == model.normalisation and m.config == model.config
        assert m.history == model.history and m.mode == model.mode
        np.testing.assert_array_equal(m.val_transitions, model.val_transitions)
        np.testing.assert_array_equal(m.test_transitions, model.test_transitions)
        np.testing.assert_array_equal(m.climatology, model.climatology)


def test_test_split_is_last_in_time_and_never_trained_or_validated_on(ds):
    train, val, test = obs2obs.split_train_val_test(ds, 0.2, 0.15)
    assert set(train).isdisjoint(test) and set(val).isdisjoint(test) and set(train).isdisjoint(val)
    assert sorted([*train, *val, *test]) == sorted(ds.transitions())
    for k in np.unique(ds.traj):
        tk, vk, sk = (a[ds.traj[a] == k] for a in (train, val, test))
        assert sk.size >= 1 and tk.max() < vk.min() < vk.max() < sk.min()   # test = the last ones
    _, _, none = obs2obs.split_train_val_test(ds, 0.2, 0.0)
    assert none.size == 0
    with pytest.raises(ValueError, match="test_fraction"):
        obs2obs.Obs2ObsConfig(val_fraction=0.5, test_fraction=0.5)


def test_load_refuses_other_files():
    buf = io.BytesIO()
    torch.save({"format": "something else"}, buf)
    buf.seek(0)
    with pytest.raises(ValueError, match="not an obs-to-obs checkpoint"):
        obs2obs.load(buf)


# ----------------------------------------------------------------------------- evaluation


def test_predict_profile_shapes_and_station_flag(ds, model):
    nz = ds.xtrue.shape[1]
    free = obs2obs.predict_profile(model, ds, 2, 0)
    assert free.pred.shape == free.truth.shape == free.z.shape == (nz,)
    assert not free.is_station and np.isfinite(free.rmse) and free.rmse > 0
    np.testing.assert_array_equal(free.truth, ds.xtrue[3][:, 0])
    np.testing.assert_array_equal(free.persistence, ds.xtrue[2][:, 0])
    station = obs2obs.predict_profile(model, ds, 2, int(ds.rs_ix[1]))
    assert station.is_station


def test_reconstruct_field_shapes_and_finite_metrics(ds, model):
    t = int(model.val_transitions[0])
    rec = obs2obs.reconstruct_field(model, ds, t)
    nz, nx = ds.xtrue.shape[1:]
    for a in (rec.pred, rec.truth, rec.previous, rec.difference, rec.climatology):
        assert a.shape == (nz, nx) and np.all(np.isfinite(a))
    assert rec.sat_pred.shape == rec.sat_truth.shape == ds.ysat.shape[1:]
    np.testing.assert_array_equal(rec.truth, ds.xtrue[t + 1])
    np.testing.assert_array_equal(rec.previous, ds.xtrue[t])
    np.testing.assert_allclose(rec.difference, rec.pred - rec.truth)
    assert set(rec.metrics) == {"rmse", "correlation", "rmse_climatology", "rmse_persistence",
                                "correlation_persistence", "sat_rmse", "sat_rmse_persistence"}
    assert all(np.isfinite(v) for v in rec.metrics.values())
    assert -1 <= rec.metrics["correlation"] <= 1
    assert not rec.in_training
    assert obs2obs.reconstruct_field(model, ds, int(model.train_transitions[0])).in_training
    # the climatology is the mean of the training snapshots only
    tr = model.train_transitions
    np.testing.assert_allclose(model.climatology, ds.xtrue[np.union1d(tr, tr + 1)].mean(axis=0))
    mean = obs2obs.evaluate(model, ds)
    assert set(mean) == set(rec.metrics) and all(np.isfinite(v) for v in mean.values())


def test_query_anywhere_with_any_number_of_rs_points(ds, model):
    rng = np.random.default_rng(0)
    for n in (1, 50):
        sat, q = model.predict(ds.ysat[0], rng.uniform(0, 13, n), rng.uniform(0, 5, n),
                               rng.normal(size=n), np.array([0.01, 6.5, 12.99]), np.array([0.1] * 3))
        assert sat.shape == ds.ysat.shape[1:] and q.shape == (3,) and np.all(np.isfinite(q))


# ----------------------------------------------------------------------------- errors


def test_unknown_mode_is_refused(ds):
    with pytest.raises(ValueError, match="mode must be 'A'.*or 'B'"):
        obs2obs.train(ds, TINY, mode="C", epochs=1)


@pytest.mark.parametrize("column", [-1, 40, 2.5])
def test_column_out_of_range_is_refused(ds, model, column):
    with pytest.raises(ValueError, match=r"column must be an integer in 0\.\.39"):
        obs2obs.predict_profile(model, ds, 2, column)


@pytest.mark.parametrize("t", [11, 23, -1, 24, 2.0])
def test_t_that_is_not_a_transition_is_refused(ds, model, t):
    # 11 and 23 are the last snapshots of the two trajectories: t + 1 is not their successor
    with pytest.raises(ValueError, match=r"not a valid transition.*valid t are 0\.\.10, 12\.\.22"):
        obs2obs.reconstruct_field(model, ds, t)
    with pytest.raises(ValueError, match="not a valid transition"):
        obs2obs.predict_profile(model, ds, t, 0)


def test_bad_training_arguments_are_refused(ds):
    with pytest.raises(ValueError, match="epochs must be"):
        obs2obs.train(ds, TINY, epochs=0)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        obs2obs.train(ds, TINY, epochs=1, alpha=-1.0)
    with pytest.raises(ValueError, match="kernel_size must be an odd"):
        obs2obs.Obs2ObsConfig(kernel_size=4)
    one = generate_dataset(AtmosphereConfig(nx=40, nz=16), n_snapshots=2, spinup_steps=100,
                           n_levels=8)
    with pytest.raises(ValueError, match="need at least 2"):
        obs2obs.train(one, TINY, epochs=1)


def test_dataset_on_another_grid_is_refused(model):
    other = generate_dataset(AtmosphereConfig(nx=48, nz=16), n_snapshots=3, spinup_steps=100,
                             n_levels=8)
    with pytest.raises(ValueError, match="does not match the model"):
        obs2obs.reconstruct_field(model, other, 0)
