"""EnKF, ETKF, LETKF and the particle filter: the analysis equations against the Kalman filter, the
transform's properties, the Gaspari–Cohn taper, short twins on DAPPER's sakov2012 Lorenz-63 and
sakov2008 Lorenz-96 setups, missing observations and bad settings."""

import dataclasses

import numpy as np
import pytest

from toyda.da import EnKF, ETKF, LETKF, PF, Var3D, make_method
from toyda.da.diagnostics import score
from toyda.da.enkf import enkf_analysis
from toyda.da.etkf import etkf_analysis, rotate_anomalies, transform
from toyda.da.letkf import HALF_WIDTH_PER_RADIUS, gaspari_cohn, letkf_analysis, ring_distance
from toyda.da.pf import systematic_resample
from toyda.experiment import Experiment, get_model, twin

# Short twins of DAPPER's setups: sakov2012 L63 (dt 0.01, obs every 25 steps, R = 2I, burn-in 16)
# and sakov2008 L96 (dt 0.05, obs every step, R = I; burn-in shortened to 5).
L63 = Experiment(get_model("lorenz63"), obs_every=25, sigma_o=np.sqrt(2), n_obs=300, burn_in=16, seed=0)
L96 = Experiment(get_model("lorenz96"), obs_every=1, sigma_o=1.0, n_obs=300, burn_in=5, seed=0)


def _run(method, exp, obs=None, seed=0):
    obs = twin(exp) if obs is None else obs
    res = method.assimilate(exp, obs, np.random.default_rng(seed))
    return res, score(res, obs, exp.burn_in)


def _kalman(xf, Pf, y, observed, sigma_o):
    """The textbook Kalman analysis (mean, covariance) for H selecting ``observed``."""
    H = np.eye(len(xf))[observed]
    K = Pf @ H.T @ np.linalg.inv(H @ Pf @ H.T + sigma_o ** 2 * np.eye(len(y)))
    return xf + K @ (y - H @ xf), (np.eye(len(xf)) - K @ H) @ Pf


@pytest.fixture
def ensemble():
    rng = np.random.default_rng(3)
    E = rng.normal(size=(12, 6)) @ rng.normal(size=(6, 6)) + rng.normal(size=6)
    observed = np.array([True, False, True, True, False, True])
    return E, rng.normal(size=int(observed.sum())), observed


# ---------------------------------------------------------------- analysis equations


def test_etkf_analysis_is_the_kalman_analysis_of_the_ensemble_statistics(ensemble):
    E, y, observed = ensemble
    N = len(E)
    xf, Pf = E.mean(0), np.cov(E.T)
    xa, Pa = _kalman(xf, Pf, y, observed, 0.7)
    Ea = etkf_analysis(E, y, observed, 0.7)
    assert np.allclose(Ea.mean(0), xa, atol=1e-10)
    assert np.allclose(np.cov(Ea.T), Pa, atol=1e-10)
    A = Ea - Ea.mean(0)
    assert np.allclose(A.T @ A / (N - 1), Pa, atol=1e-10)


def test_etkf_transform_preserves_the_mean(ensemble):
    E, y, observed = ensemble
    A = E - E.mean(0)
    w, T = transform(A[:, observed], y - E.mean(0)[observed], 1 / 0.7 ** 2)
    assert np.allclose(T, T.T, atol=1e-12)                        # symmetric square root
    assert np.allclose(T @ np.ones(len(E)), np.ones(len(E)), atol=1e-12)
    Ea = etkf_analysis(E, y, observed, 0.7)
    assert np.allclose(Ea.mean(0), E.mean(0) + w @ A, atol=1e-12)
    assert np.allclose((T @ A).sum(0), 0, atol=1e-10)            # analysis anomalies stay centred


def test_random_rotation_keeps_mean_and_covariance(ensemble):
    E = ensemble[0]
    R = rotate_anomalies(E, np.random.default_rng(0))
    assert not np.allclose(R, E)
    assert np.allclose(R.mean(0), E.mean(0), atol=1e-12)
    assert np.allclose(np.cov(R.T), np.cov(E.T), atol=1e-10)


def test_enkf_mean_is_the_kalman_mean_with_centred_perturbations(ensemble):
    E, y, observed = ensemble
    xa, Pa = _kalman(E.mean(0), np.cov(E.T), y, observed, 0.7)
    Ea = enkf_analysis(E, y, observed, 0.7, np.random.default_rng(1))
    assert np.allclose(Ea.mean(0), xa, atol=1e-10)
    # the analysis covariance matches (I - KH) P_f only in expectation: averaged over many draws
    covs = [np.cov(enkf_analysis(E, y, observed, 0.7, np.random.default_rng(s)).T) for s in range(400)]
    assert np.allclose(np.mean(covs, axis=0), Pa, atol=0.15 * np.abs(Pa).max())


