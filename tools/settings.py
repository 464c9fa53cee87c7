"""One settings object, read from the environment: DALAB_HOME, DALAB_LLM, OPENAI_BASE_URL, OPENAI_API_KEY, DALAB_MODEL, DALAB_TIMEOUT."""

from __future__ import annotations

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
    request_timeout: float = Field(default=60.0, gt=0, description="DALAB_TIMEOUT: seconds per LLM request")

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
    timeout = env.get("DALAB_TIMEOUT", "60")
    try:
        timeout_s = float(timeout)
    except ValueError:
        raise SettingsError(f"DALAB_TIMEOUT must be a number of seconds, got {timeout!r}") from None
    return Settings(
        home=Path(env.get("DALAB_HOME") or Path.home() / ".dalab").expanduser(),
        llm=llm,
        openai_base_url=env.get("OPENAI_BASE_URL") or None,
        openai_api_key=env.get("OPENAI_API_KEY") or None,
        model=env.get("DALAB_MODEL") or "gpt-4o-mini",
        request_timeout=timeout_s,
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once; tests call ``get_settings.cache_clear()``)."""
    return from_env()
