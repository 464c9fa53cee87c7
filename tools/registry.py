"""The one registry of dalab's tools, listed by hand, used by the agent, the CLI, the UI and MCP.

``run_tool(name, args)`` is the single way to call a tool: it validates the arguments into
the tool's pydantic model (a ``ToolError`` that names the argument and what is allowed
otherwise), runs the tool in a fresh run directory and writes the run record.
"""

from __future__ import annotations

import inspect
import math
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tools import assimilation, atmosda, atmosphere, da, lectures, learning, scripts, sweep
from tools.base import (
    Progress,
    RunCancelled,
    ToolSpec,
    RunContext,
    ToolArgs,
    ToolError,
    ToolResult,
    Workspace,
    clean_metrics,
    discard,
    new_run_dir,
    reproduce_code,
    write_record,
)



# The tool modules, in the order tools are listed; each declares its tools once (``TOOLS``).
MODULES = (atmosphere, learning, assimilation, da, atmosda, sweep, scripts, lectures)

TOOLS: dict[str, ToolSpec] = {spec.name: spec for module in MODULES for spec in module.TOOLS}


def get_tool(name: str) -> ToolSpec:
    try:
        return TOOLS[name]
    except KeyError:
        raise ToolError(f"unknown tool {name!r}; the tools are: {', '.join(TOOLS)}") from None


