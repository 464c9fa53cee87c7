"""Every failure of the `dalab` command line is one clear message and exit code 2, never a
traceback: the cases of issue 17 (bad settings for every command, damaged or foreign products,
over-long names, huge files, runs too big for the server) walked one by one, in process."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from assistant.cli import main
from tools.settings import get_settings

LONG = "x" * 300


@pytest.fixture
def home(tmp_path, monkeypatch):
    for var in ("DALAB_LLM", "DALAB_TIMEOUT", "OPENAI_API_KEY", "OPENAI_BASE_URL", "DALAB_MAX_MEMORY_GB",
                "DALAB_MAX_RUN_SECONDS", "DALAB_RUN_WORKERS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DALAB_HOME", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def fails(capsys, *argv: str, says: str | tuple[str, ...]) -> str:
    get_settings.cache_clear()
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    assert err.startswith("error:") and "Traceback" not in out + err, (argv, err)
    for words in (says,) if isinstance(says, str) else says:
        assert words in err, (argv, err)
    return err


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


COMMANDS = [("tool", "run_3dvar_cycle", "n_steps=5"), ("search", "3D-Var"), ("index",), ("chat",),
            ("ask", "what is 3D-Var?")]
BAD_ENV = [({"DALAB_LLM": "bogus"}, "DALAB_LLM must be"), ({"DALAB_TIMEOUT": "abc"}, "DALAB_TIMEOUT must be"),
           ({"DALAB_LLM": "openai"}, "DALAB_LLM=openai needs an endpoint"),
           ({"DALAB_MAX_MEMORY_GB": "-1"}, "DALAB_MAX_MEMORY_GB must be"),
           ({"DALAB_RUN_WORKERS": "two"}, "DALAB_RUN_WORKERS must be a whole number from 0 to 256")]


@pytest.mark.parametrize("env,says", BAD_ENV, ids=[next(iter(e)) + "=" + next(iter(e.values())) for e, _ in BAD_ENV])
def test_bad_settings_are_a_message_for_every_command(home, capsys, monkeypatch, env, says):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for argv in [*COMMANDS, ("ui", "--port", str(free_port()))]:
        if "DALAB_MAX" in says and argv[0] in ("chat", "ask", "search", "index"):
            continue          # the run limits only matter where tools run
        fails(capsys, *argv, says=says)


def test_damaged_foreign_and_misnamed_products(home, capsys):
    import torch

    fails(capsys, "tool", "reconstruct_field", f"model={LONG}", says="too long")
    fails(capsys, "tool", "train_obs2obs", f"dataset={LONG}", says="too long")
    fails(capsys, "tool", "reconstruct_field", "model=/etc/passwd", says="is not a trained obs-to-obs model")
    run = home / "runs" / "20260101-000000-000000-train_obs2obs"
    run.mkdir(parents=True)
    torch.save({"format": "something else", "weights": torch.zeros(3)}, run / "obs2obs.pt")
    fails(capsys, "tool", "reconstruct_field", f"model={run.name}", says="is not a trained obs-to-obs model")
    data = (run / "obs2obs.pt").read_bytes()
    (run / "obs2obs.pt").write_bytes(data[: len(data) // 2])                    # truncated
    fails(capsys, "tool", "predict_profile", f"model={run / 'obs2obs.pt'}", says="is not a trained obs-to-obs model")
    np.savez(home / "origen_l63.npz", x_true=np.zeros((10, 3)), dt=0.01)         # no x_a
    fails(capsys, "tool", "train_lorenz63_emulator", f"reconstruction={home / 'origen_l63.npz'}",
          says=("is not an ORIGEN reconstruction", "x_a"))
    np.savez(home / "bad.npz", xtrue=np.zeros(3))
    fails(capsys, "tool", "train_obs2obs", f"dataset={home / 'bad.npz'}", says="is not a readable dyn_truth_obs dataset")


def test_bad_numbers_and_runs_too_big_for_the_server(home, capsys, monkeypatch):
    fails(capsys, "tool", "run_3dvar_cycle", "sigma_o=true", says=("'sigma_o'", "true/false is not a number"))
    fails(capsys, "tool", "run_3dvar_cycle", "sigma_o=NaN", says=("'sigma_o'", "NaN and infinity are not allowed"))
    fails(capsys, "tool", "run_3dvar_cycle", "sigma_b=1e-200", says=("'sigma_b'", "too small", "B"))
    fails(capsys, "tool", "simulate_atmosphere", "pulse_period=1e-8", says=("'pulse_period'", ">= 0.1"))
    err = fails(capsys, "tool", "generate_observations", "nx=400", "nz=200", "n_trajectories=64", "n_snapshots=2000",
                "snapshot_every=1", says=("GiB of memory", "DALAB_MAX_MEMORY_GB"))
    assert "Traceback" not in err and not (home / "runs").exists() or not any((home / "runs").iterdir())
    monkeypatch.setenv("DALAB_MAX_RUN_SECONDS", "60")
    fails(capsys, "tool", "train_obs2obs", "epochs=200", says=("DALAB_MAX_RUN_SECONDS", "the limit is 60 s"))
    err = fails(capsys, "search", "a" * 100_000, says="too long")
    assert len(err) < 500                                               # the query is not echoed whole


def test_huge_and_bad_lecture_files(home, capsys):
    huge = home / "huge.md"
    with open(huge, "wb") as f:                    # 60 MiB, sparse: refused from its size, never read whole
        f.truncate(60 * 2**20)
    fails(capsys, "index", "--add", str(huge), says=("too large", "at most 50 MiB"))
    fails(capsys, "index", "--add", str(home / "missing.md"), says="file not found")


def test_an_unexpected_failure_is_a_message_too(home, capsys, monkeypatch):
    from tools import registry

    def boom(args, ctx):
        raise RuntimeError("something broke inside")

    monkeypatch.setitem(registry.TOOLS, "run_3dvar_cycle", dataclasses.replace(registry.TOOLS["run_3dvar_cycle"],
                                                                                fn=boom))
    fails(capsys, "tool", "run_3dvar_cycle", says=("failed unexpectedly", "RuntimeError", "something broke inside"))
    monkeypatch.setenv("DALAB_HOME", os.devnull + "/home")                  # not a folder that can exist
    fails(capsys, "tool", "simulate_atmosphere", "n_steps=10", says="Not a directory")
