"""A classroom: ten browser sessions at once, each running a tool through the chat. All succeed,
each sees only its own run, and the workspaces on disk are separate."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from gradio_client import Client

N_STUDENTS = 10


def sigma_o(i: int) -> float:
    return round(0.1 + 0.05 * i, 2)


def student(url: str, i: int, tmp) -> dict:
    client = Client(url, verbose=False, download_files=str(tmp / f"student{i}"))
    history, card, metrics, _ = client.predict(
        f"run a 3D-Var cycle with seed {i} and observation error {sigma_o(i)}", api_name="/chat")
    where, table, _, details, *_ = client.predict(api_name="/runs")
    return {"history": history, "card": card, "metrics": {r[0]: r[1] for r in metrics["data"]}, "where": where,
            "runs": table["data"], "details": details}


def test_ten_sessions_at_once_are_isolated(ui_url, lecture_home, tmp_path):
    with ThreadPoolExecutor(N_STUDENTS) as pool:
        outcomes = list(pool.map(lambda i: student(ui_url, i, tmp_path), range(N_STUDENTS)))
    workspaces = set()
    for i, out in enumerate(outcomes):
        assert "analysis RMSE" in out["card"], (i, out["card"])
        assert float(out["metrics"]["rmse_analysis"]) > 0
        (run,) = out["runs"]                                    # exactly one run: its own
        assert run[1] == "run_3dvar_cycle"
        assert f"'seed': {i}" in out["details"] and f"'sigma_o': {sigma_o(i)}" in out["details"]
        (folder,) = lecture_home.glob(f"sessions/*/runs/{run[0]}")       # the run is in one session's folder
        workspaces.add(folder.parent.parent)
        assert re.search(r": (\d+)\.", out["where"]).group(1) == "1"
        assert f"sessions/{folder.parent.parent.name[:8]}…" in out["where"]
    assert len(workspaces) == N_STUDENTS
    # on disk: one folder per session, each holding only that session's run
    for ws in workspaces:
        assert len([p for p in (ws / "runs").iterdir() if not p.name.startswith(".")]) == 1
    # different observation errors gave different answers (no shared state between the sessions)
    assert len({out["metrics"]["rmse_analysis"] for out in outcomes}) == N_STUDENTS
