"""Reading and writing the lab's dataset: ``dyn_truth_obs.npz`` and a CF-style NetCDF copy."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from toyda.observations import ObsDataset

NPZ_NAME = "dyn_truth_obs.npz"
NC_NAME = "dyn_truth_obs.nc"


def save_npz(ds: ObsDataset, path: Path) -> Path:
    """Write the dataset with the lecture's keys (plus ``traj``); atomic (temp file + rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **ds.as_arrays())
    tmp.replace(path)
    return path


def load_npz(path: Path) -> ObsDataset:
    """Read a ``dyn_truth_obs.npz`` (the lab notebook's or ours); shapes are checked."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no dataset file at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return ObsDataset.from_arrays({k: data[k] for k in data.files})
    except (OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable dyn_truth_obs dataset ({type(exc).__name__}: "
                         f"{str(exc)[:200]})") from exc


def to_xarray(ds: ObsDataset):
    """The dataset as an ``xarray.Dataset`` with CF-style names, units and attributes."""
    import xarray as xr

    T = ds.n_snapshots
    coords = {
        "time": ("time", np.asarray(ds.t_snap, float), {"standard_name": "time", "long_name": "snapshot time",
                                                        "units": "model time units"}),
        "z": ("z", ds.z, {"long_name": "height", "units": "domain units", "axis": "Z", "positive": "up"}),
        "x": ("x", ds.x, {"long_name": "horizontal position (periodic)", "units": "domain units", "axis": "X"}),
        "station": ("station", np.arange(len(ds.rs_ix), dtype=np.int32), {"long_name": "radiosonde station index"}),
        "level": ("level", np.arange(len(ds.rs_iz), dtype=np.int32), {"long_name": "radiosonde level index"}),
        "channel": ("channel", np.arange(ds.sat_w.shape[0], dtype=np.int32), {"long_name": "satellite channel"}),
    }
    data = {
        "xtrue": (("time", "z", "x"), ds.xtrue, {"long_name": "true tracer field phi", "units": "1"}),
        "yrs": (("time", "station", "level"), ds.yrs, {"long_name": "radiosonde observations of phi",
                                                        "units": "1", "coordinates": "rs_x rs_z"}),
        "ysat": (("time", "channel", "x"), ds.ysat, {"long_name": "satellite channel observations "
                                                     "(weighted vertical mean of phi)", "units": "1"}),
        "sat_w": (("channel", "z"), ds.sat_w, {"long_name": "satellite vertical weighting function",
                                               "units": "per domain unit"}),
        "rs_ix": (("station",), np.asarray(ds.rs_ix, np.int32), {"long_name": "station column index into x"}),
        "rs_iz": (("level",), np.asarray(ds.rs_iz, np.int32), {"long_name": "radiosonde level index into z"}),
        "rs_x": (("station",), ds.x[ds.rs_ix], {"long_name": "station position", "units": "domain units"}),
        "rs_z": (("level",), ds.z[ds.rs_iz], {"long_name": "radiosonde level height", "units": "domain units"}),
        "traj": (("time",), np.asarray(ds.traj, np.int32), {"long_name": "trajectory the snapshot belongs to"}),
    }
    return xr.Dataset(data, coords=coords, attrs={
        "Conventions": "CF-1.10", "title": "dalab toy atmosphere: truth, radiosondes and satellite channels",
        "source": "dalab toyda.observations.generate_dataset", "n_snapshots": np.int32(T),
    })


def save_netcdf(ds: ObsDataset, path: Path) -> Path:
    """Write the CF-style NetCDF copy (classic NetCDF via scipy, readable everywhere); atomic."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    to_xarray(ds).to_netcdf(tmp, engine="scipy")
    tmp.replace(path)
    return path


def load_netcdf(path: Path) -> ObsDataset:
    """Read the NetCDF copy back into an ``ObsDataset``."""
    import xarray as xr

    with xr.open_dataset(path, engine="scipy") as x:
        return ObsDataset(
            xtrue=x["xtrue"].values, yrs=x["yrs"].values, ysat=x["ysat"].values, t_snap=x["time"].values,
            rs_ix=x["rs_ix"].values.astype(np.int64), rs_iz=x["rs_iz"].values.astype(np.int64),
            sat_w=x["sat_w"].values, x=x["x"].values, z=x["z"].values, traj=x["traj"].values.astype(np.int64),
        )
