"""The tool contract: ``ToolResult``, ``ToolError``, the run context and run records.

Every call of a tool goes through :func:`tools.registry.run_tool`, which validates the
arguments, makes a run directory, calls the tool function with a :class:`RunContext`, and
writes the run record (``args.json``, ``metrics.json``, ``result.json``, ``reproduce.py``,
the figures and files). The run directory is built under a temporary name and renamed at the
end, so a failed call leaves nothing half-written behind.
"""

from __future__ import annotations

import json
import math
import os
import pprint
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

Progress = Callable[[float, str], None]
"""``progress(fraction in [0, 1], message)``: how long tools report how far they are."""


class ToolError(ValueError):
    """Bad input or a missing earlier product; the message says what is wrong and what to do."""


def fault_location(exc: BaseException) -> str:
    """The innermost frame of dalab's own code where ``exc`` was raised ("toyda/var3d.py:71 in
    analysis"); for a run in a worker process, the place the worker recorded (``dalab_where``)."""
    import traceback  # noqa: PLC0415

    recorded = getattr(exc, "dalab_where", None)
    if isinstance(recorded, str):
        return recorded
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if any(f"/{pkg}/" in f.filename.replace("\\", "/") for pkg in ("toyda", "tools", "assistant"))]
    if not frames:
        return "an unknown place"
    f = frames[-1]
    parts = Path(f.filename).parts
    return f"{'/'.join(parts[-2:])}:{f.lineno} in {f.name}"


class RunCancelled(BaseException):  # noqa: N818 — like KeyboardInterrupt: not an error of the tool
    """Raised inside a running tool (at its next progress report) when its user pressed Cancel or
    the run outlived its time limit; ``run_tool`` removes the partial run folder and re-raises."""


