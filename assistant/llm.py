"""The chat models behind the agent: ``ChatOpenAI`` for any OpenAI-compatible endpoint, or the
offline model; and the translation of endpoint failures into messages that name the setting."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel

from assistant.prompts import ENDPOINT_HINT
from tools.settings import Settings


def chat_openai(settings: Settings) -> BaseChatModel:
    """``ChatOpenAI`` for the configured endpoint (chat completions API, so vLLM, Ollama and
    llama.cpp work too; no retries, so a broken endpoint fails fast with a clear message)."""
    from langchain_openai import ChatOpenAI  # noqa: PLC0415 — only when an endpoint is used

    return ChatOpenAI(
        model=settings.model,
        base_url=settings.openai_base_url,
        # a local server usually needs no key, but the client refuses to start without one
        api_key=settings.openai_api_key or "not-needed",
        timeout=settings.request_timeout,
        max_retries=0,
        temperature=0,
        use_responses_api=False,
    )


def make_model(settings: Settings) -> BaseChatModel:
    """The chat model the settings ask for."""
    if settings.llm == "offline":
        from assistant.offline import OfflineChatModel  # noqa: PLC0415

        return OfflineChatModel()
    return chat_openai(settings)


def describe(model: BaseChatModel) -> str:
    """Which model answers, in words."""
    if model._llm_type == "dalab-offline":
        return "offline model (built in, no LLM needed)"
    name = getattr(model, "model_name", None) or getattr(model, "model", None) or model._llm_type
    url = getattr(model, "openai_api_base", None)
    return f"{name} at {url}" if url else str(name)


def explain_error(exc: BaseException, model: BaseChatModel | None) -> str | None:
    """A clear message for an endpoint failure (naming the setting to check), or None if ``exc``
    is not one."""
    try:
        import openai  # noqa: PLC0415
    except ImportError:  # pragma: no cover — langchain-openai depends on it
        return None
    url = getattr(model, "openai_api_base", None) or "api.openai.com"
    name = getattr(model, "model_name", None) or "?"
    timeout = getattr(model, "request_timeout", None)
    timeout = float(timeout) if isinstance(timeout, (int, float)) else 0.0
    info: dict[str, Any] = {"url": url, "model": name, "timeout": timeout}
    if isinstance(exc, openai.APITimeoutError):
        return ENDPOINT_HINT["timeout"].format(**info)
    if isinstance(exc, openai.APIConnectionError):
        return ENDPOINT_HINT["connection"].format(**info)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = _detail(exc)
        info |= {"status": status, "detail": detail}
        if status in (401, 403):
            return ENDPOINT_HINT["auth"].format(**info)
        if status == 404:
            return ENDPOINT_HINT["model"].format(**info)
        if status == 429:
            return ENDPOINT_HINT["rate"].format(**info)
        if status >= 500:
            return ENDPOINT_HINT["server"].format(**info)
        return ENDPOINT_HINT["bad_request"].format(**info)
    if isinstance(exc, openai.OpenAIError):
        return f"the LLM client failed ({exc}): check OPENAI_BASE_URL, OPENAI_API_KEY and DALAB_MODEL"
    return None


def _detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:200]
    return str(getattr(exc, "message", exc))[:200]
