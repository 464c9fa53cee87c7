"""One chat turn's transcript (assistant.sessions.TurnView): a run's summary is said once (in the
answer, not in the tool step), a refusal's reason too, and a figure is never shown twice in a turn."""

from __future__ import annotations

from pathlib import Path

from assistant.sessions import TurnView
from tools.base import ToolResult


def _result(tool: str, run_dir: Path, figures: dict[str, bytes]) -> ToolResult:
    run_dir.mkdir(parents=True)
    paths = []
    for name, data in figures.items():
        (run_dir / f"{name}.png").write_bytes(data)
        paths.append(run_dir / f"{name}.png")
    return ToolResult(tool=tool, args={}, summary=f"{tool} summary with RMSE 0.123", figures=paths,
                      run_dir=run_dir, code="")


def _images(history) -> list[str]:
    return [m["content"]["path"] for m in history if isinstance(m["content"], dict)]


def test_a_figure_repeated_in_the_same_turn_is_referred_to_not_shown_again(tmp_path):
    history: list[dict] = []
    view = TurnView(history)
    train = _result("train_obs2obs", tmp_path / "a", {"loss_curves": b"\x89PNG one", "reconstruction_heldout": b"same"})
    rec = _result("reconstruct_field", tmp_path / "b", {"reconstruction": b"same", "sat_prediction": b"\x89PNG two"})
    for result in (train, rec):
        view.tool_start(result.tool, {})
        view.tool_result(result.tool, result, None)
    shown = _images(history)
    assert [Path(p).name for p in shown] == ["loss_curves.png", "reconstruction_heldout.png", "sat_prediction.png"]
    note = next(m["content"] for m in history if isinstance(m["content"], str) and "same figure" in m["content"])
    assert "reconstruct_field's `reconstruction`" in note and "train_obs2obs's `reconstruction_heldout`" in note


def test_the_same_figure_in_a_later_turn_is_shown_again(tmp_path):
    history: list[dict] = []
    first = _result("run_3dvar_cycle", tmp_path / "a", {"timeseries": b"same"})
    second = _result("run_3dvar_cycle", tmp_path / "b", {"timeseries": b"same"})
    for result in (first, second):
        view = TurnView(history)                                       # a new turn
        view.tool_start(result.tool, {})
        view.tool_result(result.tool, result, None)
    assert len(_images(history)) == 2


def test_the_step_names_the_run_and_leaves_the_summary_to_the_answer(tmp_path):
    history: list[dict] = []
    view = TurnView(history)
    result = _result("run_3dvar_cycle", tmp_path / "a", {"timeseries": b"x"})
    view.tool_start("run_3dvar_cycle", {"sigma_o": 0.3})
    view.tool_result("run_3dvar_cycle", result, None)
    view.finish(result.summary)
    step = history[0]["content"]
    assert "sigma_o=0.3" in step and result.run_dir.name in step and "RMSE" not in step
    assert sum(str(m["content"]).count("RMSE 0.123") for m in history) == 1


def test_a_step_that_did_not_run_says_so_and_leaves_the_reason_to_the_answer():
    history: list[dict] = []
    view = TurnView(history)
    view.tool_start("run_3dvar_cycle", {"q": -1})
    view.tool_result("run_3dvar_cycle", None, "Error: argument 'q' = -1 is not allowed: must be a number >= 0")
    assert history[0]["metadata"]["log"] == "failed"
    assert "Did not run" in history[0]["content"] and "must be" not in history[0]["content"]
