"""Shared fixtures for the assistant tests: the lecture index, built once per test session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Offline and quiet, also when pytest is run directly rather than through `make test`.
for _var, _value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                     "HF_HUB_DISABLE_TELEMETRY": "1", "ANONYMIZED_TELEMETRY": "False",
                     "GRADIO_ANALYTICS_ENABLED": "False", "MPLBACKEND": "Agg"}.items():
    os.environ.setdefault(_var, _value)


@pytest.fixture(scope="session")
def lecture_home(tmp_path_factory) -> Path:
    """A DALAB_HOME whose lecture index is built once from ``corpus/``. Read-only: tests that
    change an index use ``lecture_home_copy``."""
    from tools import retrieval

    home = tmp_path_factory.mktemp("dalab_home")
    retrieval.ensure_index(home)
    return home


@pytest.fixture
def lecture_env(lecture_home, monkeypatch) -> Path:
    """DALAB_HOME pointing at the session's built index, for code that reads the settings."""
    from tools.settings import get_settings

    monkeypatch.setenv("DALAB_HOME", str(lecture_home))
    get_settings.cache_clear()
    yield lecture_home
    get_settings.cache_clear()


@pytest.fixture
def lecture_home_copy(lecture_home, tmp_path) -> Path:
    """A private copy of the built index that a test may change (rebuilds reuse its embeddings)."""
    home = tmp_path / "home"
    shutil.copytree(lecture_home / "index", home / "index")
    return home


@pytest.fixture
def mini_corpus(tmp_path) -> Path:
    """A two-file corpus, small enough to rebuild in a moment."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "kalman.md").write_text(
        "---\ntitle: Kalman basics\nseeds: [004_7f51eba4fc78ab50]\n---\n# Kalman basics\n\n"
        "## Scalar gain\n\nThe scalar Kalman gain is K = sigma_b^2 / (sigma_b^2 + sigma_o^2).\n\n"
        "## Innovation\n\nThe innovation d = y - H x_b is the observation minus the background.\n")
    (corpus / "rk4.md").write_text(
        "---\ntitle: Time stepping\nseeds: [000_c481a8d1d0e53681]\n---\n# Time stepping\n\n"
        "## RK4 stages\n\nRK4 evaluates the tendency four times per step and is fourth-order.\n")
    return corpus


@pytest.fixture(scope="module")
def ui_url(lecture_home) -> str:
    """The web app (with MCP) served for one test module, on the session's lecture index."""
    from ui_server import running_app

    with running_app(lecture_home, mcp=True) as url:
        yield url