class ToolArgs(BaseModel):
    """Base of every tool's arguments: unknown arguments are refused, defaults are filled."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def arg(default: Any = ..., *, phrases: tuple[str, ...] | list[str] = (),
        values: dict[str, Any] | None = None, files: tuple[str, ...] = (), **kwargs: Any) -> Any:
    """A pydantic ``Field`` that also declares how students name the argument.

    ``phrases`` are the words students use for it ("obs error", "observation noise", "σo" for
    sigma_o; "let B evolve", "Kalman-style update" for covariance_update); ``values`` maps each
    allowed value of a text/literal argument to the words that mean it ({"etkf": ["ensemble
    transform", "square-root enkf"]}); ``files`` the extensions of a file argument ((".csv", ".nc")).
    A phrase with ``#`` says where the number stands ("every # steps"). The offline model reads
    requests with these.
    """
    extra = dict(kwargs.pop("json_schema_extra", None) or {})
    if phrases:
        extra["phrases"] = list(phrases)
    if values:
        extra["values"] = {k: list(v) for k, v in values.items()}
    if files:
        extra["files"] = list(files)
    return Field(default, json_schema_extra=extra or None, **kwargs)


def phrases_of(args: type[BaseModel], name: str) -> list[str]:
    """The declared phrases of argument ``name`` (see :func:`arg`)."""
    extra = args.model_fields[name].json_schema_extra
    return list(extra.get("phrases", [])) if isinstance(extra, dict) else []


def values_of(args: type[BaseModel], name: str) -> dict[str, list[str]]:
    """The declared words for each value of argument ``name`` (see :func:`arg`)."""
    extra = args.model_fields[name].json_schema_extra
    return dict(extra.get("values", {})) if isinstance(extra, dict) else {}


def phrase_regex(phrase: str) -> str:
    """A phrase as a pattern on lower-cased text: spaces, underscores and hyphens interchangeable,
    whole words."""
    parts = [re.escape(w) for w in re.split(r"[\s_-]+", phrase.strip().lower()) if w]
    body = r"[\s_-]*".join(parts)
    return rf"(?<![\w]){body}(?![\w])"


@dataclass(frozen=True)
class Example:
    """A request a student might write and the arguments it means (doubles as a routing test)."""

    request: str
    args: dict[str, Any] = field(default_factory=dict)


ToolFn = Callable[[Any, "RunContext"], tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Prediction:
    """A question a tutor asks before the run ("will the analysis error end above or below σ_o?"),
    and how the run's own numbers answer it."""

    question: str
    """the question; ``{name}`` fields are filled from the call's validated arguments"""
    options: tuple[str, ...]
    """the answers a student can give, e.g. ("above", "below")"""
    outcome: Callable[["ToolResult"], tuple[str, str]]
    """(the right option, a sentence with the numbers that show it)"""


def flat_cost(mib: float, seconds: float) -> Callable[[Any], tuple[float, float]]:
    """``ToolSpec.cost`` of a tool whose size its arguments do not change (one small model, one
    figure, a script): about ``mib`` MiB and ``seconds`` s whatever it is asked."""
    return lambda args: (mib * 2**20, seconds)


@dataclass(frozen=True)
class ToolSpec:
    """Everything about one tool, declared once in its module.

    The registry, the agent's tool list, the CLI, the UI forms, MCP and the offline model's
    routing are all derived from these declarations.
    """

    name: str
    fn: ToolFn
    args: type["ToolArgs"]
    examples: tuple[Example, ...] = ()
    """requests with the arguments they mean; each routes to this tool (tested)"""
    keywords: tuple[tuple[float, str], ...] = ()
    """(weight, regex) on the lower-cased request: words that name this tool; the highest weight wins"""
    topic: str = ""
    """lecture words a search adds when a question refers to this tool's experiment"""
    figures: tuple[str, ...] = ()
    """names of the figures it saves (without .png)"""
    records: bool = True
    """False for tools that only read (search_lectures): no run directory is written."""
    questions: tuple[str, ...] = ()
    """regexes of questions this tool answers by running ("how does .* depend on"), not from the notes"""
    read: Callable[..., dict[str, Any]] | None = None
    """``read(request)``: the arguments that phrases cannot express (a sweep's grid, a list of methods)
    from a request; ``read(request, tools)`` when it
    takes a second parameter: ``tools`` are then the registry's tools, for a tool that works on other
    tools (run_sweep reads its target's declared phrases)"""
    predictions: tuple[Prediction, ...] = ()
    """what a tutor asks the student to predict before running it"""
    hints: tuple[str, ...] = ()
    """hints in steps, from gentle to nearly the answer, for the lab exercise this tool serves"""
    explain: Callable[["ToolResult", str], str | None] | None = None
    """answers a question about this tool's last result from its own numbers ("what did the gain come
    out as?"), or None when the question is not about them"""
    reproduce: Callable[[dict[str, Any]], str] | None = None
    """``reproduce(record args) -> code`` for a reproduce.py that shows the science (default: run_tool again)."""
    cost: Callable[..., tuple[float, float]] | None = None
    """``cost(args) -> (bytes of memory, seconds)``: an estimate from the arguments, checked by
    ``run_tool`` against the server's limits before anything is written (None: always cheap);
    ``cost(args, tools, validate)`` when it takes three parameters: the registry's tools and
    argument check, for a tool that runs other tools (run_sweep)."""

    @property
    def description(self) -> str:
        """The docstring, which is what an LLM reads to decide when to use the tool."""
        import inspect  # noqa: PLC0415

        return inspect.cleandoc(self.fn.__doc__ or "")

    def json_schema(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "parameters": self.args.model_json_schema()}


class ToolResult(BaseModel):
    """What every tool returns: the summary and metrics a person and an LLM read, the figures, files and reproduce code."""

    model_config = ConfigDict(frozen=True)

    tool: str = Field(description="registry name")
    args: dict[str, Any] = Field(description="validated args, defaults filled in")
    summary: str = Field(description="1–4 sentences with the key numbers")
    metrics: dict[str, float | int | str] = Field(default_factory=dict)
    figures: list[Path] = Field(default_factory=list, description="PNGs under the run directory")
    files: list[Path] = Field(default_factory=list, description="datasets, checkpoints")
    run_dir: Path
    code: str = Field(description="a Python snippet that reproduces this call exactly")
    passages: list[dict[str, Any]] = Field(
        default_factory=list, description="retrieved lecture passages (search_lectures): text, source, section, score")

    def content(self) -> str:
        """The text an LLM reads: the summary and the metrics."""
        lines = [self.summary]
        if self.metrics:
            lines.append("metrics: " + ", ".join(f"{k}={_fmt(v)}" for k, v in self.metrics.items()))
        if self.figures:
            lines.append("figures: " + ", ".join(p.name for p in self.figures))
        return "\n".join(lines)


def _fmt(v: float | int | str) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


@dataclass(eq=False)
class Workspace:
    """Where one user's runs live: ``root/runs/<time>-<tool>/``.

    The CLI uses ``DALAB_HOME`` itself; each browser session of the UI gets its own root, so
    two students never see each other's runs.
    """

    root: Path
    confined: bool = False
    """True for the UI's sessions and MCP: earlier products are looked up only inside ``root`` (no
    absolute paths, no ``..``), records and messages name paths relative to ``root``, and the
    folder is private to the server's user (mode 700)."""
    max_active: int | None = None
    """how many runs may go on at once in this workspace (None: no limit); more are refused"""
    _active: int = field(default=0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def prepare(self) -> None:
        """Create ``runs/`` (a confined root private to the server's user: mode 700)."""
        if self.confined:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.root, 0o700)
        self.runs.mkdir(parents=True, exist_ok=True)

    def run_dirs(self) -> list[Path]:
        """Finished runs, oldest first (a name reserved by a run still going is not one yet)."""
        if not self.runs.is_dir():
            return []
        return sorted(p for p in self.runs.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and (p / "result.json").is_file())

    def latest(self, filename: str) -> Path | None:
        """The newest finished run's file called ``filename``, or None."""
        for run in reversed(self.run_dirs()):
            candidate = run / filename
            if candidate.is_file():
                return candidate
        return None

    def shown(self, path: Path | str) -> str:
        """``path`` as records and messages name it: relative to the root in a confined workspace."""
        path = Path(path)
        if self.confined:
            for root in (self.root, self.root.resolve()):
                if path.is_relative_to(root):
                    return path.relative_to(root).as_posix()
        return str(path)

    def path(self, shown: str | Path) -> Path:
        """The file a recorded path names (the inverse of :meth:`shown`)."""
        return self.root / shown if not Path(shown).is_absolute() else Path(shown)

    def scrub(self, text: str) -> str:
        """``text`` with the workspace's absolute location removed (confined workspaces only)."""
        if not self.confined:
            return text
        for root in sorted({str(self.root.resolve()), str(self.root)}, key=len, reverse=True):
            text = text.replace(root + os.sep, "").replace(root, ".")
        return text

    def resolve(self, name: str | None, filename: str, made_by: str, what: str) -> Path:
        """Find an earlier product: an explicit path or run name, else the latest one.

        Raises ToolError naming the tool to run first when there is none.
        """
        if name:
            if len(name) > 255 or "\0" in name:
                raise ToolError(f"the {what} name is too long ({len(name)} characters): give the name of a run "
                                "(see the Runs tab or `runs/`), or leave it out to use the latest one")
            candidates = [Path(name), self.root / name, self.runs / name / filename, self.runs / name]
            if self.confined:       # only this workspace's own runs (not the UI's sessions under DALAB_HOME)
                inside = self.runs.resolve()
                candidates = [c for c in candidates[1:] if c.resolve().is_relative_to(inside)]
            for candidate in candidates:
                try:
                    if candidate.is_file():
                        return candidate.resolve()
                except OSError:        # a name the file system refuses is no product either
                    continue
            if self.confined:
                raise ToolError(f"no {what} called {name!r} among your runs: give the name of one of your runs "
                                f"that holds a {filename} (see the Runs tab), or leave it out to use the latest one")
            raise ToolError(
                f"no {what} called {name!r}: give the path of a {filename} file or the name of a run "
                f"folder in {self.runs} that holds one, or leave it out to use the latest one"
            )
        latest = self.latest(filename)
        if latest is None:
            raise ToolError(f"there is no {what} in this workspace yet: run `{made_by}` first")
        return latest.resolve()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the workspace's ``max_active`` run slots for a run; a ToolError when all are taken."""
        with self._lock:
            if self.max_active is not None and self._active >= self.max_active:
                raise ToolError(f"you already have {self._active} run(s) going: wait for it to finish (or press "
                                f"Cancel), then try again — each session runs at most {self.max_active} at a time")
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1


@dataclass
class RunContext:
    """Handed to a tool function: where to write, how to report progress, what it made."""

    tool: str
    args: ToolArgs
    run_dir: Path
    workspace: Workspace
    progress: Progress = lambda fraction, message: None  # noqa: E731
    final_dir: Path | None = None
    """where the run directory will be once it is complete (it is built under a temporary name)"""
    figures: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    resolved: dict[str, str] = field(default_factory=dict)
    passages: list[dict[str, Any]] = field(default_factory=list)
    figures_enabled: bool = True
    """False where only the numbers are wanted (each point of a sweep): figures are not saved."""
    tools: dict[str, Any] = field(default_factory=dict)
    """the registry's tools, for a tool that works on other tools (write_script)"""
    validate: Callable[[str, dict[str, Any] | None], Any] | None = None
    """``validate(tool, args)``: the registry's argument check (a ToolError that names what is allowed)"""

    def save_figure(self, fig: Any, name: str) -> Path:
        """Save a matplotlib figure as ``<name>.png`` in the run directory (unless figures are off)."""
        path = self.run_dir / f"{name}.png"
        if not self.figures_enabled:
            return path
        # a figure with a layout engine is already fitted to its canvas: cropping it ("tight") would
        # draw it twice; fast zlib (level 1) costs ~10% in size and saves a tenth of the time
        fitted = fig.get_layout_engine() is not None or getattr(fig, "fitted", False)   # plots._margins_for_legends
        fig.savefig(path, dpi=110, bbox_inches=None if fitted else "tight", pil_kwargs={"compress_level": 1})
        self.figures.append(path)
        return path

    def file(self, name: str) -> Path:
        """A path for a product file in the run directory (registered as one of the files)."""
        path = self.run_dir / name
        self.files.append(path)
        return path

    def final_path(self, path: Path) -> str:
        """The path a file made in this run will have once the run is complete (for records;
        relative to the workspace in a confined one)."""
        if self.final_dir is None:
            return self.workspace.shown(path)
        return self.workspace.shown(self.final_dir / Path(path).relative_to(self.run_dir))

    def record(self, arg: str, path: Path) -> None:
        """Remember the earlier product ``arg`` named, so ``reproduce.py`` names it exactly."""
        self.resolved[arg] = self.workspace.shown(path)

    def find(self, arg: str, name: str | None, filename: str, made_by: str, what: str) -> Path:
        """Resolve an earlier product and remember it, so ``reproduce.py`` names it exactly."""
        path = self.workspace.resolve(name, filename, made_by, what)
        self.record(arg, path)
        return path


def clean_metrics(metrics: dict[str, Any]) -> dict[str, float | int | str]:
    """Plain JSON numbers; refuses NaN/inf (a tool must never report them as results)."""
    out: dict[str, float | int | str] = {}
    for k, v in metrics.items():
        if isinstance(v, (np.integer, int)) and not isinstance(v, bool):
            out[k] = int(v)
        elif isinstance(v, (np.floating, float)):
            if not math.isfinite(float(v)):
                raise FloatingPointError(f"metric {k} is not finite ({v})")
            out[k] = float(v)
        else:
            out[k] = str(v)
    return out


def new_run_dir(workspace: Workspace, tool: str) -> tuple[Path, Path]:
    """A unique final run directory name and the temporary one it is built in.

    The final name is reserved at once by creating it (``mkdir`` fails if it exists, so two runs
    started in the same microsecond, in one process or two, get different names); the run is
    built in a hidden ``.<name>.partial-<pid>-<ns>`` folder and renamed onto the reservation.
    """
    workspace.prepare()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    final = workspace.runs / f"{stamp}-{tool}"
    k = 1
    while True:
        try:
            final.mkdir()
            break
        except FileExistsError:
            final = workspace.runs / f"{stamp}-{k}-{tool}"
            k += 1
    tmp = workspace.runs / f".{final.name}{PARTIAL}{os.getpid()}-{time.monotonic_ns()}"
    tmp.mkdir()
    return final, tmp


PARTIAL = ".partial-"


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None when there is no such process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except OSError:
            pass
        return 0.0          # alive, start unknown (no /proc): keep its folder


def clean_partials(root: Path) -> int:
    """Remove the partial run folders (and their empty name reservations) that a killed process
    left under ``root/runs`` and ``root/sessions/*/runs``: those whose process is gone, or is a
    newer process that reused the id (the folder is older than it). Returns how many went."""
    removed = 0
    root = Path(root)
    run_roots = [root / "runs", *sorted((root / "sessions").glob("*/runs"))]
    for runs in run_roots:
        try:
            entries = list(runs.iterdir())
        except OSError:
            continue
        for tmp in entries:
            name = tmp.name
            if not (name.startswith(".") and PARTIAL in name and tmp.is_dir()):
                continue
            try:
                pid = int(name.rsplit(PARTIAL, 1)[1].split("-")[0])
                made = tmp.stat().st_mtime
            except (ValueError, OSError):
                continue
            started = _process_start(pid)
            if started is not None and (started == 0.0 or made >= started - 1):
                continue        # its process is still running
            shutil.rmtree(tmp, ignore_errors=True)
            reserved = runs / name[1:].rsplit(PARTIAL, 1)[0]
            try:
                reserved.rmdir()         # only if empty: a finished run is never touched
            except OSError:
                pass
            removed += 1
    return removed


def reproduce_code(tool: str, args: dict[str, Any], in_workspace: bool = False) -> str:
    """A snippet that runs the same call again: in the same ``DALAB_HOME`` workspace, or, with
    ``in_workspace`` (a confined workspace, whose records name paths relative to it), in the
    workspace that holds the ``reproduce.py`` it is saved as."""
    if in_workspace:
        head = ("from pathlib import Path\n\nfrom tools.registry import run_tool\n\n"
                "WORKSPACE = Path(__file__).resolve().parents[2]   # the workspace this run belongs to\n"
                f"args = {pprint.pformat(args, sort_dicts=True)}\n"
                f"result = run_tool({tool!r}, args, workspace=WORKSPACE)\n")
    else:
        head = ("from tools.registry import run_tool\n\n"
                f"args = {pprint.pformat(args, sort_dicts=True)}\n"
                f"result = run_tool({tool!r}, args)\n")
    return head + (
        "print(result.summary)\n"
        "for name, value in result.metrics.items():\n"
        "    print(f'{name} = {value}')\n"
    )


def write_record(result: ToolResult, tmp_dir: Path) -> None:
    """Write ``args.json``, ``metrics.json``, ``result.json`` and ``reproduce.py``."""
    (tmp_dir / "args.json").write_text(json.dumps(result.args, indent=2, sort_keys=True) + "\n")
    (tmp_dir / "metrics.json").write_text(json.dumps(result.metrics, indent=2) + "\n")
    (tmp_dir / "reproduce.py").write_text(
        f'"""Reproduces the {result.tool} run {result.run_dir.name}: python reproduce.py"""\n\n'
        + result.code
    )
    (tmp_dir / "result.json").write_text(result.model_dump_json(indent=2) + "\n")


def discard(tmp_dir: Path, reserved: Path | None = None) -> None:
    """Remove a run's partial folder (and its name reservation, if still empty)."""
    shutil.rmtree(tmp_dir, ignore_errors=True)
    if reserved is not None:
        try:
            reserved.rmdir()
        except OSError:
            pass