def allowed(schema: dict[str, Any]) -> str:
    """What a field accepts, in words, from its JSON schema."""
    if "anyOf" in schema:
        return " or ".join(allowed(s) for s in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    kind = {"integer": "an integer", "number": "a number", "string": "text", "boolean": "true or false",
            "null": "nothing (leave it out)"}.get(schema.get("type", ""), schema.get("type", "a value"))
    bounds = []
    for key, word in (("exclusiveMinimum", ">"), ("minimum", ">="), ("exclusiveMaximum", "<"),
                      ("maximum", "<="), ("minLength", "length >="), ("maxLength", "length <=")):
        if key in schema:
            bounds.append(f"{word} {schema[key]}")
    return kind + (" " + " and ".join(bounds) if bounds else "")


def validation_message(spec: ToolSpec, exc: ValidationError) -> str:
    """One line per bad argument: its name, the value, and what is allowed."""
    props = spec.args.model_json_schema().get("properties", {})
    problems = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "?"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown argument {name!r}; {spec.name} takes: {', '.join(props)}")
            continue
        field = props.get(name, {})
        what = field.get("description", "")
        own = err["msg"].removeprefix("Value error, ") if err["type"] == "value_error" else ""   # a validator's reason
        problems.append(f"argument {name!r} = {shorten(err.get('input'))} is not allowed: must be {allowed(field)}"
                        + (f" ({what})" if what else "") + (f": {cut(own, 200)}" if own else ""))
    return f"invalid arguments for {spec.name}:\n- " + "\n- ".join(problems)


def cut(text: str, limit: int = 80) -> str:
    """``text`` cut to about ``limit`` characters (a 100k-character query is not echoed whole)."""
    return text if len(text) <= limit else f"{text[:limit - 20]}… ({len(text)} characters)"


def shorten(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to about ``limit`` characters."""
    return cut(repr(value), limit)


def _numeric_only(schema: dict[str, Any]) -> bool:
    options = [o for o in schema.get("anyOf", [schema]) if o.get("type") != "null"]
    return bool(options) and all(o.get("type") in ("integer", "number") for o in options)


def _strict_problems(spec: ToolSpec, args: dict[str, Any]) -> list[str]:
    """What pydantic's lax mode would let through: true/false for a number, NaN or infinity."""
    props = spec.args.model_json_schema().get("properties", {})
    problems = []
    for name, value in args.items():
        field = props.get(name)
        if field is None or not _numeric_only(field):
            continue
        if isinstance(value, bool):
            problems.append(f"argument {name!r} = {value!r} is not allowed: true/false is not a number; "
                            f"must be {allowed(field)}")
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"argument {name!r} = {value!r} is not allowed: NaN and infinity are not allowed; "
                            f"must be {allowed(field)}")
        elif isinstance(value, str) and value.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
            problems.append(f"argument {name!r} = {shorten(value)} is not allowed: NaN and infinity are not "
                            f"allowed; must be {allowed(field)}")
    return problems


def validate_args(spec: ToolSpec, args: dict[str, Any] | None) -> ToolArgs:
    """The arguments as the tool's model; a ToolError naming each bad argument otherwise.

    Stricter than pydantic's lax mode where it matters: true/false is not a number, and NaN or
    infinity is refused with a message that says so (not "should be <= 10")."""
    if args is not None and not isinstance(args, dict):
        raise ToolError(f"arguments for {spec.name} must be a mapping of names to values, got {type(args).__name__}")
    problems = _strict_problems(spec, args or {})
    if problems:
        raise ToolError(f"invalid arguments for {spec.name}:\n- " + "\n- ".join(problems))
    try:
        return spec.args.model_validate(args or {})
    except ValidationError as exc:
        raise ToolError(validation_message(spec, exc)) from None


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**28 else f"{n_bytes / 2**20:.0f} MiB"


def check_cost(spec: ToolSpec, args: ToolArgs, max_memory_gb: float, max_seconds: float) -> tuple[float, float]:
    """The run's estimated (bytes, seconds); a ToolError with the estimate and the limit when it exceeds one."""
    if spec.cost is None:
        return 0.0, 0.0
    if len(inspect.signature(spec.cost).parameters) >= 3:       # a tool that runs other tools
        memory, seconds = spec.cost(args, TOOLS, lambda tool, a: validate_args(get_tool(tool), a))
    else:
        memory, seconds = spec.cost(args)
    over = []
    if memory > max_memory_gb * 2**30:
        over.append(f"about {_gib(memory)} of memory (the limit is {max_memory_gb:g} GiB per run, DALAB_MAX_MEMORY_GB)")
    if seconds > max_seconds:
        over.append(f"about {seconds:.0f} s (the limit is {max_seconds:g} s per run, DALAB_MAX_RUN_SECONDS)")
    if over:
        raise ToolError(f"{spec.name} with these arguments would need {' and '.join(over)}: ask for a smaller run "
                        "(fewer steps, snapshots, trajectories, epochs or grid points)")
    return memory, seconds


_RUNNER: Any = None
"""where recorded runs go instead of this process (``install``); None: here"""


def install(runner: Any) -> None:
    """Send every recorded run to ``runner`` (a ``tools.workers.RunWorkers``, as ``dalab ui`` does),
    or back to this process with None. Arguments, cost limits and run slots are checked here first."""
    global _RUNNER
    _RUNNER = runner


def run_tool(
    name: str,
    args: dict[str, Any] | None = None,
    *,
    workspace: Workspace | Path | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> ToolResult:
    """Validate, run and record one tool call.

    Parameters
    ----------
    name : str
        Registry name (see ``TOOLS``).
    args : dict, optional
        Arguments; defaults are filled in.
    workspace : Workspace, Path or str, optional
        Where runs are written and earlier products are found; default ``DALAB_HOME``.
    progress : callable, optional
        ``progress(fraction, message)`` for long tools.
    cancel : threading.Event, optional
        Set it to stop the run at its next progress report (``RunCancelled`` is raised and the
        partial run folder removed). A run also stops once it takes twice its time limit.

    Before anything is written, the tool's estimated memory and time (``ToolSpec.cost``) are
    checked against ``DALAB_MAX_MEMORY_GB`` and ``DALAB_MAX_RUN_SECONDS``, and the workspace's
    limit on runs going at once (``Workspace.max_active``) is applied.
    """
    from tools.settings import get_settings  # noqa: PLC0415

    spec = get_tool(name)
    parsed = validate_args(spec, args)
    settings = get_settings() if (workspace is None or spec.cost is not None) else None
    if workspace is None:
        workspace = Workspace(settings.home)
    elif isinstance(workspace, (str, Path)):
        workspace = Workspace(Path(workspace))
    elif not isinstance(workspace, Workspace):
        raise TypeError(f"workspace must be a Workspace, a path or None, got {type(workspace).__name__}")
    if settings is not None:
        check_cost(spec, parsed, settings.max_memory_gb, settings.max_run_seconds)
    if _RUNNER is not None and spec.records:
        with workspace.slot():       # the session's slot is counted here, where its runs are known
            return _RUNNER.run(name, args, workspace, progress, cancel)
    deadline = time.monotonic() + 2 * settings.max_run_seconds if settings is not None else math.inf
    report = progress or (lambda f, m: None)

    def guarded(fraction: float, message: str) -> None:
        if cancel is not None and cancel.is_set():
            raise RunCancelled(f"{name} was cancelled")
        if time.monotonic() > deadline:
            raise RunCancelled(f"{name} ran past twice its time limit ({settings.max_run_seconds:g} s) and was stopped")
        report(fraction, message)

    with workspace.slot() if spec.records else _nothing():
        final, tmp = new_run_dir(workspace, name)
        ctx = RunContext(name, parsed, tmp, workspace, guarded, final_dir=final, tools=TOOLS,
                         validate=lambda tool, a: validate_args(get_tool(tool), a))
        try:
            summary, metrics = spec.fn(parsed, ctx)
            metrics = clean_metrics(metrics)
        except (ValueError, FloatingPointError) as exc:
            discard(tmp, final)
            if isinstance(exc, ToolError):
                raise ToolError(workspace.scrub(str(exc))) from None
            raise ToolError(workspace.scrub(f"{name}: {exc}")) from exc
        except (MemoryError, OSError) as exc:
            discard(tmp, final)
            raise ToolError(workspace.scrub(f"{name} could not finish: {type(exc).__name__} "
                                            f"({exc or 'out of memory'}); try a smaller run")) from exc
        except BaseException:
            discard(tmp, final)
            raise
        record = parsed.model_dump(mode="json") | ctx.resolved
        code = spec.reproduce or (lambda r: reproduce_code(name, r, in_workspace=workspace.confined))
        relocate = lambda p: final / p.relative_to(tmp)  # noqa: E731
        result = ToolResult(
            tool=name, args=record, summary=summary, metrics=metrics,
            figures=[relocate(p) for p in ctx.figures], files=[relocate(p) for p in ctx.files],
            run_dir=final, code=code(record), passages=ctx.passages,
        )
        if not spec.records:
            discard(tmp, final)
            return result.model_copy(update={"run_dir": workspace.runs})
        write_record(result, tmp)
        tmp.rename(final)        # onto its reservation (an empty folder)
        return result


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None
