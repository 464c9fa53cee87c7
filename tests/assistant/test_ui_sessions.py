"""Browser sessions: a reload finds its session again (in memory, or its workspace on disk after a
server restart); unknown or malformed ids get a fresh session, never someone else's folder."""

from __future__ import annotations

from assistant.offline import OfflineChatModel
from assistant.sessions import SessionRegistry, server_secret
from tools.base import Workspace
from tools.registry import run_tool


def test_a_reload_returns_the_same_session(tmp_path):
    registry = SessionRegistry(tmp_path, OfflineChatModel())
    lab = registry.new()
    lab.history.append({"role": "user", "content": "run a 3D-Var cycle"})
    assert registry.restore(lab.id) is lab


def test_after_a_restart_the_workspace_comes_back_from_disk(tmp_path):
    before = SessionRegistry(tmp_path, OfflineChatModel()).new()
    result = run_tool("run_3dvar_cycle", {"n_steps": 30}, workspace=before.workspace)
    lab = SessionRegistry(tmp_path, OfflineChatModel()).restore(before.id)   # a new server process
    assert lab.id == before.id and lab.workspace.root == before.workspace.root
    assert lab.latest is not None and lab.latest.run_dir == result.run_dir
    assert "Welcome back" in lab.history[0]["content"] and "1 earlier run" in lab.history[0]["content"]


def test_unknown_or_malformed_ids_get_a_fresh_session(tmp_path):
    registry = SessionRegistry(tmp_path, OfflineChatModel())
    (tmp_path / "sessions" / "shared").mkdir(parents=True)
    for sid in (None, "", "../../etc", "shared", "0" * 31, "f" * 32, 42):
        lab = registry.restore(sid)
        assert lab.id != sid and len(lab.id) == 32 and lab.run_dirs() == []
        assert lab.workspace.root.parent == tmp_path / "sessions"


def test_memory_is_bounded(tmp_path):
    registry = SessionRegistry(tmp_path, OfflineChatModel(), keep=3)
    labs = [registry.new() for _ in range(5)]
    assert registry.restore(labs[-1].id) is labs[-1]
    fresh = registry.restore(labs[0].id)                         # evicted (and had no folder on disk)
    assert fresh is not labs[0] and fresh.id != labs[0].id
    assert len(registry._sessions) <= 3


def test_the_server_secret_is_stable_and_private(tmp_path):
    first = server_secret(tmp_path)
    assert server_secret(tmp_path) == first and len(first) == 64
    assert (tmp_path / "ui_secret").stat().st_mode & 0o077 == 0


def test_run_names_only_reach_the_sessions_own_runs(tmp_path):
    registry = SessionRegistry(tmp_path, OfflineChatModel())
    mine, theirs = registry.new(), registry.new()
    own = run_tool("run_3dvar_cycle", {"n_steps": 30}, workspace=mine.workspace)
    other = run_tool("run_3dvar_cycle", {"n_steps": 30}, workspace=theirs.workspace)
    assert mine.run(own.run_dir.name) == own.run_dir
    for name in (other.run_dir.name, f"../../{theirs.id}/runs/{other.run_dir.name}", str(other.run_dir), "", None):
        assert mine.run(name) is None


def test_a_session_cannot_load_another_sessions_products_by_path(tmp_path):
    from tools.base import ToolError

    registry = SessionRegistry(tmp_path, OfflineChatModel())
    mine, theirs = registry.new(), registry.new()
    data = run_tool("run_origen_lorenz63", {"n_steps": 50, "n_cycles": 2}, workspace=theirs.workspace)
    npz = next(p for p in data.files if p.suffix == ".npz")
    for name in (str(npz), f"../../{theirs.id}/runs/{data.run_dir.name}"):
        try:
            run_tool("train_lorenz63_emulator", {"reconstruction": name}, workspace=mine.workspace)
        except ToolError as exc:
            assert "among your runs" in str(exc) and str(mine.workspace.runs) not in str(exc)   # no server path
        else:
            raise AssertionError(f"{name} reached another session's dataset")
    assert mine.workspace.confined and not Workspace(tmp_path).confined     # the CLI keeps paths


def test_turns_are_served_in_the_order_they_were_sent(tmp_path):
    import threading
    import time

    lab = SessionRegistry(tmp_path, OfflineChatModel()).new()
    order: list[int] = []
    tickets = [lab.ticket() for _ in range(4)]

    def turn(t: int) -> None:
        while not lab.my_turn(t):
            time.sleep(0.001)
        order.append(t)
        lab.end_turn()

    threads = [threading.Thread(target=turn, args=(t,)) for t in reversed(tickets)]   # started in reverse
    for th in threads:
        th.start()
    assert lab.busy
    for th in threads:
        th.join(5)
    assert order == tickets and not lab.busy
