"""The tool contract: validation errors, run records, reproduce.py, prerequisites, the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.base import ToolError, Workspace
from tools.registry import TOOLS, run_tool, validate_args

FAST = ["run_3dvar_cycle", "run_origen_oscillator", "run_origen_lorenz63", "simulate_atmosphere"]
REPO = Path(__file__).resolve().parents[2]


DESIGNED = {"simulate_atmosphere", "generate_observations", "train_obs2obs", "predict_profile",
            "reconstruct_field", "run_3dvar_cycle", "run_origen_oscillator", "run_origen_lorenz63",
            "train_lorenz63_emulator", "search_lectures"}


def test_the_registry_has_the_designed_tools_each_declared_once():
    assert DESIGNED <= set(TOOLS)
    for spec in TOOLS.values():
        assert spec.examples, spec.name                        # routing examples double as tests
        assert spec.keywords, spec.name
        for example in spec.examples:
            spec.args.model_validate(example.args)             # each example's arguments are valid
        assert len(spec.description) > 100, spec.name          # the LLM reads this
        for name, field in spec.args.model_fields.items():
            assert field.description, (spec.name, name)       # every argument explained


@pytest.mark.parametrize("name", FAST)
def test_fast_tools_run_with_defaults_and_write_a_run_record(name, tmp_path):
    result = run_tool(name, workspace=tmp_path)
    assert result.run_dir.is_dir() and result.run_dir.parent == tmp_path / "runs"
    assert result.figures and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in result.figures)
    assert all(p.is_file() for p in result.files)
    assert result.metrics and all(isinstance(v, (int, float, str)) for v in result.metrics.values())
    assert any(ch.isdigit() for ch in result.summary)
    for rec in ("args.json", "metrics.json", "reproduce.py", "result.json"):
        assert (result.run_dir / rec).is_file()
    assert json.loads((result.run_dir / "metrics.json").read_text()) == result.metrics
    assert json.loads((result.run_dir / "args.json").read_text()) == result.args


def test_reproduce_py_reproduces_the_metrics(tmp_path):
    result = run_tool("run_origen_oscillator", {"n_cycles": 12, "sigma_o": 0.3, "seed": 4}, workspace=tmp_path)
    env = os.environ | {"DALAB_HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, str(result.run_dir / "reproduce.py")], env=env, capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    runs = Workspace(tmp_path).run_dirs()
    assert len(runs) == 2
    again = json.loads((runs[-1] / "metrics.json").read_text())
    assert again == result.metrics
    assert f"rmse_final = {result.metrics['rmse_final']}" in out.stdout


def test_a_failing_call_leaves_nothing_half_written(tmp_path):
    with pytest.raises(ToolError, match="unstable settings.*choose dt <="):
        run_tool("simulate_atmosphere", {"dt": 0.5}, workspace=tmp_path)
    assert list((tmp_path / "runs").iterdir()) == []


def test_missing_prerequisites_say_which_tool_to_run_first(tmp_path):
    with pytest.raises(ToolError, match="run `train_obs2obs` first"):
        run_tool("reconstruct_field", workspace=tmp_path)
    with pytest.raises(ToolError, match="run `train_obs2obs` first"):
        run_tool("predict_profile", {"column": 40}, workspace=tmp_path)
    with pytest.raises(ToolError, match="no dataset called 'nope'"):
        run_tool("train_obs2obs", {"dataset": "nope"}, workspace=tmp_path)


def _bounds(field_schema):
    lo = field_schema.get("minimum", field_schema.get("exclusiveMinimum"))
    hi = field_schema.get("maximum", field_schema.get("exclusiveMaximum"))
    return lo, hi


def _numeric_fields():
    for name, spec in TOOLS.items():
        props = spec.args.model_json_schema()["properties"]
        for arg, schema in props.items():
            options = schema.get("anyOf", [schema])
            for opt in options:
                if opt.get("type") in ("integer", "number") and any(k in opt for k in (
                        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
                    yield name, arg, opt


NUMERIC = list(_numeric_fields())


@pytest.mark.parametrize("tool,arg,schema", NUMERIC, ids=[f"{t}.{a}" for t, a, _ in NUMERIC])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_out_of_range_numbers_are_refused_with_the_allowed_range(tool, arg, schema, data):
    lo, hi = _bounds(schema)
    choices = []
    if lo is not None:
        choices.append(st.floats(max_value=lo - 1e-6 if "minimum" in schema else lo, min_value=lo - 1e6,
                                 allow_nan=False))
    if hi is not None:
        choices.append(st.floats(min_value=hi + 1e-6 if "maximum" in schema else hi, max_value=hi + 1e6,
                                 allow_nan=False))
    value = data.draw(st.one_of(*choices))
    if schema["type"] == "integer":
        value = int(value) if float(int(value)) == value else value
        if lo is not None and isinstance(value, int) and value >= lo and (hi is None or value <= hi):
            return  # rounding brought it back into range; nothing to check
    with pytest.raises(ToolError) as err:
        validate_args(TOOLS[tool], {arg: value})
    msg = str(err.value)
    assert repr(arg) in msg and "must be" in msg
    assert str(lo if lo is not None else hi) in msg


BOOL_WORDS = {"0", "1", "true", "false", "yes", "no", "on", "off", "t", "f", "y", "n"}


@pytest.mark.parametrize("tool", list(TOOLS))
@settings(max_examples=15, deadline=None)
@given(bad=st.one_of(st.text(min_size=1, max_size=8).filter(lambda s: not s.strip().lstrip("-").replace(".", "").isdigit()),
                     st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=1)))
def test_wrong_types_are_refused_and_name_the_argument(tool, bad):
    spec = TOOLS[tool]
    for arg, field in spec.args.model_fields.items():
        if field.annotation is bool and isinstance(bad, str) and bad.lower() in BOOL_WORDS:
            continue   # "FALSE", "yes", "off"... are booleans (the CLI passes covariance_update=false)
        if field.annotation in (int, float, bool) or str(field.annotation) in ("int | None",):
            with pytest.raises(ToolError, match=repr(arg)):
                validate_args(spec, {arg: bad})


@pytest.mark.parametrize("tool", list(TOOLS))
@given(name=st.from_regex(r"[a-z_]{3,12}", fullmatch=True))
@settings(max_examples=15, deadline=None)
def test_unknown_arguments_are_refused(tool, name):
    spec = TOOLS[tool]
    if name in spec.args.model_fields:
        return
    with pytest.raises(ToolError, match=f"unknown argument '{name}'.*takes"):
        validate_args(spec, {name: 1})


def test_nan_is_never_accepted():
    with pytest.raises(ToolError, match="sigma_o"):
        validate_args(TOOLS["run_3dvar_cycle"], {"sigma_o": float("nan")})


def test_unknown_tool():
    with pytest.raises(ToolError, match="unknown tool 'nope'; the tools are: simulate_atmosphere"):
        run_tool("nope")


def _cli(*args, home):
    env = os.environ | {"DALAB_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], capture_output=True, text=True,
                          env=env, timeout=300, cwd=REPO)


def test_cli_lists_tools_as_json_schemas(tmp_path):
    out = _cli("tools", "--json", home=tmp_path)
    assert out.returncode == 0, out.stderr
    schemas = json.loads(out.stdout)
    assert [s["name"] for s in schemas] == list(TOOLS)
    by_name = {s["name"]: s for s in schemas}
    assert by_name["run_3dvar_cycle"]["parameters"]["properties"]["sigma_o"]["exclusiveMinimum"] == 0


def test_cli_lists_tools_with_defaults_and_required_arguments(tmp_path):
    out = _cli("tools", home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "query=(required)" in out.stdout and "sigma_o=0.2" in out.stdout
    assert "PydanticUndefined" not in out.stdout


def test_cli_runs_a_tool_and_prints_json(tmp_path):
    out = _cli("tool", "run_3dvar_cycle", "sigma_o=0.3", "covariance_update=true", "--json", home=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["args"]["sigma_o"] == 0.3 and result["args"]["covariance_update"] is True
    assert Path(result["figures"][0]).is_file()


def test_cli_bad_input_exits_2_without_traceback(tmp_path):
    for args in (["tool", "run_3dvar_cycle", "sigma_o=-1"], ["tool", "run_3dvar_cycle", "oops"],
                 ["tool", "no_such_tool"], ["tool", "simulate_atmosphere", "dt=0.9"]):
        out = _cli(*args, home=tmp_path)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr.startswith("error:") and "Traceback" not in out.stderr


def test_cli_shows_progress_on_stderr(tmp_path):
    out = _cli("tool", "run_origen_oscillator", "n_cycles=5", home=tmp_path)
    assert out.returncode == 0
    assert "%" in out.stderr and "drawing figures" in out.stderr


def test_run_tool_takes_a_workspace_as_a_str_path_or_workspace_and_refuses_others(tmp_path):
    from tools.registry import run_tool

    res = run_tool("run_3dvar_cycle", {"n_steps": 20}, workspace=str(tmp_path))
    assert res.run_dir.parent == tmp_path / "runs"
    with pytest.raises(TypeError, match="workspace must be a Workspace, a path or None"):
        run_tool("run_3dvar_cycle", {"n_steps": 20}, workspace=3)
