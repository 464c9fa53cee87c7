"""The agent: one LangChain ``create_agent`` loop over the registry's tools, for every chat model.

    session = Session()                                  # the configured model, DALAB_HOME workspace
    a = session.ask("run a 3D-Var cycle with observation error 0.2")
    a = session.ask("now with the covariance update")    # follow-ups use the conversation
    for event in session.stream("why does it plateau?"): # for the UI: tool calls, results, text
        ...
    ask("why does normalisation matter?").to_dict()      # one-shot (the CLI)

Tools are ``StructuredTool``s with ``response_format="content_and_artifact"``: the model reads
``ToolResult.content()``, the artifact is the ``ToolResult`` itself. A ``ToolError`` (bad
arguments, a missing earlier product) and an unknown tool name go back to the model as the tool
message, so it can correct itself; model and tool calls are capped by LangChain middleware.
Endpoint failures become an ``AgentError`` whose message names the setting to check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import StructuredTool, ToolException
from pydantic import ValidationError

from assistant import prompts
from assistant.prompts import RETRY_HINT, for_people  # noqa: F401 (for_people re-exported)
from tools.settings import Settings, SettingsError, from_env, get_settings
from tools.base import Progress, ToolError, ToolResult, Workspace, fault_location
from tools.registry import TOOLS, ToolSpec, run_tool, validation_message

MAX_MODEL_CALLS = 8       # per turn
MAX_TOOL_CALLS = 6        # per turn
RECURSION_LIMIT = 80       # graph steps; the call limits above end a turn long before
CITATION = re.compile(r"\[[^\[\]\n]+? § [^\[\]\n]+?\]")


class AgentError(RuntimeError):
    """The agent cannot answer: a configuration or endpoint failure; the message says what to check."""


@dataclass
class Answer:
    """One turn's outcome."""

    question: str
    answer: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)   # [{"name", "args"}] in order
    figures: list[Path] = field(default_factory=list)
    citations: list[str] = field(default_factory=list)               # only passages retrieved this turn
    results: list[ToolResult] = field(default_factory=list)          # the tools' results (not in to_dict)
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.answer, "tool_calls": self.tool_calls,
                "figures": [str(p) for p in self.figures], "citations": self.citations}


@dataclass
class Event:
    """A streaming event: ``tool_start`` (name, args), ``tool_result`` (name, result or error),
    ``token`` (text: a piece of the final answer) and, last, ``answer`` (answer: the Answer)."""

    kind: Literal["tool_start", "tool_result", "token", "answer"]
    name: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    result: ToolResult | None = None
    error: str | None = None
    text: str = ""
    answer: Answer | None = None


# ----------------------------------------------------------------------------- tools

"""Appended for the model to tool errors about arguments; people are shown the error without it."""


def _validation_message(spec: ToolSpec, exc: ValidationError) -> str:
    return f"Error: {validation_message(spec, exc)}\n{RETRY_HINT}"


def make_tool(spec: ToolSpec, workspace: Workspace, progress: Progress | None = None) -> StructuredTool:
    """One LangChain tool for a registry entry, running in ``workspace``."""

    def call(**kwargs: Any) -> tuple[str, ToolResult]:
        try:
            result = run_tool(spec.name, kwargs, workspace=workspace, progress=progress)
        except ToolError as exc:
            raise ToolException(f"Error: {exc}") from exc
        except Exception as exc:  # a fault of dalab, not of the request: say where, never "invalid arguments"
            raise ToolException(workspace.scrub(f"Error: {spec.name} failed unexpectedly in {fault_location(exc)} "
                                                f"({type(exc).__name__}: {exc}). This is a fault in dalab, not in "
                                                "your request.")) from exc
        return result.content(), result

    return StructuredTool.from_function(
        func=call, name=spec.name, description=spec.description, args_schema=spec.args,
        response_format="content_and_artifact", handle_tool_error=True,
        handle_validation_error=lambda exc, spec=spec: _validation_message(spec, exc),
    )


def make_tools(workspace: Workspace, progress: Progress | None = None) -> list[StructuredTool]:
    return [make_tool(spec, workspace, progress) for spec in TOOLS.values()]


# ----------------------------------------------------------------------------- the model

