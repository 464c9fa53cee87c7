"""The lab's dataset on disk: npz with the lecture keys, and the CF NetCDF round trip."""

import numpy as np
import pytest
import xarray as xr

from tools.datasets import load_netcdf, load_npz, save_netcdf, save_npz, to_xarray
from toyda.observations import generate_dataset


@pytest.fixture(scope="module")
def ds():
    return generate_dataset(n_snapshots=4, spinup_steps=200, n_trajectories=2)


def test_npz_has_the_lecture_keys_and_round_trips(ds, tmp_path):
    path = save_npz(ds, tmp_path / "dyn_truth_obs.npz")
    with np.load(path) as f:
        assert set(f.files) == {"xtrue", "yrs", "ysat", "t_snap", "rs_ix", "rs_iz", "sat_w", "x", "z", "traj"}
    again = load_npz(path)
    for key, value in ds.as_arrays().items():
        np.testing.assert_array_equal(getattr(again, key), value)


def test_netcdf_round_trip_and_cf_attributes(ds, tmp_path):
    path = save_netcdf(ds, tmp_path / "dyn_truth_obs.nc")
    again = load_netcdf(path)
    for key, value in ds.as_arrays().items():
        np.testing.assert_allclose(getattr(again, key), value)
    with xr.open_dataset(path, engine="scipy") as x:
        assert x.attrs["Conventions"].startswith("CF-")
        assert x["xtrue"].dims == ("time", "z", "x")
        assert x["z"].attrs["positive"] == "up"
    assert to_xarray(ds)["ysat"].shape == ds.ysat.shape


def test_loading_something_else_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.npz"
    np.savez(bad, a=np.zeros(3))
    with pytest.raises(ValueError, match="dataset is missing"):
        load_npz(bad)
    with pytest.raises(ValueError, match="no dataset file"):
        load_npz(tmp_path / "missing.npz")