def test_linear_gaussian_etkf_cycle_equals_the_kalman_filter():
    """With a linear model and N > n the ETKF's mean and covariance follow the Kalman filter exactly."""
    rng = np.random.default_rng(5)
    n, N, M = 3, 8, np.array([[0.9, 0.2, 0.0], [-0.1, 0.95, 0.1], [0.0, 0.05, 0.8]])
    E = rng.normal(size=(N, n))
    x, P = E.mean(0), np.cov(E.T)
    for k in range(10):
        E, x, P = E @ M.T, M @ x, M @ P @ M.T
        observed = np.array([True, k % 2 == 0, True])
        y = rng.normal(size=int(observed.sum()))
        E = etkf_analysis(E, y, observed, 0.5)
        x, P = _kalman(x, P, y, observed, 0.5)
        assert np.allclose(E.mean(0), x, atol=1e-9) and np.allclose(np.cov(E.T), P, atol=1e-9)


# ---------------------------------------------------------------- localisation


def test_gaspari_cohn_properties():
    r = np.linspace(0, 3, 3001)
    g = gaspari_cohn(r)
    assert gaspari_cohn(0.0) == 1.0
    assert np.all(g[r >= 2] == 0) and np.all(g[r < 2] > 0)
    assert np.all(np.diff(g) <= 1e-15)                            # non-increasing
    assert np.allclose(gaspari_cohn(-r), g)
    for knot in (1.0, 2.0):                                       # continuous at the knots
        assert abs(gaspari_cohn(knot - 1e-9) - gaspari_cohn(knot + 1e-9)) < 1e-7
    assert gaspari_cohn(1.0) == pytest.approx(5 / 24)             # GC (4.10) at r = 1
    # a correlation function: the circulant taper matrix on the ring is positive semi-definite
    assert np.linalg.eigvalsh(gaspari_cohn(ring_distance(40) / 5.0)).min() > -1e-10


def test_letkf_taper_follows_dapper_radius_and_the_ring():
    rho = LETKF(localisation_radius=4.0).taper(40)
    c = HALF_WIDTH_PER_RADIUS * 4.0
    assert np.allclose(np.diag(rho), 1) and np.allclose(rho, rho.T)
    assert rho[0, 39] == rho[0, 1] and rho[0, 35] == rho[0, 5]   # periodic distance
    d = ring_distance(40)
    assert np.all(rho[d >= 2 * c] == 0) and np.all(rho[d < 2 * c] > 0)
    assert rho[0, 4] == pytest.approx(np.exp(-0.5), abs=0.03)   # about a Gaussian of std L at d = L


def test_letkf_batched_equals_a_loop_of_local_etkfs_and_the_etkf_without_localisation():
    rng = np.random.default_rng(2)
    E = rng.normal(size=(7, 40))
    observed = rng.random(40) < 0.7
    y = rng.normal(size=int(observed.sum()))
    rho = LETKF(localisation_radius=3.0).taper(40)
    Ea = letkf_analysis(E, y, observed, 1.3, rho)
    xm, A = E.mean(0), E - E.mean(0)
    for i in range(40):                                           # Hunt et al. (2007), one grid point at a time
        w, T = transform(A[:, observed], y - xm[observed], rho[i, observed] / 1.3 ** 2)
        assert np.allclose(Ea[:, i], xm[i] + ((w + T) @ A)[:, i], atol=1e-12)
    wide = LETKF(localisation_radius=1e7).taper(40)
    assert np.allclose(letkf_analysis(E, y, observed, 1.3, wide), etkf_analysis(E, y, observed, 1.3), atol=1e-8)


# ---------------------------------------------------------------- short twins


def test_enkf_beats_3dvar_on_lorenz63():
    # DAPPER sakov2012: EnKF PertObs N=10 0.65, 3D-Var (B = 0.1 C_clim) 1.03
    _, enkf = _run(EnKF(n_members=10, inflation=1.04), L63)
    _, var3d = _run(Var3D(background="climatology", b_scale=0.1), L63)
    assert enkf["rmse_a"] < 0.7 < 0.9 < var3d["rmse_a"]


def test_etkf_beats_the_stochastic_enkf_at_small_n():
    # N = 3 on L63 (DAPPER: Sqrt N=3 infl 1.3 0.80); the perturbed observations' sampling noise loses track
    _, etkf = _run(ETKF(n_members=3, inflation=1.3), L63)
    _, enkf = _run(EnKF(n_members=3, inflation=1.3), L63)
    assert etkf["rmse_a"] < 0.9 and enkf["rmse_a"] > 1.5 * etkf["rmse_a"]
    # N = 20 on L96 (DAPPER: Sqrt N=24 0.18, PertObs N=28 0.24)
    _, etkf = _run(ETKF(n_members=20, inflation=1.04), L96)
    _, enkf = _run(EnKF(n_members=20, inflation=1.08), L96)
    assert etkf["rmse_a"] < 0.25 and enkf["rmse_a"] > 1.2 * etkf["rmse_a"]


