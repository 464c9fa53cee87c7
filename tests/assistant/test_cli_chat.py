"""`dalab chat`: a terminal conversation with follow-ups."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_terminal_chat_runs_a_tool_and_resolves_a_follow_up(tmp_path):
    env = os.environ | {"DALAB_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "chat"], cwd=REPO, env=env, text=True,
                         input="run a 3D-Var cycle with sigma_o 0.3\nagain with 50 steps\nquit\n",
                         capture_output=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "offline model" in out.stdout
    assert "σ_o=0.3" in out.stdout and "over 50 steps" in out.stdout   # the follow-up kept sigma_o
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all(r.name.endswith("run_3dvar_cycle") for r in runs)
