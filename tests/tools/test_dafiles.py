"""Reading the student's observation/truth files: formats, gaps, and every refusal with its line."""

import numpy as np
import pytest

from tools.base import ToolError, Workspace
from tools.dafiles import (HDF5_MAGIC, observations_from, read_observations, read_table, resolve_path, state_names,
                           write_csv)

DT = 0.01


def _csv(tmp_path, text, name="obs.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_round_trip_keeps_values_gaps_and_model_steps(tmp_path):
    rng = np.random.default_rng(1)
    t = np.arange(1, 9) * 25 * DT
    values = rng.normal(size=(8, 3))
    values[2, 1] = values[5, 0] = np.nan
    table = read_table(write_csv(tmp_path / "obs.csv", t, values), 3, DT, "observations")
    np.testing.assert_array_equal(table.steps, np.arange(1, 9) * 25)
    np.testing.assert_allclose(table.t, t, atol=1e-12)
    np.testing.assert_array_equal(np.isnan(table.values), np.isnan(values))
    np.testing.assert_allclose(table.values[~np.isnan(values)], values[~np.isnan(values)], rtol=0, atol=0)
    assert table.names == ("x", "y", "z") and table.where[0] == "line 2"


def test_empty_cells_and_nan_mean_not_observed(tmp_path):
    path = _csv(tmp_path, "time,x,y,z\n0.25,1.0,,3\n0.5,NaN,nan,  \n\n0.75, 4 ,5,6\n")
    table = read_table(path, 3, DT, "observations")
    assert np.isnan(table.values).sum() == 4
    assert table.values[2].tolist() == [4.0, 5.0, 6.0]
    assert table.where == ("line 2", "line 3", "line 5")     # the blank line 4 keeps the numbering


@pytest.mark.parametrize("text, match", [
    ("time,x,y,z\n0.25,1,2,3\n0.255,1,2,3\n", r"line 3: time 0\.255 is not a multiple of dt = 0\.01"),
    ("time,x,y,z\n0.5,1,2,3\n0.25,1,2,3\n", r"line 3: time 0\.25 comes before the time of line 2.*strictly increasing"),
    ("time,x,y,z\n0.25,1,2,3\n0.25,4,5,6\n", r"line 3: time 0\.25 repeats the time of line 2"),
    ("time,x,y,z,w\n0.25,1,2,3,4\n", r"line 1: 4 state columns after 'time' but the model has 3 state variables"),
    ("time,x,y\n0.25,1,2\n", r"line 1: 2 state columns .* 3 state variables.*time,x,y,z"),
    ("time,x,y,z\n0.25,1,2,3\n0.5,1,2\n", r"line 3: 3 cells but the header has 4"),
    ("time,x,y,z\n0.25,1,abc,3\n", r"line 2, column 'y': 'abc' is not a number"),
    ("time,x,y,z\n0.25,1,2,inf\n", r"line 2, column 'z': 'inf' is not a finite number"),
    ("time,x,y,z\n,1,2,3\n", r"line 2: the 'time' cell is empty"),
    ("time,x,y,z\n-0.25,1,2,3\n", r"line 2: time -0\.25 is negative"),
    ("0.25,1,2,3\n", r"line 1: the header must start with 'time'"),
    ("time;x;y;z\n0.25;1;2;3\n", r"line 1: .*separated by commas"),
    ("time,x,y,z\n", r"has a header but no rows"),
    ("\n\n", r"is empty"),
])
def test_bad_csv_files_are_refused_with_their_line(tmp_path, text, match):
    with pytest.raises(ToolError, match=match) as err:
        read_table(_csv(tmp_path, text), 3, DT, "observations")
    assert str(err.value).startswith("observations: ")


def test_missing_empty_and_wrong_extension_files_are_refused(tmp_path):
    with pytest.raises(ToolError, match="truth: there is no file"):
        read_table(tmp_path / "nope.csv", 3, DT, "truth")
    with pytest.raises(ToolError, match="observations: the file 'empty.csv' is empty"):
        read_table(_csv(tmp_path, "", "empty.csv"), 3, DT, "observations")
    with pytest.raises(ToolError, match=r"the extension '\.txt' is not allowed.*\.csv.*\.nc"):
        read_table(_csv(tmp_path, "time,x,y,z\n0.25,1,2,3\n", "obs.txt"), 3, DT, "observations")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(ToolError, match="not a readable CSV"):
        read_table(tmp_path / "bin.csv", 3, DT, "observations")


def test_truth_may_start_at_zero_hold_every_step_and_must_cover_every_observation(tmp_path):
    rng = np.random.default_rng(2)
    steps = np.arange(0, 101)                                 # every model step from t = 0
    truth = rng.normal(size=(101, 3))
    write_csv(tmp_path / "truth.csv", steps * DT, truth)
    obs_steps = np.array([25, 50, 75, 100])
    y = truth[obs_steps] + 0.1
    y[1, 2] = np.nan
    write_csv(tmp_path / "obs.csv", obs_steps * DT, y)
    obs = read_observations(tmp_path / "obs.csv", 3, DT, truth=tmp_path / "truth.csv")
    np.testing.assert_array_equal(obs.steps, [25, 25, 25, 25])
    np.testing.assert_allclose(obs.x_true, truth[obs_steps])
    np.testing.assert_allclose(obs.x0_true, truth[0])
    assert np.isnan(obs.y[1, 2]) and np.isfinite(obs.y).sum() == 11

    write_csv(tmp_path / "short.csv", steps[:60] * DT, truth[:60])
    with pytest.raises(ToolError, match=r"truth: no row at time 0\.75 \(observations line 4; 2 observation time"):
        read_observations(tmp_path / "obs.csv", 3, DT, truth=tmp_path / "short.csv")
    gappy = truth.copy()
    gappy[7, 1] = np.nan
    write_csv(tmp_path / "gappy.csv", steps * DT, gappy)
    with pytest.raises(ToolError, match="truth: line 9 has no value for 'y'"):
        read_observations(tmp_path / "obs.csv", 3, DT, truth=tmp_path / "gappy.csv")


def test_truth_without_t0_gives_no_initial_truth_and_observations_start_after_zero(tmp_path):
    write_csv(tmp_path / "obs.csv", np.array([0.1, 0.2]), np.ones((2, 3)))
    write_csv(tmp_path / "truth.csv", np.array([0.1, 0.2]), np.ones((2, 3)))
    obs = read_observations(tmp_path / "obs.csv", 3, DT, truth=tmp_path / "truth.csv")
    assert obs.x0_true is None and obs.steps.tolist() == [10, 10]
    write_csv(tmp_path / "at0.csv", np.array([0.0, 0.2]), np.ones((2, 3)))
    with pytest.raises(ToolError, match="observations: line 2: the first observation time must be after t = 0"):
        read_observations(tmp_path / "at0.csv", 3, DT)


def test_netcdf_as_xarray_writes_it_is_read_like_the_csv(tmp_path):
    import xarray as xr
    rng = np.random.default_rng(3)
    t = np.arange(1, 6) * 0.05
    vals = rng.normal(size=(5, 4))
    vals[3, 2] = np.nan
    ds = xr.Dataset({f"x{i}": ("time", vals[:, i]) for i in range(4)}, coords={"time": t})
    ds.to_netcdf(tmp_path / "obs.nc", engine="scipy")
    table = read_table(tmp_path / "obs.nc", 4, 0.05, "observations")
    np.testing.assert_array_equal(table.steps, np.arange(1, 6))
    np.testing.assert_array_equal(np.isnan(table.values), np.isnan(vals))
    assert table.names == ("x0", "x1", "x2", "x3") and table.where[4] == "time index 4"

    with pytest.raises(ToolError, match="has 4 variables on the 'time' dimension .* the model has 3"):
        read_table(tmp_path / "obs.nc", 3, 0.05, "observations")
    ds.assign_coords(time=t[[0, 2, 1, 3, 4]]).to_netcdf(tmp_path / "unsorted.nc", engine="scipy")
    with pytest.raises(ToolError, match=r"observations: time index 2: time 0\.1 comes before the time of time index 1"):
        read_table(tmp_path / "unsorted.nc", 4, 0.05, "observations")
    xr.Dataset({"x": ("station", [1.0])}).to_netcdf(tmp_path / "notime.nc", engine="scipy")
    with pytest.raises(ToolError, match="has no 'time' dimension"):
        read_table(tmp_path / "notime.nc", 1, 0.05, "observations")
    (tmp_path / "h5.nc").write_bytes(HDF5_MAGIC + b"\x00" * 64)
    with pytest.raises(ToolError, match="NetCDF-4 .*NETCDF3_64BIT"):
        read_table(tmp_path / "h5.nc", 4, 0.05, "observations")


def test_paths_outside_a_confined_workspace_are_refused(tmp_path, monkeypatch):
    root = tmp_path / "session"
    (root / "uploads").mkdir(parents=True)
    inside = _csv(root / "uploads", "time,x,y,z\n0.25,1,2,3\n")
    outside = _csv(tmp_path, "time,x,y,z\n0.25,1,2,3\n", "secret.csv")
    ui = Workspace(root, confined=True)
    assert resolve_path("uploads/obs.csv", ui, "observations") == inside.resolve()
    for name in (str(outside), "../secret.csv", "uploads/../../secret.csv"):
        with pytest.raises(ToolError, match=r"observations=.* is outside your workspace"):
            resolve_path(name, ui, "observations")
    with pytest.raises(ToolError, match="truth: there is no file 'other.csv' in your workspace"):
        resolve_path("other.csv", ui, "truth")
    cli = Workspace(root)                                     # CLI: the working directory, then the workspace root
    monkeypatch.chdir(tmp_path)
    assert resolve_path("secret.csv", cli, "observations") == outside.resolve()
    assert resolve_path("uploads/obs.csv", cli, "observations") == inside.resolve()
    with pytest.raises(ToolError, match="extension '.json' is not allowed"):
        resolve_path("obs.json", cli, "observations")


def test_state_names_follow_the_model_size():
    assert state_names(3) == ("x", "y", "z")
    assert state_names(40)[0] == "x0" and state_names(40)[-1] == "x39" and len(state_names(40)) == 40


def test_observations_from_checks_the_first_time_against_t0(tmp_path):
    table = read_table(write_csv(tmp_path / "o.csv", np.array([0.3, 0.4]), np.zeros((2, 3))), 3, 0.1, "observations")
    obs = observations_from(table, None, 0.1)
    assert obs.steps.tolist() == [3, 1] and obs.x_true is None and obs.x0_true is None
    np.testing.assert_allclose(obs.t, [0.3, 0.4])


def test_uploaded_data_lands_in_the_workspace_under_a_safe_name_beside_older_ones(tmp_path):
    from tools.dafiles import import_data

    ws = Workspace(tmp_path / "ws", confined=True)
    src = tmp_path / "up"
    src.write_text("time,x,y,z\n0.25,1,2,3\n")
    first = import_data(src, ws, name="../../my obs.csv")
    second = import_data(src, ws, name="my obs.csv")
    assert first == ws.root / "my_obs.csv" and second == ws.root / "my_obs-2.csv"
    assert first.read_text() == src.read_text()
    hidden = import_data(src, ws, name=".secret.csv")
    assert not hidden.name.startswith(".")
    for bad_name, match in (("obs.txt", "extension"), ("obs.nc", "not a NetCDF")):
        with pytest.raises(ToolError, match=match):
            import_data(src, ws, name=bad_name)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ToolError, match="empty"):
        import_data(tmp_path / "empty.csv", ws)
    assert sorted(p.name for p in ws.root.iterdir()) == ["my_obs-2.csv", "my_obs.csv", "secret.csv"]
