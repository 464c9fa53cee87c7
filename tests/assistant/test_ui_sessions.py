"""Browser sessions: a reload finds its session again (in memory, or its workspace on disk after a
server restart); unknown or malformed ids get a fresh session, never someone else's folder."""

from __future__ import annotations

from assistant.offline import OfflineChatModel
from assistant.ui import SessionRegistry, browser_secret
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
    assert registry.restore(labs[0].id) is not labs[0]          # evicted (and had no folder on disk)


def test_the_browser_secret_is_stable_and_private(tmp_path):
    first = browser_secret(tmp_path)
    assert browser_secret(tmp_path) == first and len(first) == 64
    assert (tmp_path / "ui_secret").stat().st_mode & 0o077 == 0
