"""The one registry of dalab's tools, listed by hand, used by the agent, the CLI, the UI and MCP.

``run_tool(name, args)`` is the single way to call a tool: it validates the arguments into
the tool's pydantic model (a ``ToolError`` that names the argument and what is allowed
otherwise), runs the tool in a fresh run directory and writes the run record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tools import assimilation, atmosda, atmosphere, da, lectures, learning, scripts
from tools.base import (
    Progress,
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
MODULES = (atmosphere, learning, assimilation, da, atmosda, scripts, lectures)

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
        problems.append(f"argument {name!r} = {err.get('input')!r} is not allowed: must be {allowed(field)}"
                        + (f" ({what})" if what else ""))
    return f"invalid arguments for {spec.name}:\n- " + "\n- ".join(problems)


def validate_args(spec: ToolSpec, args: dict[str, Any] | None) -> ToolArgs:
    """The arguments as the tool's model; a ToolError naming each bad argument otherwise."""
    if args is not None and not isinstance(args, dict):
        raise ToolError(f"arguments for {spec.name} must be a mapping of names to values, got {type(args).__name__}")
    try:
        return spec.args.model_validate(args or {})
    except ValidationError as exc:
        raise ToolError(validation_message(spec, exc)) from None


def run_tool(
    name: str,
    args: dict[str, Any] | None = None,
    *,
    workspace: Workspace | Path | None = None,
    progress: Progress | None = None,
) -> ToolResult:
    """Validate, run and record one tool call.

    Parameters
    ----------
    name : str
        Registry name (see ``TOOLS``).
    args : dict, optional
        Arguments; defaults are filled in.
    workspace : Workspace or Path, optional
        Where runs are written and earlier products are found; default ``DALAB_HOME``.
    progress : callable, optional
        ``progress(fraction, message)`` for long tools.
    """
    spec = get_tool(name)
    parsed = validate_args(spec, args)
    if workspace is None:
        from tools.settings import get_settings  # noqa: PLC0415

        workspace = Workspace(get_settings().home)
    elif isinstance(workspace, Path):
        workspace = Workspace(workspace)
    final, tmp = new_run_dir(workspace, name)
    ctx = RunContext(name, parsed, tmp, workspace, progress or (lambda f, m: None), final_dir=final, tools=TOOLS,
                     validate=lambda tool, a: validate_args(get_tool(tool), a))
    try:
        summary, metrics = spec.fn(parsed, ctx)
        metrics = clean_metrics(metrics)
    except (ValueError, FloatingPointError) as exc:
        discard(tmp)
        if isinstance(exc, ToolError):
            raise
        raise ToolError(f"{name}: {exc}") from exc
    except BaseException:
        discard(tmp)
        raise
    record = parsed.model_dump(mode="json") | ctx.resolved
    relocate = lambda p: final / p.relative_to(tmp)  # noqa: E731
    result = ToolResult(
        tool=name, args=record, summary=summary, metrics=metrics,
        figures=[relocate(p) for p in ctx.figures], files=[relocate(p) for p in ctx.files],
        run_dir=final, code=(spec.reproduce or (lambda r: reproduce_code(name, r)))(record), passages=ctx.passages,
    )
    if not spec.records:
        discard(tmp)
        return result.model_copy(update={"run_dir": workspace.runs})
    write_record(result, tmp)
    tmp.rename(final)
    return result