def resolve_model(llm: BaseChatModel | str | None, settings: Settings | None = None) -> BaseChatModel:
    """A chat model from ``llm``: a model instance, ``"offline"``/``"openai"``, or None (the settings)."""
    from assistant.llm import make_model  # noqa: PLC0415

    if isinstance(llm, BaseChatModel):
        return llm
    try:
        if llm is None:
            return make_model(settings or get_settings())
        if llm not in ("offline", "openai"):
            raise AgentError(f"llm must be 'offline' or 'openai' (DALAB_LLM), got {llm!r}")
        import os  # noqa: PLC0415

        return make_model(from_env(dict(os.environ) | {"DALAB_LLM": llm}))
    except SettingsError as exc:
        raise AgentError(str(exc)) from None
    except AgentError:
        raise
    except Exception as exc:  # e.g. the OpenAI client refusing its configuration
        raise AgentError(f"could not set up the chat model ({exc}): check OPENAI_BASE_URL, OPENAI_API_KEY "
                         "and DALAB_MODEL") from exc


def invalid_call_replies(message: AIMessage) -> list[ToolMessage]:
    """Error replies to the tool calls of ``message`` whose argument text was not valid JSON, so the
    model can call again instead of the turn ending with nothing."""
    return [ToolMessage(
        content=(f"Error: the arguments of {call.get('name') or 'this tool call'} are not valid JSON "
                 f"({call.get('error') or 'could not parse'}): {call.get('args')!r}. Call it again with the "
                 "arguments as one JSON object, e.g. {\"sigma_o\": 0.2}."),
        tool_call_id=call.get("id") or f"invalid_{i}", name=call.get("name") or "invalid_tool_call", status="error")
        for i, call in enumerate(message.invalid_tool_calls)]


def build_agent(model: BaseChatModel, tools: list[StructuredTool], tutor: bool = False) -> Any:
    from langchain.agents import create_agent  # noqa: PLC0415
    from langchain.agents.middleware import (  # noqa: PLC0415
        ModelCallLimitMiddleware,
        ToolCallLimitMiddleware,
        after_model,
    )

    @after_model(can_jump_to=["model"])
    def retry_invalid_tool_calls(state: dict[str, Any], runtime: Any) -> dict[str, Any] | None:
        last = state["messages"][-1]
        if not (isinstance(last, AIMessage) and last.invalid_tool_calls):
            return None
        if last.tool_calls:   # the valid calls still run (tools node); every call gets its reply
            return {"messages": invalid_call_replies(last)}
        return {"messages": invalid_call_replies(last), "jump_to": "model"}

    return create_agent(
        model, tools=tools, system_prompt=prompts.SYSTEM_PROMPT + (prompts.TUTOR_PROMPT if tutor else ""),
        middleware=[retry_invalid_tool_calls,
                    ModelCallLimitMiddleware(run_limit=MAX_MODEL_CALLS, exit_behavior="end"),
                    ToolCallLimitMiddleware(run_limit=MAX_TOOL_CALLS, exit_behavior="continue")],
    )


# ----------------------------------------------------------------------------- the conversation