def test_letkf_is_stable_on_lorenz96_where_the_etkf_with_as_few_members_is_not():
    # DAPPER sakov2008: LETKF N=7 radius 4 0.22; an unlocalised ETKF needs N > ~14 (the unstable subspace)
    res, letkf = _run(LETKF(n_members=7, inflation=1.04, localisation_radius=4.0), L96)
    _, etkf = _run(ETKF(n_members=7, inflation=1.04), L96)
    assert res.diverged_at is None and letkf["rmse_a"] < 0.26
    assert etkf["rmse_a"] > 2.0 > 8 * letkf["rmse_a"]


def test_without_inflation_the_enkf_spread_collapses():
    # EnKF N=40 on L96 (DAPPER sakov2008: infl 1.06, 0.22): with inflation 1 the spread underestimates the error
    _, none = _run(EnKF(n_members=40, inflation=1.0), L96)
    _, some = _run(EnKF(n_members=40, inflation=1.06), L96)
    assert none["spread_a"] < 0.2 * none["rmse_a"] and none["rmse_a"] > 1.0
    assert 0.7 < some["spread_a"] / some["rmse_a"] < 1.5 and some["rmse_a"] < 0.25


def test_particle_filter_tracks_lorenz63():
    # DAPPER sakov2012: PartFilt N=100 reg=2.4 NER=0.3 0.35-0.38
    res, s = _run(PF(n_members=100), L63)
    assert res.diverged_at is None and s["rmse_a"] < 0.5
    ess = res.info["ess"]
    assert ess.shape == (L63.n_obs,) and np.all((ess >= 1 - 1e-9) & (ess <= 100 + 1e-9))
    assert 0 < res.info["resampled"].sum() < L63.n_obs           # resampling only when the ESS is low
    assert np.all(ess[res.info["resampled"]] < 0.3 * 100)
    assert res.E_a.shape == (L63.n_obs, 100, 3)


def test_systematic_resampling_keeps_expected_counts():
    w = np.array([0.5, 0.25, 0.125, 0.125, 0.0])
    for seed in range(20):
        counts = np.bincount(systematic_resample(w, np.random.default_rng(seed)), minlength=5)
        assert np.all(np.abs(counts - 5 * w) < 1) and counts[4] == 0


def test_runs_are_reproducible_for_a_seed():
    obs = twin(L63)
    for method in (EnKF(), ETKF(rotate=True), PF(n_members=50)):
        a = method.assimilate(L63, obs, np.random.default_rng(4)).x_a
        b = method.assimilate(L63, obs, np.random.default_rng(4)).x_a
        assert np.array_equal(a, b)


# ---------------------------------------------------------------- missing observations


@pytest.mark.parametrize("method, exp, bound", [     # 3D-Var (B = 0.1 C_clim) gets 1.58 on these L63 data
    (EnKF(n_members=10, inflation=1.1), L63, 1.2), (ETKF(n_members=10, inflation=1.1), L63, 1.2),
    (PF(n_members=100), L63, 0.9), (LETKF(n_members=10, inflation=1.05), L96, 0.35)])
def test_missing_observations(method, exp, bound):
    obs = twin(exp)
    y = obs.y.copy()
    y[np.random.default_rng(1).random(y.shape) < 0.2] = np.nan     # a fifth of the values missing
    y[::6] = np.nan                                                # and every sixth time empty
    res, s = _run(method, exp, dataclasses.replace(obs, y=y))
    assert res.diverged_at is None and s["rmse_a"] < bound
    empty = np.flatnonzero(np.isnan(y).all(axis=1))
    assert np.allclose(res.x_a[empty], res.x_f[empty])            # nothing to assimilate: analysis = forecast


def test_a_component_never_observed_is_still_corrected_through_covariances():
    exp = dataclasses.replace(L63, observed="xy")                   # z never observed
    res, s = _run(ETKF(n_members=10, inflation=1.1), exp)
    assert res.diverged_at is None and s["rmse_a"] < 1.5


# ---------------------------------------------------------------- bad settings


@pytest.mark.parametrize("name, settings, word", [
    ("enkf", {"n_members": 1}, "n_members"), ("etkf", {"n_members": 1}, "n_members"),
    ("letkf", {"n_members": 0}, "n_members"), ("pf", {"n_members": 1}, "n_members"),
    ("enkf", {"inflation": 0.9}, "inflation"), ("etkf", {"inflation": 0.5}, "inflation"),
    ("letkf", {"inflation": float("nan")}, "inflation"), ("letkf", {"localisation_radius": 0.0}, "localisation_radius"),
    ("pf", {"resample_threshold": 0.0}, "resample_threshold"), ("pf", {"resample_threshold": 1.5}, "resample_threshold"),
    ("pf", {"jitter": -1.0}, "jitter"), ("etkf", {"n_members": 2.5}, "n_members")])
def test_bad_settings_are_refused(name, settings, word):
    with pytest.raises(ValueError, match=word):
        make_method(name, **settings)


def test_letkf_refuses_lorenz63():
    with pytest.raises(ValueError, match="localisation_radius.*lorenz63.*etkf"):
        LETKF().assimilate(L63, twin(dataclasses.replace(L63, n_obs=5)), np.random.default_rng(0))
