"""The conversations of the tutor issue, end to end through `dalab ask --json --conversation`
(offline model, a fresh DALAB_HOME): follow-ups change the last call, questions about the last
result are answered from its numbers, honest scope, scripts on request."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant import prompts

REPO = Path(__file__).resolve().parents[2]
CITATION = "[corpus/"


def conversation(home: Path, *questions: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "ask", "--json", "--conversation", *questions],
                         cwd=REPO, capture_output=True, text=True, timeout=600,
                         env={**__import__("os").environ, "DALAB_HOME": str(home), "DALAB_LLM": "offline"})
    assert out.returncode == 0, out.stderr[-2000:]
    turns = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert [t["question"] for t in turns] == list(questions)
    return turns


def test_gain_question_and_kalman_follow_up(lecture_env):
    first, why, kalman = conversation(
        lecture_env,
        "hey, can you do one 3dvar run for me? use obs error of 0.3 and a background error of 0.8",
        "what did the gain come out as, and why is it that value?",
        "same thing but let B evolve like in a Kalman filter")
    assert first["tool_calls"] == [{"name": "run_3dvar_cycle", "args": {"sigma_o": 0.3, "sigma_b": 0.8}}]
    gain = 0.8 ** 2 / (0.8 ** 2 + 0.3 ** 2)
    assert [c["name"] for c in why["tool_calls"]] == ["search_lectures"]           # nothing is rerun
    assert f"{gain:.3f}" in why["answer"] and "0.8²/(0.8²+0.3²)" in why["answer"]
    assert why["citations"] and all(c in why["answer"] for c in why["citations"])
    assert kalman["tool_calls"] == [{"name": "run_3dvar_cycle",
                                     "args": {"sigma_o": 0.3, "sigma_b": 0.8, "covariance_update": True}}]


def test_budget_question_is_answered_from_the_simulation(lecture_env):
    sim, budget = conversation(lecture_env, "simulate the atmosphere", "is the budget closed? what's the residual?")
    assert sim["tool_calls"][0]["name"] == "simulate_atmosphere"
    run = json.loads((Path(sim["figures"][0]).parent / "metrics.json").read_text())
    assert f"{run['budget_residual']:.3g}" in budget["answer"] and "closed" in budget["answer"]
    assert [c["name"] for c in budget["tool_calls"]] == ["search_lectures"]


def test_follow_ups_keep_the_rest(lecture_env):
    a, b, c = conversation(lecture_env, "run a 3D-Var cycle with obs error 0.2", "now with 0.5", "again with seed 5")
    assert b["tool_calls"][0]["args"] == {"sigma_o": 0.5}
    assert c["tool_calls"][0]["args"] == {"sigma_o": 0.5, "seed": 5}


def test_honest_scope(lecture_env):
    enkf, weather, envar = conversation(lecture_env, "run an EnKF on lorenz 63 with 20 members",
                                        "What's the weather like in Bonn tomorrow?", "run a hybrid EnVar on lorenz 63")
    (call,) = enkf["tool_calls"]
    assert call["name"] == "run_da_experiment"                         # an EnKF, not ORIGEN passed off as one
    assert call["args"]["method"] == "enkf" and call["args"]["n_members"] == 20
    assert weather["tool_calls"] == [] and weather["answer"] == prompts.OFF_TOPIC
    assert envar["tool_calls"] == [] and envar["answer"].startswith("dalab does not have")


def test_a_script_on_request_runs_on_the_students_own_data(lecture_env, tmp_path):
    (turn,) = conversation(lecture_env, "write me a python script that runs 3D-Var on my own Lorenz-63 "
                                        "observations with some missing values")
    (call,) = turn["tool_calls"]
    assert call["name"] == "write_script" and call["args"]["tool"] == "run_da_experiment"
    assert call["args"]["args"]["method"] == "3dvar" and call["args"]["own_data"] is True
    assert "```python" in turn["answer"]
    script = Path(json.loads(next(Path(lecture_env, "runs").glob("*write_script/result.json")).read_text())
                  ["files"][0])
    # the student's file: Lorenz-63 observations every 0.05 time units with gaps
    from toyda.experiment import Experiment, lorenz63_model, twin

    obs = twin(Experiment(lorenz63_model(), obs_every=5, sigma_o=1.0, n_obs=200, seed=3))
    y = obs.y.copy()
    y[np.random.default_rng(0).random(y.shape) < 0.2] = np.nan
    rows = ["time,x,y,z"] + [",".join([f"{t:.6g}"] + ["" if np.isnan(v) else f"{v:.6g}" for v in row])
                             for t, row in zip(obs.t, y)]
    work = tmp_path / "student"
    work.mkdir()
    placeholder = call["args"]["args"].get("observations") or "my_observations.csv"
    (work / placeholder).write_text("\n".join(rows) + "\n")
    ran = subprocess.run([sys.executable, str(script)], cwd=work, capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "DALAB_HOME": str(lecture_env),
                              "PYTHONPATH": str(REPO)})
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "sigma_o_desroziers" in ran.stdout             # no truth in the file: innovation statistics