class Session:
    """One conversation: its message history, its workspace and the agent over its tools."""

    def __init__(self, llm: BaseChatModel | str | None = None, workspace: Workspace | Path | None = None,
                 progress: Progress | None = None, tutor: bool = False) -> None:
        self.model = resolve_model(llm)
        self.tutor = False
        if workspace is None:
            try:
                workspace = Workspace(get_settings().home)
            except SettingsError as exc:
                raise AgentError(str(exc)) from None
        self.workspace = workspace if isinstance(workspace, Workspace) else Workspace(Path(workspace))
        self.tools = make_tools(self.workspace, progress)
        self.agent = build_agent(self.model, self.tools)
        self.messages: list[BaseMessage] = []
        if tutor:
            self.set_tutor(True)

    def set_tutor(self, on: bool) -> None:
        """Switch tutor mode (predictions before runs, hints, misconceptions); the conversation goes on."""
        if on == self.tutor:
            return
        self.tutor = on
        if "tutor" in type(self.model).model_fields:        # the offline model tutors itself
            self.model = self.model.model_copy(update={"tutor": on})
        self.agent = build_agent(self.model, self.tools, tutor=on)

    @property
    def model_name(self) -> str:
        from assistant.llm import describe  # noqa: PLC0415

        return describe(self.model)

    def reset(self) -> None:
        """Forget the conversation (the workspace's runs stay)."""
        self.messages = []

    def _input(self, message: str) -> tuple[dict[str, Any], dict[str, Any]]:
        if not isinstance(message, str) or not message.strip():
            raise AgentError("the question is empty: ask something, e.g. 'run a 3D-Var cycle'")
        return ({"messages": [*self.messages, HumanMessage(message.strip())]},
                {"recursion_limit": RECURSION_LIMIT})

    def _fail(self, exc: Exception) -> AgentError:
        from assistant.llm import explain_error  # noqa: PLC0415

        text = explain_error(exc, self.model)
        if text is None:
            text = f"the agent failed ({type(exc).__name__}: {exc})"
        return AgentError(text)

    def ask(self, message: str) -> Answer:
        """Answer one message (tool calls included) and remember the exchange."""
        state, config = self._input(message)
        try:
            out = self.agent.invoke(state, config)
        except AgentError:
            raise
        except Exception as exc:
            raise self._fail(exc) from exc
        return self._finish(message, out["messages"])

    def stream(self, message: str) -> Iterator[Event]:
        """Answer one message as events: tool calls as they start, their results, the answer's text
        in pieces, and finally the whole ``Answer``."""
        state, config = self._input(message)
        messages = list(state["messages"])
        streamed_text = False
        try:
            for mode, data in self.agent.stream(state, config, stream_mode=["updates", "messages"]):
                if mode == "messages":
                    chunk, meta = data
                    if isinstance(chunk, AIMessageChunk) and chunk.content and meta.get("langgraph_node") == "model":
                        streamed_text = True
                        yield Event("token", text=str(chunk.content))
                    continue
                for update in data.values():
                    for m in (update or {}).get("messages", []) if isinstance(update, dict) else []:
                        messages.append(m)
                        if isinstance(m, AIMessage):
                            for tc in m.tool_calls:
                                yield Event("tool_start", name=tc["name"], args=dict(tc["args"]))
                            for tc in m.invalid_tool_calls:
                                yield Event("tool_start", name=tc.get("name") or "invalid_tool_call",
                                            args={"unparsed arguments": tc.get("args")})
                        elif isinstance(m, ToolMessage):
                            err = str(m.content) if m.status == "error" or m.artifact is None else None
                            yield Event("tool_result", name=m.name or "", result=m.artifact if err is None else None,
                                        error=err)
        except AgentError:
            raise
        except Exception as exc:
            raise self._fail(exc) from exc
        answer = self._finish(message, messages)
        if not streamed_text and answer.answer:
            yield Event("token", text=answer.answer)
        yield Event("answer", answer=answer)

    def _finish(self, question: str, messages: list[BaseMessage]) -> Answer:
        start = len(self.messages)
        turn = messages[start:]
        self.messages = list(messages)
        calls, results, retrieved = [], [], set()
        for m in turn:
            if isinstance(m, AIMessage):
                calls.extend({"name": tc["name"], "args": dict(tc["args"])} for tc in m.tool_calls)
            elif isinstance(m, ToolMessage) and isinstance(m.artifact, ToolResult):
                results.append(m.artifact)
                retrieved.update(p.get("citation", "") for p in m.artifact.passages)
        final = next((m for m in reversed(turn) if isinstance(m, AIMessage) and not m.tool_calls), None)
        text = _text(final.content) if final is not None else ""
        citations = list(dict.fromkeys(c for c in CITATION.findall(text) if c in retrieved))
        figures = [p for r in results for p in r.figures]
        return Answer(question=question, answer=text, tool_calls=calls, figures=figures, citations=citations,
                      results=results, model=self.model_name)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):   # content blocks
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return str(content)


def ask(question: str, llm: BaseChatModel | str | None = None, session: Session | None = None) -> Answer:
    """Answer ``question`` in ``session`` (default: a fresh conversation with the configured model)."""
    if session is None:
        session = Session(llm)
    return session.ask(question)
