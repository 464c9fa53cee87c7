import numpy as np
import pytest

from toyda import atmosda as da
from toyda import observations as ob
from toyda.atmosphere import AtmosphereConfig

CFG = AtmosphereConfig(nx=32, nz=16, lx=3.2, lz=1.6, source_x=0.5, source_z=0.3, sponge_depth=0.4)


@pytest.fixture(scope="module")
def small():
    ds = ob.generate_dataset(CFG, n_snapshots=16, snapshot_every=25, spinup_steps=400, n_trajectories=2,
                             n_radiosondes=3, n_levels=6, n_channels=3, rng=1)
    times = np.concatenate([np.arange(12, 16), np.arange(28, 32)])
    train = np.setdiff1d(np.arange(ds.n_snapshots), times)
    return ds, times, ds.xtrue[train].mean(axis=0)


def test_b_is_symmetric_positive_definite(small):
    ds = small[0]
    B = da.SeparableB.gaussian(ds.x, ds.z, np.linspace(0.1, 0.3, 16), 0.4, 0.3)
    eye = np.eye(16 * 32).reshape(-1, 16, 32)
    dense = B.apply(eye).reshape(16 * 32, -1)
    np.testing.assert_allclose(dense, dense.T, atol=1e-12)
    assert np.linalg.eigvalsh(dense).min() > -1e-10
    xi = np.random.default_rng(0).standard_normal((16, 32))
    np.testing.assert_allclose(B.sqrt_apply(B.sqrt_apply(xi)), B.apply(xi), atol=1e-8)


def test_observation_operator_adjoint_identity(small):
    ds = small[0]
    H = da.ObsOperator.from_dataset(ds)
    rng = np.random.default_rng(2)
    f, y = rng.standard_normal((16, 32)), rng.standard_normal(H.m)
    assert np.dot(H.apply(f), y) == pytest.approx(np.sum(f * H.adjoint(y)), rel=1e-12)
    np.testing.assert_allclose(H.observe(ds, 3), np.concatenate([ds.yrs[3].ravel(), ds.ysat[3].ravel()]))


def test_observation_space_solve_equals_dense_solve(small):
    ds = small[0]
    H = da.ObsOperator.from_dataset(ds)
    B = da.SeparableB.gaussian(ds.x, ds.z, 0.2, 0.4, 0.3)
    r = H.error_std(0.02, 0.01)
    var = da.Var3D(B, H, r)
    n = 16 * 32
    Bd = B.apply(np.eye(n).reshape(-1, 16, 32)).reshape(n, n)
    Hd = H.apply(np.eye(n).reshape(-1, 16, 32)).T                    # (m, n)
    xb, y = ds.xtrue[2], H.observe(ds, 3)
    # state-space form: (B⁻¹ + Hᵀ R⁻¹ H) δ = Hᵀ R⁻¹ (y − H xb), with B regularised by its gain form
    K = Bd @ Hd.T @ np.linalg.inv(Hd @ Bd @ Hd.T + np.diag(r**2))
    dense = xb.ravel() + K @ (y - Hd @ xb.ravel())
    np.testing.assert_allclose(var.analysis(xb, y).ravel(), dense, atol=1e-9)
    # the analysis fits the observations better than the background
    assert np.linalg.norm(y - H.apply(var.analysis(xb, y))) < np.linalg.norm(y - H.apply(xb))


def test_three_methods_beat_climatology_on_a_small_grid(small):
    ds, times, clim = small
    res = da.cycle(ds, times, clim, da.AtmosDAConfig(length_scale_x=0.4, length_scale_z=0.3, n_members=12,
                                                    loc_x=0.6, loc_z=0.4, spinup=6), model=CFG)
    truth = ds.xtrue[times]
    r_clim = da.rmse_series(np.broadcast_to(clim, truth.shape), truth).mean()
    for m in da.METHODS:
        r = da.rmse_series(res.analyses[m], truth)
        assert np.all(np.isfinite(r)), m
        assert r.mean() < r_clim, (m, r.mean(), r_clim)
    assert np.all(res.spread > 0)


def test_bad_settings_name_the_argument():
    with pytest.raises(ValueError, match="n_members"):
        da.AtmosDAConfig(n_members=1)
    with pytest.raises(ValueError, match="length_scale_z"):
        da.AtmosDAConfig(length_scale_z=0.0)
    with pytest.raises(ValueError, match="methods"):
        da.cycle(None, np.array([1]), None, methods=("4dvar",))
