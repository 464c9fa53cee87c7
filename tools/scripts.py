"""The script tool: a runnable Python script that does what the student asked, with dalab's API."""

from __future__ import annotations

import ast
import textwrap
from typing import Any

from pydantic import Field

from tools.base import Example, RunContext, ToolArgs, ToolError, ToolSpec, arg, flat_cost, reproduce_code

SCRIPT_NAME = "script.py"


class ScriptArgs(ToolArgs):
    tool: str = arg(min_length=3, max_length=64, description="the experiment tool the script runs (a tool name, "
                                                              "e.g. run_3dvar_cycle)")
    args: dict[str, float | int | bool | str] = Field(default_factory=dict,
                                                      description="the arguments of that tool (checked now)")
    own_data: bool = arg(False, description="the student runs it on their own data file: file arguments are "
                                            "set to a placeholder name and the file format is explained",
                         phrases=("my own data", "my own observations", "my data", "my observations"))
    request: str = Field("", max_length=500, description="what the student asked for (kept in the script's docstring)")


def _file_arguments(spec: ToolSpec) -> dict[str, str]:
    """The target's file arguments and their descriptions (fields declared with ``files``)."""
    out = {}
    for name, field in spec.args.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if extra.get("files"):
            out[name] = field.description or ""
    return out


def write_script(args: ScriptArgs, ctx: RunContext) -> tuple[str, dict[str, Any]]:
    """Write a runnable Python script that runs an experiment with dalab's scripted API (no LLM
    needed), save it as script.py in the run folder and show it. The arguments are checked now,
    so the script runs as written.

    Use it for "write me a python script that …", "give me the code to …". With own_data the
    script reads the student's file (a placeholder name to replace) and explains its format.
    """
    tools = ctx.tools
    if args.tool not in tools:
        raise ToolError(f"unknown tool {args.tool!r}; the tools are: {', '.join(tools)}")
    spec = tools[args.tool]
    if spec.name == ctx.tool or not spec.records:
        experiments = [n for n, s in tools.items() if s.records and n != ctx.tool]
        raise ToolError(f"tool {args.tool!r} is not an experiment a script can run; choose one of: "
                        + ", ".join(experiments))
    call = dict(args.args)
    files = _file_arguments(spec)
    placeholders = {}
    if args.own_data:
        if not files:
            raise ToolError(f"{spec.name} does not read data files, so it cannot run on your own data; tools that do: "
                            + (", ".join(n for n, s in tools.items() if _file_arguments(s)) or "none yet"))
        first = next(iter(files))
        if first not in call:
            call[first] = placeholders[first] = f"my_{first}.csv"
    parsed = ctx.validate(spec.name, call)
    # run_tool fills what is left to the tool (presets, the latest dataset) when the script runs
    full = parsed.model_dump(mode="json")
    body = reproduce_code(spec.name, {k: v for k, v in full.items() if k in call or v is not None})
    about = args.request.strip() or f"run {spec.name}"
    lines = [f'"""{about}', "", f"Runs {spec.name} with dalab's scripted API: python {SCRIPT_NAME}"]
    for name, value in placeholders.items():
        lines += ["", f"Replace {value!r} with your file. {name}: {files[name]}"]
    lines.append('"""')
    script = "\n".join(lines) + "\n\n" + body
    try:
        ast.parse(script)
    except SyntaxError as exc:   # a fault of dalab, not of the request
        raise RuntimeError(f"the generated script does not parse: {exc}") from exc
    ctx.file(SCRIPT_NAME).write_text(script)
    wrapped = textwrap.shorten(about, 120, placeholder="…")
    summary = (f"Wrote {SCRIPT_NAME} ({len(script.splitlines())} lines) for \"{wrapped}\": it runs {spec.name} with "
               + (", ".join(f"{k}={v!r}" for k, v in call.items()) or "its defaults")
               + ". Run it with `python script.py` (from the folder where your data is)."
               + (" Replace the placeholder file name with yours first." if placeholders else ""))
    return summary, {"script": SCRIPT_NAME, "tool": spec.name, "n_lines": len(script.splitlines())}


TOOLS = (
    ToolSpec(
        "write_script", write_script, ScriptArgs, cost=flat_cost(16, 1.0),
        keywords=((1, r"\bscript\b|\bcode\b"),),
        topic="",
        examples=(
            Example("write me a python script that runs a 3D-Var cycle with sigma_o 0.3",
                    {"tool": "run_3dvar_cycle", "args": {"sigma_o": 0.3}}),
        ),
    ),
)
