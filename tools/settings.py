"""One settings object, read from the environment: DALAB_HOME, DALAB_LLM, OPENAI_BASE_URL, OPENAI_API_KEY, DALAB_MODEL, DALAB_TIMEOUT."""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator


class SettingsError(ValueError):
    """A half-configured or contradictory environment; the message names the variable to fix."""


class Settings(BaseModel):
    """Where dalab keeps its data and which chat model answers."""

    model_config = {"frozen": True}

    home: Path = Field(description="DALAB_HOME: runs, datasets, checkpoints and the lecture index")
    llm: Literal["offline", "openai"] = Field(description="DALAB_LLM: which chat model answers")
    openai_base_url: str | None = Field(default=None, description="OPENAI_BASE_URL")
    openai_api_key: str | None = Field(default=None, description="OPENAI_API_KEY")
    model: str = Field(default="gpt-4o-mini", description="DALAB_MODEL: the model name at the endpoint")
    request_timeout: float = Field(default=60.0, gt=0, description="DALAB_TIMEOUT: seconds for a whole LLM request "
                                                                  "(connecting, waiting and reading the reply)")
    connect_timeout: float = Field(default=10.0, gt=0, description="DALAB_CONNECT_TIMEOUT: seconds to connect to the "
                                                                  "LLM endpoint")
    first_token_timeout: float = Field(default=60.0, gt=0, description="DALAB_FIRST_TOKEN_TIMEOUT: seconds until the "
                                                                      "endpoint's first byte of a reply")
    max_memory_gb: float = Field(default=2.0, gt=0, description="DALAB_MAX_MEMORY_GB: estimated memory one tool run "
                                                               "may use (GiB)")
    max_run_seconds: float = Field(default=600.0, gt=0, description="DALAB_MAX_RUN_SECONDS: estimated time one tool "
                                                                   "run may take (s)")
    runs_per_session: int = Field(default=1, ge=1, description="DALAB_RUNS_PER_SESSION: tool runs one UI session "
                                                               "or MCP client may have going at once")
    run_workers: int | None = Field(default=None, ge=0, description="DALAB_RUN_WORKERS: worker processes `dalab ui` "
                                    "runs tools in (default one per core; 0 runs them in the server process)")
    mcp_token: str | None = Field(default=None, repr=False, description="DALAB_MCP_TOKEN: the bearer token MCP "
                                                                        "clients must send")

    @model_validator(mode="after")
    def _check_openai(self) -> "Settings":
        if self.llm == "openai" and not (self.openai_api_key or self.openai_base_url):
            raise SettingsError(
                "DALAB_LLM=openai needs an endpoint: set OPENAI_API_KEY (for OpenAI) or "
                "OPENAI_BASE_URL (for a local OpenAI-compatible server such as vLLM, Ollama or "
                "llama.cpp), or set DALAB_LLM=offline to use the offline model."
            )
        return self



def from_env(env: dict[str, str] | None = None) -> Settings:
    """Read the settings from ``env`` (default: ``os.environ``)."""
    env = dict(os.environ if env is None else env)
    llm = env.get("DALAB_LLM", "").strip().lower()
    has_endpoint = bool(env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL"))
    if not llm:
        llm = "openai" if has_endpoint else "offline"
    if llm not in ("offline", "openai"):
        raise SettingsError(f"DALAB_LLM must be 'offline' or 'openai', got {llm!r}")
    timeout_s = _positive(env, "DALAB_TIMEOUT", 60.0, "a number of seconds")
    return Settings(
        home=Path(env.get("DALAB_HOME") or Path.home() / ".dalab").expanduser(),
        llm=llm,
        openai_base_url=env.get("OPENAI_BASE_URL") or None,
        openai_api_key=env.get("OPENAI_API_KEY") or None,
        model=env.get("DALAB_MODEL") or "gpt-4o-mini",
        request_timeout=timeout_s,
        connect_timeout=min(_positive(env, "DALAB_CONNECT_TIMEOUT", 10.0, "a number of seconds"), timeout_s),
        first_token_timeout=min(_positive(env, "DALAB_FIRST_TOKEN_TIMEOUT", timeout_s, "a number of seconds"),
                                timeout_s),
        max_memory_gb=_positive(env, "DALAB_MAX_MEMORY_GB", 2.0, "a number of GiB"),
        max_run_seconds=_positive(env, "DALAB_MAX_RUN_SECONDS", 600.0, "a number of seconds"),
        runs_per_session=int(_positive(env, "DALAB_RUNS_PER_SESSION", 1, "a whole number", integer=True)),
        run_workers=_count(env, "DALAB_RUN_WORKERS"),
        mcp_token=env.get("DALAB_MCP_TOKEN") or None,
    )


def _count(env: dict[str, str], name: str) -> int | None:
    """The whole number ≥ 0 in ``env[name]`` (None when unset); a SettingsError naming the variable otherwise."""
    text = env.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) > 256:
        raise SettingsError(f"{name} must be a whole number from 0 to 256, got {text[:40]!r}")
    return int(text)


def _positive(env: dict[str, str], name: str, default: float, what: str, integer: bool = False) -> float:
    """The positive finite number in ``env[name]`` (``default`` when unset); a SettingsError naming
    the variable otherwise."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0) or (integer and value != int(value)):
        raise SettingsError(f"{name} must be {what} > 0, got {text[:40]!r}")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once; tests call ``get_settings.cache_clear()``)."""
    return from_env()
