"""The web UI through its API with gradio_client: chat turns with tool steps, figures and metrics,
follow-ups, progress while a long tool runs, the tool forms, lecture search and uploads."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tools.assimilation import CycleArgs

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def client(ui_url, tmp_path) -> Client:
    """A fresh browser-like session (its own workspace) that downloads files to tmp_path."""
    return Client(ui_url, verbose=False, download_files=str(tmp_path))


def texts(message: dict) -> str:
    return "".join(part.get("text", "") for part in message["content"] if part.get("type") == "text")


def files(message: dict) -> list[str]:
    return [part["file"] for part in message["content"] if part.get("type") == "file"]


def steps(history: list[dict], tool: str) -> list[dict]:
    return [m for m in history if (m.get("metadata") or {}).get("title", "").endswith(tool)]


def test_chat_runs_3dvar_and_returns_answer_figure_and_metrics(client, tmp_path):
    history, card, metrics, downloads = client.predict("run a 3D-Var cycle with observation error 0.2",
                                                       api_name="/chat")
    assert texts(history[0]) == "run a 3D-Var cycle with observation error 0.2"
    (step,) = steps(history, "run_3dvar_cycle")
    assert step["metadata"]["status"] == "done" and step["metadata"]["log"] == "done"
    assert "sigma_o=0.2" in texts(step) and "analysis RMSE" not in texts(step)      # the summary is in the answer
    assert sum(texts(m).count("analysis RMSE") for m in history) == 1                # ... once

    figures = [f for m in history for f in files(m)]
    assert figures, "the figure is in the chat"
    for f in figures:
        with Image.open(f) as png:                               # a real figure, not a placeholder
            assert png.format == "PNG" and png.width >= 400 and png.height >= 300
        assert Path(f).is_relative_to(tmp_path)                 # downloaded over HTTP, not a shared path

    answer = texts(history[-1])
    table = {r[0]: r[1] for r in metrics["data"]}
    assert table["rmse_analysis"] in answer                      # the answer quotes the run's numbers
    assert float(table["rmse_analysis"]) < float(table["rmse_background"])
    sigma_b = CycleArgs().sigma_b                                 # the default; sigma_o was asked for
    assert float(table["gain_first"]) == pytest.approx(sigma_b**2 / (sigma_b**2 + 0.2**2), abs=1e-3)
    assert "run_3dvar_cycle" in card and "analysis RMSE" in card
    reproduce = next(Path(d) for d in downloads if d.endswith("reproduce.py"))
    assert "run_tool('run_3dvar_cycle', args, workspace=WORKSPACE)" in reproduce.read_text()
    assert "'sigma_o': 0.2" in reproduce.read_text()


def test_followup_keeps_arguments_and_history(client):
    client.predict("run 3dvar with sigma_o 0.5", api_name="/chat")
    history, *_ = client.predict("now with the covariance update", api_name="/chat")
    first, second = steps(history, "run_3dvar_cycle")
    assert "sigma_o=0.5" in texts(first) and "covariance_update" not in texts(first)
    assert "sigma_o=0.5" in texts(second) and "covariance_update=True" in texts(second)
    assert [texts(m) for m in history if m["role"] == "user"] == [
        "run 3dvar with sigma_o 0.5", "now with the covariance update"]


def test_a_bad_value_in_the_chat_is_a_failed_step_that_says_what_is_allowed(client):
    from assistant.agent import RETRY_HINT

    history, card, metrics, _ = client.predict("run 3dvar with sigma_o 20", api_name="/chat")
    (step,) = steps(history, "run_3dvar_cycle")
    assert step["metadata"]["log"] == "failed" and "Did not run" in texts(step)
    assert "must be a number > 0 and <= 10" not in texts(step)                     # the reason is said once,
    answer = texts(history[-1])                                                     # in plain words
    assert "must be a number > 0 and <= 10" in answer and RETRY_HINT not in answer  # the hint is for the model
    assert "Input should" not in answer and "dalab tools" not in answer
    assert metrics["data"] == [] and "No run yet" in card                           # nothing was run


def test_concept_question_answers_from_the_lectures_with_citations(client):
    history, card, metrics, _ = client.predict("Why does 3D-Var with a fixed B plateau?", api_name="/chat")
    (step,) = steps(history, "search_lectures")
    assert "passages" in texts(step)
    answer = texts(history[-1])
    assert re.search(r"\[corpus/[\w.]+ § [^\]]+\]", answer), answer
    assert "No run yet" in card and metrics["data"] == []        # a search is not a run


def test_lab_sequence_streams_progress_and_runs_every_step(client):
    job = client.submit("Generate observations, train the obs2obs network for 3 epochs, then reconstruct the field",
                        api_name="/chat")
    updates = [out[0] for out in job]                            # every streamed state of the chat
    final = job.outputs()[-1][0]
    for tool in ("generate_observations", "train_obs2obs", "reconstruct_field"):
        (step,) = steps(final, tool)
        assert step["metadata"]["status"] == "done", tool
    assert "epochs=3" in texts(steps(final, "train_obs2obs")[0])
    answer = texts(final[-1])          # the summaries are said once, in the answer (the steps name the runs)
    assert "the latest dataset" in answer and "generated a training dataset" not in answer   # it was enough data
    # while training ran, its step was pending and showed the progress bar with the epoch
    running = [texts(s) for h in updates for s in steps(h, "train_obs2obs") if s["metadata"]["status"] == "pending"]
    assert any("█" in t and "epoch" in t for t in running), running[-3:]
    assert len([f for m in final for f in files(m)]) >= 3
    assert "reconstruct_field" in texts(final[-1])


def test_tool_form_runs_without_the_llm(client):
    status, gallery, metrics, downloads, *_ = client.predict(
        n_cycles=10, n_steps=100, sigma_b=0.3, sigma_o=0.2, covariance_update=True, seed=0,
        api_name="/run_origen_oscillator")
    assert status.startswith("**Done:**") and "run_origen_oscillator" in status
    assert len(gallery) == 4 and all(Path(g["image"]).read_bytes()[:8] == PNG for g in gallery)
    table = {r[0]: float(r[1]) for r in metrics["data"]}
    # the covariance update beats fixed B after 10 cycles, and both improve on the first cycle
    assert table["rmse_final_updated_B"] < table["rmse_final_fixed_B"] < table["rmse_cycle0"]
    assert any(d.endswith("reproduce.py") for d in downloads)
    assert "'covariance_update': True" in Path(next(d for d in downloads if d.endswith("reproduce.py"))).read_text()


def test_tool_form_updates_the_chat_panel_and_leaves_empty_optional_fields_out(client):
    status, gallery, metrics, downloads, card, panel_metrics, _ = client.predict(
        n_steps=60, sigma_b=0.3, sigma_o=0.4, obs_pattern="x1", covariance_update=False, seed=1,
        api_name="/run_3dvar_cycle")
    assert "run_3dvar_cycle" in card and {r[0]: r[1] for r in panel_metrics["data"]} == {r[0]: r[1] for r in metrics["data"]}
    # an optional number left empty is left out (the tool's default), not sent as 0
    status, *_ = client.predict(time_index="", model="", dataset="", api_name="/reconstruct_field")
    assert "run `train_obs2obs` first" in status and "time_index" not in status


def test_tool_form_refuses_bad_input_and_writes_nothing(client):
    before = _runs(client)
    status, gallery, metrics, downloads, *_ = client.predict(
        n_steps=100, sigma_b=0.3, sigma_o=-1, obs_pattern="random", covariance_update=False, seed=0,
        api_name="/run_3dvar_cycle")
    assert status.startswith("**Error:**")
    assert "sigma_o" in status and "must be a number > 0 and <= 10" in status
    assert gallery == [] and metrics["data"] == [] and downloads in (None, [])
    assert _runs(client) == before


def test_runs_endpoint_lists_this_session_runs(client):
    client.predict("run a 3D-Var cycle with seed 3", api_name="/chat")
    where, table, pick, details, gallery, metrics, downloads = client.predict(api_name="/runs")
    assert re.search(r": (\d+)\.", where).group(1) == "1"
    (row,) = table["data"]
    assert row[1] == "run_3dvar_cycle" and "rmse_analysis" in row[2]
    assert pick["value"] == row[0] and [c[0] for c in pick["choices"]] == [row[0]]
    assert "'seed': 3" in details and gallery and any(d.endswith("reproduce.py") for d in downloads)


def test_a_session_deletes_its_own_runs_only(client, ui_url, lecture_home):
    other = Client(ui_url, verbose=False)
    other.predict("run a 3D-Var cycle", api_name="/chat")
    theirs = other.predict(api_name="/runs")[1]["data"][0][0]
    client.predict("run a 3D-Var cycle with seed 5", api_name="/chat")
    where, table, pick, *_ = client.predict(api_name="/runs")
    mine = table["data"][0][0]
    assert "MB on the server" in where
    for name in (theirs, "../" + theirs, mine + "x"):                 # not one of this session's runs
        with pytest.raises(AppError, match="not in the list of choices"):
            client.predict(name, api_name="/delete_run")
    assert client.predict(api_name="/runs")[1]["data"] == table["data"]
    where, table, *_ = client.predict(mine, api_name="/delete_run")
    assert table["data"] == [] and ": 0." in where
    assert not list(lecture_home.glob(f"sessions/*/runs/{mine}"))
    assert other.predict(api_name="/runs")[1]["data"][0][0] == theirs   # the other student's run is untouched


def test_lecture_search_and_refused_upload(client, tmp_path, lecture_home):
    hits = client.predict("why normalise each satellite channel?", 3, api_name="/search_lectures_text")
    assert hits.count("**[") == 3 and "score" in hits
    bad = tmp_path / "notes.md"
    bad.write_bytes(b"\x00\x01\x02 binary \xff\xfe" * 50)
    before = sorted(p.name for p in (lecture_home / "index").rglob("*") if p.is_file())
    status, _ = client.predict([handle_file(str(bad))], api_name="/add_lectures")
    assert status.startswith("**Error:**") and "Nothing was added" in status and "notes.md" in status
    assert os.environ["GRADIO_TEMP_DIR"] not in status                  # the file's name, not the server's path
    assert sorted(p.name for p in (lecture_home / "index").rglob("*") if p.is_file()) == before


def _runs(client: Client) -> list[list[str]]:
    return client.predict(api_name="/runs")[1]["data"]


def test_tutor_mode_toggle_asks_for_a_prediction_before_running(client):
    client.predict(True, api_name="/tutor")
    history, *_ = client.predict("run a 3D-Var cycle with sigma_o 0.3", api_name="/chat")
    assert "above or below" in texts(history[-1]) and not steps(history, "run_3dvar_cycle")
    history, *_ = client.predict("below", api_name="/chat")
    (step,) = steps(history, "run_3dvar_cycle")
    assert step["metadata"]["status"] == "done" and "you said **below**" in texts(history[-1])


def test_own_observations_uploaded_into_the_session_run_by_name_from_the_chat(client, tmp_path):
    import numpy as np

    from tools.dafiles import write_csv
    from toyda.experiment import Experiment, get_model, twin

    obs = twin(Experiment(get_model("lorenz63"), obs_every=25, sigma_o=1.0, n_obs=120, seed=4))
    y = obs.y.copy()
    y[::7, 1] = np.nan                                               # gaps: y not observed at every 7th time
    src = write_csv(tmp_path / "station obs.csv", obs.t, y)
    status = client.predict([handle_file(str(src))], api_name="/add_data")
    assert "**Stored** station_obs.csv" in status and "observations=station_obs.csv" in status
    history, card, metrics, downloads = client.predict("run 3D-Var on my own observations station_obs.csv",
                                                       api_name="/chat")
    (step,) = steps(history, "run_da_experiment")
    assert step["metadata"]["status"] == "done"
    table = {r[0]: r[1] for r in metrics["data"]}
    assert int(float(table["n_obs"])) == 120 and "omf_rms" in table          # no truth: innovation statistics
    bad = tmp_path / "notes.nc"
    bad.write_text("hello")
    status = client.predict([handle_file(str(bad))], api_name="/add_data")
    assert "**Not stored:**" in status and "not a NetCDF file" in status and str(tmp_path) not in status
