"""Runs in worker processes (``tools.workers``, as `dalab ui` has them): the same results as in
the server process, progress and Cancel across the process boundary, the session's run slots still
counted, errors that keep their message and their place, and a worker that dies replaced without a
half-saved run."""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time

import pytest

from tools import registry
from tools.base import RunCancelled, ToolError, Workspace, fault_location
from tools.registry import run_tool
from tools.settings import SettingsError, from_env
from tools.workers import RunWorkers, _work, workers_wanted


@pytest.fixture(scope="module")
def workers():
    pool = RunWorkers(2)
    pids = pool.warm()
    registry.install(pool)
    try:
        yield pool, pids
    finally:
        registry.install(None)
        pool.close()


def partials(root) -> list:
    return list((root / "runs").glob(".*partial*"))


def test_a_run_in_a_worker_gives_what_a_run_here_gives(workers, tmp_path):
    pool, pids = workers
    remote = run_tool("run_3dvar_cycle", {"seed": 4, "sigma_o": 0.2}, workspace=tmp_path / "a")
    registry.install(None)
    try:
        local = run_tool("run_3dvar_cycle", {"seed": 4, "sigma_o": 0.2}, workspace=tmp_path / "b")
    finally:
        registry.install(pool)
    assert os.getpid() not in pids and len(set(pids)) == 2
    assert remote.metrics == local.metrics and remote.summary == local.summary
    assert remote.run_dir.parent == tmp_path / "a" / "runs" and (remote.run_dir / "result.json").is_file()
    assert [p.name for p in remote.figures] == [p.name for p in local.figures]
    assert all(p.is_file() for p in remote.figures)


def test_progress_comes_back_and_cancel_reaches_the_worker(workers, tmp_path):
    cancel = threading.Event()
    seen: list[str] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(message)
        if "epoch" in message:
            cancel.set()

    with pytest.raises(RunCancelled, match="was cancelled"):
        run_tool("train_lorenz63_emulator", {"epochs": 500, "rollout_steps": 0}, workspace=tmp_path,
                 progress=progress, cancel=cancel)
    assert any("epoch" in m for m in seen)
    assert not partials(tmp_path) and not list((tmp_path / "runs").glob("*train_lorenz63_emulator"))


def test_a_session_stop_raised_from_its_progress_report_is_the_one_it_gets_back(workers, tmp_path):
    def progress(fraction: float, message: str) -> None:
        if "epoch" in message:
            raise RunCancelled("cancelled by you")

    with pytest.raises(RunCancelled, match="^cancelled by you$"):
        run_tool("train_lorenz63_emulator", {"epochs": 500, "rollout_steps": 0}, workspace=tmp_path,
                 progress=progress)
    assert not partials(tmp_path)


def test_the_session_slot_is_held_while_its_run_is_in_a_worker(workers, tmp_path):
    workspace = Workspace(tmp_path, confined=True, max_active=1)
    started = threading.Event()
    out: dict = {}

    def first() -> None:
        try:
            out["result"] = run_tool("train_lorenz63_emulator", {"epochs": 300, "rollout_steps": 0},
                                     workspace=workspace, progress=lambda f, m: started.set())
        except BaseException as exc:  # noqa: BLE001
            out["error"] = exc

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(120)
    with pytest.raises(ToolError, match="already have 1 run"):
        run_tool("run_3dvar_cycle", {}, workspace=workspace)
    thread.join(300)
    assert "error" not in out and out["result"].tool == "train_lorenz63_emulator"
    assert run_tool("run_3dvar_cycle", {}, workspace=workspace).metrics["rmse_analysis"] > 0   # free again


def test_a_refusal_from_a_worker_keeps_its_message_without_server_paths(workers, tmp_path):
    workspace = Workspace(tmp_path, confined=True)
    with pytest.raises(ToolError) as err:
        run_tool("train_obs2obs", {"dataset": "nowhere"}, workspace=workspace)
    assert "nowhere" in str(err.value) and str(tmp_path) not in str(err.value)
    assert not partials(tmp_path)


def test_an_unexpected_failure_in_a_worker_says_where_it_happened(monkeypatch, tmp_path):
    def boom(*args, **kwargs):
        {}["missing"]

    monkeypatch.setattr(registry, "run_tool", boom)
    with pytest.raises(KeyError) as err:
        _work(0, "run_3dvar_cycle", {}, str(tmp_path), False)
    travelled = pickle.loads(pickle.dumps(err.value))          # as the pool sends it back
    assert travelled.dalab_where.startswith("tools/test_workers.py:") and travelled.dalab_where.endswith("in boom")
    assert fault_location(travelled) == travelled.dalab_where


def test_a_killed_worker_loses_its_run_cleanly_and_is_replaced(tmp_path):
    pool = RunWorkers(1)
    pid, = pool.warm()
    registry.install(pool)
    try:
        killed = threading.Event()

        def progress(fraction: float, message: str) -> None:
            if "epoch" in message and not killed.is_set():
                killed.set()
                os.kill(pid, signal.SIGKILL)

        t0 = time.monotonic()
        with pytest.raises(ToolError, match="was lost: the worker process running it stopped"):
            run_tool("train_lorenz63_emulator", {"epochs": 500, "rollout_steps": 0}, workspace=tmp_path,
                     progress=progress)
        assert time.monotonic() - t0 < 120 and killed.is_set()
        assert not partials(tmp_path)
        again = run_tool("run_3dvar_cycle", {"seed": 1}, workspace=tmp_path)          # a new worker runs it
        assert (again.run_dir / "result.json").is_file()
    finally:
        registry.install(None)
        pool.close()


def test_the_number_of_workers_is_a_setting():
    assert from_env({"DALAB_RUN_WORKERS": "0"}).run_workers == 0
    assert from_env({"DALAB_RUN_WORKERS": "3"}).run_workers == 3
    assert workers_wanted(None) >= 1 and workers_wanted(0) == 0
    for bad in ("-1", "two", "1.5", "1000"):
        with pytest.raises(SettingsError, match="DALAB_RUN_WORKERS must be a whole number from 0 to 256"):
            from_env({"DALAB_RUN_WORKERS": bad})
    with pytest.raises(ValueError, match="whole number ≥ 1"):
        RunWorkers(0)
