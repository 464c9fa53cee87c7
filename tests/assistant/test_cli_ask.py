"""`dalab ask --json --conversation Q1 Q2 ...`: a scripted transcript, one JSON line per turn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tools.registry import TOOLS

REPO = Path(__file__).resolve().parents[2]
FIELDS = {"question", "answer", "tool_calls", "figures", "citations"}   # as `dalab ask --json`
QUESTIONS = ["run a 3D-Var cycle with sigma_o 0.3", "again with 200 steps"]


def ask(home: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m assistant.cli ask ...` with the offline model in a private DALAB_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DALAB_"))}
    env |= {"DALAB_HOME": str(home), "DALAB_LLM": "offline", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "assistant.cli", "ask", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def turns(out: subprocess.CompletedProcess) -> list[dict]:
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    return [json.loads(line) for line in lines]


def test_a_follow_up_keeps_the_earlier_arguments(tmp_path):
    first, second = turns(ask(tmp_path, "--json", "--conversation", *QUESTIONS))
    assert all(set(t) == FIELDS for t in (first, second))
    assert [first["question"], second["question"]] == QUESTIONS
    assert first["tool_calls"] == [{"name": "run_3dvar_cycle", "args": {"sigma_o": 0.3}}]
    # the follow-up changes the number of steps and keeps sigma_o from the first turn
    assert second["tool_calls"] == [{"name": "run_3dvar_cycle", "args": {"sigma_o": 0.3, "n_steps": 200}}]
    default_steps = TOOLS["run_3dvar_cycle"].args.model_fields["n_steps"].default
    assert f"over {default_steps} steps" in first["answer"] and "σ_o=0.3" in first["answer"]
    assert "over 200 steps" in second["answer"] and "σ_o=0.3" in second["answer"]
    # each turn's figure is its own run's, in this DALAB_HOME, and the runs record what ran
    figures = [Path(t["figures"][0]) for t in (first, second)]
    assert figures[0] != figures[1] and all(f.is_file() and tmp_path in f.parents for f in figures)
    records = [json.loads((f.parent / "args.json").read_text()) for f in figures]
    assert [(r["sigma_o"], r["n_steps"]) for r in records] == [(0.3, default_steps), (0.3, 200)]
    assert len(list((tmp_path / "runs").iterdir())) == 2


def test_without_conversation_each_question_starts_afresh(lecture_home_copy):
    # the second question may become a lecture search: a home with the index built saves building it
    first, second = turns(ask(lecture_home_copy, "--json", *QUESTIONS))
    assert first["tool_calls"] == [{"name": "run_3dvar_cycle", "args": {"sigma_o": 0.3}}]
    # a fresh conversation has no earlier run to repeat: sigma_o 0.3 cannot come back
    assert not any(call["args"].get("sigma_o") == 0.3 for call in second["tool_calls"])
    assert second["question"] == QUESTIONS[1]

