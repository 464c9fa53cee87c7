"""The chat models behind the agent: ``ChatOpenAI`` for any OpenAI-compatible endpoint, or the
offline model; and the translation of endpoint failures into messages that name the setting."""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any

import httpx
from langchain_core.language_models.chat_models import BaseChatModel

from assistant.prompts import ENDPOINT_HINT
from tools.settings import Settings


class RequestTimeout(httpx.ReadTimeout):
    """The endpoint did not finish a request in time; ``why`` says which bound it broke."""

    def __init__(self, why: str, request: httpx.Request) -> None:
        super().__init__(why, request=request)
        self.why = why


class _Deadline(httpx.SyncByteStream):
    """A response body that must be read completely before ``deadline`` (a server that drips a
    byte every few seconds never trips a per-read timeout, but it does trip this)."""

    def __init__(self, inner: httpx.SyncByteStream, deadline: float, total: float, request: httpx.Request) -> None:
        self.inner, self.deadline, self.total, self.request = inner, deadline, total, request

    def __iter__(self):
        try:
            for chunk in self.inner:
                if time.monotonic() > self.deadline:
                    self.inner.close()
                    raise RequestTimeout(f"the whole reply took longer than {self.total:g} s", self.request)
                yield chunk
        except httpx.ReadTimeout as exc:
            if isinstance(exc, RequestTimeout):
                raise
            raise RequestTimeout("the reply stopped in the middle", self.request) from exc

    def close(self) -> None:
        self.inner.close()


class WholeRequestTimeout(httpx.BaseTransport):
    """An httpx transport that bounds a request as a whole: connecting (``connect`` s), the first
    byte of the reply (``first_byte`` s) and the complete reply (``total`` s), whatever the server
    does in between. A late reply is closed when it finally arrives."""

    def __init__(self, total: float, first_byte: float, connect: float,
                 inner: httpx.BaseTransport | None = None) -> None:
        self.total, self.first_byte, self.connect = total, min(first_byte, total), min(connect, total)
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + self.total
        request.extensions["timeout"] = {"connect": self.connect, "read": self.first_byte,
                                         "write": self.total, "pool": self.total}
        box: dict[str, Any] = {}
        arrived = threading.Event()

        def send() -> None:
            try:
                box["response"] = self.inner.handle_request(request)
            except BaseException as exc:  # noqa: BLE001 — re-raised in the caller's thread
                box["error"] = exc
            finally:
                arrived.set()

        threading.Thread(target=send, daemon=True, name="dalab-llm-request").start()
        if not arrived.wait(self.first_byte):
            def close_when_it_comes() -> None:
                arrived.wait()
                if "response" in box:
                    box["response"].close()
            threading.Thread(target=close_when_it_comes, daemon=True).start()
            raise RequestTimeout(f"no reply within {self.first_byte:g} s", request)
        if "error" in box:
            if isinstance(box["error"], httpx.ReadTimeout):    # the inner read timeout won the race
                raise RequestTimeout(f"no reply within {self.first_byte:g} s", request) from box["error"]
            raise box["error"]
        response = box["response"]
        response.stream = _Deadline(response.stream, deadline, self.total, request)
        return response

    def close(self) -> None:
        self.inner.close()


def chat_openai(settings: Settings) -> BaseChatModel:
    """``ChatOpenAI`` for the configured endpoint (chat completions API, so vLLM, Ollama and
    llama.cpp work too; no retries, so a broken endpoint fails fast with a clear message). Each
    request is bounded as a whole (``WholeRequestTimeout``): connect, first byte, and total."""
    from langchain_openai import ChatOpenAI  # noqa: PLC0415 — only when an endpoint is used

    transport = WholeRequestTimeout(settings.request_timeout, settings.first_token_timeout, settings.connect_timeout)
    return ChatOpenAI(
        model=settings.model,
        base_url=settings.openai_base_url,
        # a local server usually needs no key, but the client refuses to start without one
        api_key=settings.openai_api_key or "not-needed",
        timeout=settings.request_timeout,
        max_retries=0,
        temperature=0,
        use_responses_api=False,
        http_client=httpx.Client(transport=transport, timeout=settings.request_timeout),
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
    if isinstance(exc, openai.APITimeoutError) or isinstance(exc, httpx.TimeoutException):
        chain, why = exc, None
        while chain is not None and why is None:
            why = getattr(chain, "why", None)
            chain = chain.__cause__ or chain.__context__
        why = why or "a read timed out"
        return ENDPOINT_HINT["timeout"].format(**info, why=why)
    if isinstance(exc, openai.APIResponseValidationError) or (
            hasattr(model, "openai_api_base") and _from_the_client(exc) and not isinstance(exc, openai.APIError)):
        return ENDPOINT_HINT["invalid"].format(detail=f"{type(exc).__name__}: {str(exc)[:160]}")
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


def _from_the_client(exc: BaseException) -> bool:
    """True when ``exc`` was raised while the OpenAI client or LangChain's OpenAI wrapper read a
    reply (a malformed one: not JSON, HTML, no choices), not by dalab's own code."""
    if not isinstance(exc, (ValueError, TypeError, KeyError, IndexError, AttributeError)):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    return any(part in f.filename for f in frames for part in ("langchain_openai", "/openai/",
                                                               "langchain_core/language_models"))


def _detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:200]
    return str(getattr(exc, "message", exc))[:200]
