"""Reading the student's own observations and truth for the DA lab (CSV or NetCDF).

A file holds one row per time: ``time`` then one value per state variable, in state order.

* **CSV**: a header ``time,x,y,z`` (Lorenz-63) or ``time,x0,...,x39`` (Lorenz-96; the names are
  free, their number is not), then one row per time; an empty cell or ``NaN`` means "not
  observed".
* **NetCDF**: one variable per state component on a ``time`` dimension, in state order, as
  ``xarray.Dataset({"x": ("time", x), ...}, coords={"time": t}).to_netcdf(path)`` writes it.

Times must be strictly increasing multiples of the model time step ``dt`` (within
:data:`TIME_TOL`); the model steps between two observation times follow from them. A truth file
has no gaps; it may start at ``t = 0`` (the initial state) and hold more times than the
observations (every model step, say): its rows at the observation times are used. Every problem
is refused with a :class:`~tools.base.ToolError` that names the argument, the line (CSV) or time
index (NetCDF), and what is allowed.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.base import ToolError, Workspace
from toyda.experiment import Observations

CSV_EXT = (".csv",)
NC_EXT = (".nc", ".nc4", ".cdf", ".netcdf")
TIME_TOL = 1e-6
"""How far (model time units) a time may be from a multiple of ``dt``."""
MISSING = {"", "nan", "na", "n/a"}
"""Cell texts that mean "not observed" (compared lower-cased, stripped)."""
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class Table:
    """One file's content, checked: times, values and where each row came from.

    Attributes
    ----------
    t : ndarray, shape (K,)
        Times (model time units), strictly increasing, multiples of ``dt``.
    steps : ndarray of int, shape (K,)
        ``t / dt`` rounded: the model step index of each row.
    values : ndarray, shape (K, n)
        The values; NaN where not observed.
    names : tuple of str
        The n column (CSV) or variable (NetCDF) names.
    where : tuple of str
        ``"line 5"`` (CSV) or ``"time index 4"`` (NetCDF) for each row, for messages.
    """

    t: np.ndarray
    steps: np.ndarray
    values: np.ndarray
    names: tuple[str, ...]
    where: tuple[str, ...]


def state_names(n: int) -> tuple[str, ...]:
    """Column names for an ``n``-variable state: x, y, z for Lorenz-63, x0 … x{n-1} otherwise."""
    return ("x", "y", "z") if n == 3 else tuple(f"x{i}" for i in range(n))


def resolve_path(name: str, workspace: Workspace, arg: str) -> Path:
    """The file a student named, refusing paths outside a confined (UI) workspace.

    Unconfined (CLI, Python): the path as given (relative to the working directory), else relative to
    the workspace root. Confined (a browser session): only inside the workspace root, where uploads land.
    """
    given = Path(name).expanduser()
    if workspace.confined:
        root = workspace.root.resolve()
        candidate = (root / given).resolve()
        if given.is_absolute() or not candidate.is_relative_to(root) or candidate.is_relative_to(root / "sessions"):
            # (the MCP workspace is DALAB_HOME itself: the browser sessions' folders under it are not its own)
            raise ToolError(f"{arg}={name!r} is outside your workspace: upload the file and give its name "
                            "(a path inside your workspace, without '..')")
        candidates = [candidate]
    else:
        candidates = [given, workspace.root / given]
    check_extension(name, arg)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    where = "in your workspace" if workspace.confined else f"(looked in the working directory and in {workspace.root})"
    raise ToolError(f"{arg}: there is no file {name!r} {where}; give the path of a .csv or .nc file")


MAX_UPLOAD_BYTES = 50 * 2**20
"""The largest data file a student may bring into a workspace."""


def import_data(source: str | Path, workspace: Workspace, name: str | None = None) -> Path:
    """Copy a student's data file (an upload) into the workspace root, where ``observations=`` and
    ``truth=`` find it by name; returns the stored path.

    The name is made safe (letters, digits, ``._-``; no hidden or path-like names); a file of the same
    name already there is kept and the new one stored beside it (``obs-2.csv``). Refused with a
    ToolError: another extension than CSV or NetCDF, more than :data:`MAX_UPLOAD_BYTES`, an empty file.
    The content is checked when a run reads it (with line numbers), since that needs the model.
    """
    import re  # noqa: PLC0415
    import shutil  # noqa: PLC0415

    source = Path(source)
    raw = Path(name or source.name).name
    kind = check_extension(raw, "upload")
    size = source.stat().st_size
    if size == 0:
        raise ToolError(f"upload {raw!r} is empty")
    if size > MAX_UPLOAD_BYTES:
        raise ToolError(f"upload {raw!r} is {size / 2**20:.1f} MiB; at most {MAX_UPLOAD_BYTES // 2**20} MiB is allowed")
    if kind == "netcdf":
        with source.open("rb") as fh:
            head = fh.read(8)
        if not (head.startswith(b"CDF") or head == HDF5_MAGIC):
            raise ToolError(f"upload {raw!r} is not a NetCDF file (it does not start like one)")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(raw).stem).strip("_-") or "data"
    suffix = Path(raw).suffix.lower()
    workspace.root.mkdir(parents=True, exist_ok=True)
    target, k = workspace.root / f"{stem}{suffix}", 1
    while target.exists():
        k += 1
        target = workspace.root / f"{stem}-{k}{suffix}"
    tmp = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, tmp)
    tmp.replace(target)
    return target

def check_extension(name: str | Path, arg: str) -> str:
    """``"csv"`` or ``"netcdf"`` from the file name; a ToolError for any other extension."""
    suffix = Path(name).suffix.lower()
    if suffix in CSV_EXT:
        return "csv"
    if suffix in NC_EXT:
        return "netcdf"
    raise ToolError(f"{arg}={str(name)!r}: the extension {suffix or '(none)'!r} is not allowed; give a CSV file "
                    f"(.csv) or a NetCDF file ({', '.join(NC_EXT)})")


def read_table(path: Path, n: int, dt: float, arg: str, *, gaps: bool = True) -> Table:
    """Read and check one CSV or NetCDF file of ``time`` + ``n`` state columns.

    Parameters
    ----------
    path : Path
        The file (``.csv`` or NetCDF).
    n : int
        Number of state variables of the model.
    dt : float
        Model time step; every time must be a multiple of it.
    arg : str
        The tool argument the file came from (``"observations"``, ``"truth"``), named in errors.
    gaps : bool
        Whether empty/NaN cells are allowed (observations: yes; truth: no).
    """
    path = Path(path)
    kind = check_extension(path, arg)
    if not path.is_file():
        raise ToolError(f"{arg}: there is no file {str(path)!r}")
    if path.stat().st_size == 0:
        raise ToolError(f"{arg}: the file {path.name!r} is empty; it needs a header line and one row per time")
    t, values, names, where = (_read_csv if kind == "csv" else _read_netcdf)(path, n, arg)
    if not len(t):
        raise ToolError(f"{arg}: {path.name!r} has a header but no rows; give one row per time")
    steps = _check_times(t, where, dt, arg)
    if not gaps:
        bad = np.argwhere(~np.isfinite(values))
        if len(bad):
            k, j = bad[0]
            raise ToolError(f"{arg}: {where[k]} has no value for {names[j]!r}; the truth needs every value "
                            "(gaps are allowed only in the observations)")
    return Table(t=t, steps=steps, values=values, names=names, where=tuple(where))


def _read_csv(path: Path, n: int, arg: str):
    rows = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            for row in reader:
                if any(cell.strip() for cell in row):  # blank lines are skipped, line numbers kept
                    rows.append((reader.line_num, row))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ToolError(f"{arg}: {path.name!r} is not a readable CSV text file ({exc})") from None
    if not rows:
        raise ToolError(f"{arg}: the file {path.name!r} is empty; it needs a header line and one row per time")
    line, header = rows[0]
    header = [h.strip() for h in header]
    expected = "time," + ",".join(state_names(n))
    if header[0].lower() != "time":
        hint = " (columns must be separated by commas)" if len(header) == 1 and (";" in header[0] or "\t" in header[0]) else ""
        raise ToolError(f"{arg}: line {line}: the header must start with 'time', got {header[0][:40]!r}{hint}; "
                        f"write a header such as {expected[:80]}")
    if len(header) != n + 1:
        raise ToolError(f"{arg}: line {line}: {len(header) - 1} state columns after 'time' but the model has {n} "
                        f"state variables; the header should be {expected[:80]}")
    t = np.empty(len(rows) - 1)
    values = np.empty((len(rows) - 1, n))
    where = []
    for i, (line, row) in enumerate(rows[1:]):
        if len(row) != n + 1:
            raise ToolError(f"{arg}: line {line}: {len(row)} cells but the header has {n + 1} (time + {n} state "
                            "variables); leave a cell empty for a value that was not observed")
        t[i] = _number(row[0], line, "time", arg, allow_missing=False)
        values[i] = [_number(c, line, header[j + 1], arg) for j, c in enumerate(row[1:])]
        where.append(f"line {line}")
    return t, values, tuple(header[1:]), where


def _number(cell: str, line: int, column: str, arg: str, allow_missing: bool = True) -> float:
    text = cell.strip()
    if text.lower() in MISSING:
        if allow_missing:
            return math.nan
        raise ToolError(f"{arg}: line {line}: the {column!r} cell is empty; every row needs its time")
    try:
        value = float(text)
    except ValueError:
        raise ToolError(f"{arg}: line {line}, column {column!r}: {text[:30]!r} is not a number "
                        "(write a number, or leave the cell empty / NaN where not observed)") from None
    if math.isinf(value):
        raise ToolError(f"{arg}: line {line}, column {column!r}: {text!r} is not a finite number")
    return value


def _read_netcdf(path: Path, n: int, arg: str):
    import xarray as xr  # noqa: PLC0415

    with open(path, "rb") as fh:
        magic = fh.read(8)
    try:
        ds = xr.open_dataset(path, decode_times=False)
    except Exception as exc:  # noqa: BLE001 - any reader failure is the student's file
        hint = (" It is a NetCDF-4 (HDF5) file, which this installation cannot read: save it as NetCDF-3, e.g. "
                "ds.to_netcdf(path, format='NETCDF3_64BIT'), or give a CSV file." if magic == HDF5_MAGIC else
                " Give a NetCDF file as xarray writes it, or a CSV file.")
        raise ToolError(f"{arg}: {path.name!r} is not a readable NetCDF file ({type(exc).__name__}).{hint}") from None
    with ds:
        if "time" not in ds.dims:
            raise ToolError(f"{arg}: {path.name!r} has no 'time' dimension (dimensions: {', '.join(map(str, ds.dims)) or 'none'}); "
                            "write one variable per state component on a 'time' dimension")
        names = tuple(str(v) for v in ds.data_vars if ds[v].dims == ("time",))
        if len(names) != n:
            raise ToolError(f"{arg}: {path.name!r} has {len(names)} variables on the 'time' dimension "
                            f"({', '.join(names[:6]) or 'none'}{'...' if len(names) > 6 else ''}) but the model has "
                            f"{n} state variables; write one variable per component, in state order")
        t = np.asarray(ds["time"].values, dtype=float) if "time" in ds.variables else None
        if t is None or not np.isfinite(t).all():
            raise ToolError(f"{arg}: {path.name!r} needs a numeric 'time' coordinate (model time units)")
        try:
            values = np.stack([np.asarray(ds[v].values, dtype=float) for v in names], axis=1)
        except (TypeError, ValueError):
            raise ToolError(f"{arg}: {path.name!r}: the state variables must be numbers") from None
    if np.isinf(values).any():
        k = int(np.argwhere(np.isinf(values))[0, 0])
        raise ToolError(f"{arg}: time index {k}: a value is infinite; write a finite number or NaN where not observed")
    return t, values.reshape(len(t), n), names, [f"time index {k}" for k in range(len(t))]


def _check_times(t: np.ndarray, where: list[str], dt: float, arg: str) -> np.ndarray:
    """Model step indices of the times; refuses negative, unsorted, repeated or off-grid times."""
    steps = np.rint(t / dt).astype(np.int64)
    for k in range(len(t)):
        if t[k] < 0:
            raise ToolError(f"{arg}: {where[k]}: time {t[k]:g} is negative; times start at 0 (model time units)")
        if abs(t[k] - steps[k] * dt) > TIME_TOL:
            raise ToolError(f"{arg}: {where[k]}: time {t[k]:.10g} is not a multiple of dt = {dt:g} (within {TIME_TOL:g}; "
                            f"the nearest is {steps[k] * dt:.10g}); give times on the model's time grid or change dt")
        if k and steps[k] <= steps[k - 1]:
            what = "repeats the time of" if steps[k] == steps[k - 1] else "comes before the time of"
            raise ToolError(f"{arg}: {where[k]}: time {t[k]:g} {what} {where[k - 1]} ({t[k - 1]:g}); times must be "
                            "strictly increasing: sort the rows and keep one row per time")
    return steps


def observations_from(obs: Table, truth: Table | None, dt: float) -> Observations:
    """Combine the observation and (optional) truth tables into :class:`toyda.experiment.Observations`.

    The first observation must come after ``t = 0`` (the initial time of the cycle); the truth needs a
    row at every observation time, and its row at ``t = 0``, when there is one, is the initial truth.
    """
    if obs.steps[0] < 1:
        raise ToolError(f"observations: {obs.where[0]}: the first observation time must be after t = 0 (the initial "
                        "time the cycle starts from); put the initial state in the truth file instead")
    x_true = x0_true = None
    if truth is not None:
        if truth.values.shape[1] != obs.values.shape[1]:  # both were read for the same model
            raise ToolError("truth: its number of state columns differs from the observations'")
        row = {int(s): k for k, s in enumerate(truth.steps)}
        missing = [k for k, s in enumerate(obs.steps) if int(s) not in row]
        if missing:
            k = missing[0]
            raise ToolError(f"truth: no row at time {obs.t[k]:g} (observations {obs.where[k]}; {len(missing)} observation "
                            "time(s) missing): the truth file needs a row at every observation time")
        x_true = truth.values[[row[int(s)] for s in obs.steps]]
        x0_true = truth.values[row[0]] if 0 in row else None
    steps = np.diff(obs.steps, prepend=0).astype(int)
    return Observations(t=obs.steps * dt, y=obs.values, steps=steps, x_true=x_true, x0_true=x0_true)


def read_observations(observations: str | Path, n: int, dt: float, truth: str | Path | None = None) -> Observations:
    """Read the observation file and, optionally, the truth file for an ``n``-variable model with step ``dt``.

    Returns
    -------
    Observations
        ``t (K,)``, ``y (K, n)`` with NaN where not observed, ``steps (K,)`` model steps from the previous
        observation time (the first from t = 0), ``x_true (K, n)`` and ``x0_true (n,)`` or None.
    """
    obs = read_table(Path(observations), n, dt, "observations", gaps=True)
    ref = read_table(Path(truth), n, dt, "truth", gaps=False) if truth is not None else None
    return observations_from(obs, ref, dt)


def write_csv(path: Path, t: np.ndarray, values: np.ndarray, names: tuple[str, ...] | None = None) -> Path:
    """Write ``time`` + ``values (K, n)`` in the format :func:`read_table` reads (NaN as an empty cell)."""
    values = np.asarray(values, float).reshape(len(t), -1)
    names = names or state_names(values.shape[1])
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(("time", *names))
        for tk, row in zip(t, values):
            out.writerow([repr(float(tk))] + ["" if np.isnan(v) else repr(float(v)) for v in row])
    return Path(path)
