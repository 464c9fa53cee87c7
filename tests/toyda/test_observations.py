"""Observation operators (adjoint tests) and the lab's dataset."""

import numpy as np
import pytest

from toyda import observations as ob
from toyda.atmosphere import AtmosphereConfig

CFG = AtmosphereConfig()


def test_radiosonde_adjoint_identity():
    rng = np.random.default_rng(0)
    rs_ix, rs_iz = ob.default_stations(CFG.nx, 7), ob.default_levels(CFG.nz, 18)
    x = rng.standard_normal((3, CFG.nz, CFG.nx))
    y = rng.standard_normal((3, 7, 18))
    lhs = np.sum(ob.radiosonde_operator(x, rs_ix, rs_iz) * y)
    rhs = np.sum(x * ob.radiosonde_adjoint(y, rs_ix, rs_iz, CFG.nz, CFG.nx))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_satellite_adjoint_identity():
    rng = np.random.default_rng(1)
    w = ob.satellite_weights(CFG.z, 4)
    x = rng.standard_normal((2, CFG.nz, CFG.nx))
    y = rng.standard_normal((2, 4, CFG.nx))
    lhs = np.sum(ob.satellite_operator(x, w, CFG.dz) * y)
    rhs = np.sum(x * ob.satellite_adjoint(y, w, CFG.dz))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_satellite_channels_are_weighted_vertical_means():
    w = ob.satellite_weights(CFG.z, 4)
    assert np.allclose(w.sum(axis=1) * CFG.dz, 1.0)
    assert np.all(np.diff(np.argmax(w, axis=1)) > 0)            # peaks rise with channel number
    const = np.full((CFG.nz, CFG.nx), 2.5)
    assert np.allclose(ob.satellite_operator(const, w, CFG.dz), 2.5)


def test_radiosonde_operator_picks_station_values():
    field = np.arange(CFG.nz * CFG.nx, dtype=float).reshape(CFG.nz, CFG.nx)
    y = ob.radiosonde_operator(field, np.array([3, 10]), np.array([0, 5, 7]))
    assert y.shape == (2, 3)
    assert y[1, 2] == field[7, 10]


def test_dataset_has_the_lecture_layout():
    ds = ob.generate_dataset(CFG)
    shapes = {k: v.shape for k, v in ds.as_arrays().items()}
    assert shapes == {"xtrue": (10, 50, 130), "yrs": (10, 7, 18), "ysat": (10, 4, 130),
                      "t_snap": (10,), "rs_ix": (7,), "rs_iz": (18,), "sat_w": (4, 50),
                      "x": (130,), "z": (50,), "traj": (10,)}
    # radiosondes are the truth plus small noise at the stations
    err = ds.yrs - ob.radiosonde_operator(ds.xtrue, ds.rs_ix, ds.rs_iz)
    assert 0.01 < err.std() < 0.03
    assert np.all(np.diff(ds.t_snap) > 0)


def test_multi_trajectory_dataset_never_pairs_across_trajectories():
    ds = ob.generate_dataset(CFG, n_trajectories=3, n_snapshots=4, snapshot_every=10, spinup_steps=50)
    assert ds.xtrue.shape[0] == 12
    assert list(ds.transitions()) == [0, 1, 2, 4, 5, 6, 8, 9, 10]
    assert not np.allclose(ds.xtrue[3], ds.xtrue[7])


def test_dataset_round_trips_through_arrays_and_checks_shapes():
    ds = ob.generate_dataset(CFG, n_snapshots=3, spinup_steps=100)
    again = ob.ObsDataset.from_arrays(ds.as_arrays())
    np.testing.assert_array_equal(again.xtrue, ds.xtrue)
    bad = ds.as_arrays() | {"yrs": ds.yrs[:, :3]}
    with pytest.raises(ValueError, match=r"yrs must have shape \(3, 7, 18\)"):
        ob.ObsDataset.from_arrays(bad)
    with pytest.raises(ValueError, match="dataset is missing"):
        ob.ObsDataset.from_arrays({"xtrue": ds.xtrue})


@pytest.mark.parametrize("kwargs,match", [
    ({"n_radiosondes": 0}, "n_radiosondes must be an integer in 1..130"),
    ({"n_levels": 80}, "n_levels must be an integer in 1..50"),
    ({"n_channels": 0}, "n_channels must be an integer >= 1"),
    ({"rs_noise": -0.1}, "rs_noise must be >= 0"),
    ({"n_snapshots": 0}, "n_snapshots must be an integer >= 1"),
])
def test_bad_dataset_arguments_say_what_is_allowed(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ob.generate_dataset(CFG, **kwargs)


def test_operator_index_errors():
    with pytest.raises(ValueError, match="rs_ix must index into 0..129"):
        ob.radiosonde_operator(np.zeros((50, 130)), np.array([200]), np.array([1]))
