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
import time
from collections.abc import Callable
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


@dataclass
class Workspace:
    """Where one user's runs live: ``root/runs/<time>-<tool>/``.

    The CLI uses ``DALAB_HOME`` itself; each browser session of the UI gets its own root, so
    two students never see each other's runs.
    """

    root: Path
    confined: bool = False
    """True for the UI's sessions: earlier products are looked up only inside ``root`` (no
    absolute paths, no ``..``), so one session cannot read another's datasets or models."""

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run_dirs(self) -> list[Path]:
        """Finished runs, oldest first."""
        if not self.runs.is_dir():
            return []
        return sorted(p for p in self.runs.iterdir() if p.is_dir() and not p.name.startswith("."))

    def latest(self, filename: str) -> Path | None:
        """The newest finished run's file called ``filename``, or None."""
        for run in reversed(self.run_dirs()):
            candidate = run / filename
            if candidate.is_file():
                return candidate
        return None

    def resolve(self, name: str | None, filename: str, made_by: str, what: str) -> Path:
        """Find an earlier product: an explicit path or run name, else the latest one.

        Raises ToolError naming the tool to run first when there is none.
        """
        if name:
            candidates = [Path(name), self.runs / name / filename, self.runs / name]
            if self.confined:
                inside = self.root.resolve()
                candidates = [c for c in candidates[1:] if c.resolve().is_relative_to(inside)]
            for candidate in candidates:
                if candidate.is_file():
                    return candidate.resolve()
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
        fig.savefig(path, dpi=110, bbox_inches="tight")
        self.figures.append(path)
        return path

    def file(self, name: str) -> Path:
        """A path for a product file in the run directory (registered as one of the files)."""
        path = self.run_dir / name
        self.files.append(path)
        return path

    def final_path(self, path: Path) -> str:
        """The path a file made in this run will have once the run is complete (for records)."""
        if self.final_dir is None:
            return str(path)
        return str(self.final_dir / Path(path).relative_to(self.run_dir))

    def find(self, arg: str, name: str | None, filename: str, made_by: str, what: str) -> Path:
        """Resolve an earlier product and remember it, so ``reproduce.py`` names it exactly."""
        path = self.workspace.resolve(name, filename, made_by, what)
        self.resolved[arg] = str(path)
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
    """A unique final run directory name and the temporary one it is built in."""
    workspace.runs.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    final = workspace.runs / f"{stamp}-{tool}"
    k = 1
    while final.exists():
        final = workspace.runs / f"{stamp}-{k}-{tool}"
        k += 1
    tmp = workspace.runs / f".{final.name}.partial-{os.getpid()}-{time.monotonic_ns()}"
    tmp.mkdir()
    return final, tmp


def reproduce_code(tool: str, args: dict[str, Any]) -> str:
    """A snippet that runs the same call again (in the same ``DALAB_HOME`` workspace)."""
    return (
        "from tools.registry import run_tool\n\n"
        f"args = {pprint.pformat(args, sort_dicts=True)}\n"
        f"result = run_tool({tool!r}, args)\n"
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


def discard(tmp_dir: Path) -> None:
    shutil.rmtree(tmp_dir, ignore_errors=True)
