"""The offline chat model: a deterministic ``BaseChatModel`` that needs no LLM.

It plays the LLM's part in the same agent loop (``assistant.agent``):

1. From the latest user request it picks the tool(s) and reads their arguments — all derived
   from the tools' declarations (:mod:`assistant.routing`) — and resolves follow-ups ("same thing
   but let B evolve", "now with 0.5", "again with seed 5") against the previous call of the
   conversation. Concept questions go to ``search_lectures``; a question about the last result
   ("what did the gain come out as, and why?") is answered from that result's own numbers plus
   the lecture passage that explains them; a request for a method dalab lacks, or one outside the
   course, is answered plainly (:mod:`assistant.scope`).
2. After the tool results it writes the answer itself (:mod:`assistant.answers`). It never
   invents a number.

``route(request, previous)`` is the pure routing function (fast, tested on its own).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from assistant import answers, prompts, scope, tutor
from assistant.routing import (
    SEARCH,
    accepted,
    asks_to_run,
    bare_number,
    main_argument,
    normalise,
    pick_tool,
    read_args,
    topic,
)
from tools.registry import TOOLS

Call = tuple[str, dict[str, Any]]
SCRIPT_TOOL = "write_script"

_POLITE = re.compile(r"^\s*(?:(?:hey|hi|ok|okay|so|please|pls|plz|could you|can you|can u|would you|will you|"
                     r"i want to|i'd like to|i would like to|i'd like|i want|let's|lets|let us|go ahead and|now|"
                     r"alright|great|thanks)\b[\s,!]*)+")
_EXPLAIN = re.compile(r"\b(?:why|explain\w*|what|how|meaning|difference|describe|tell me about|interpret\w*|"
                      r"intuition|reason)\b")
_QUESTION_LED = re.compile(r"^\s*(?:why|how|what|when|which|who|whats|what's|is|are|does|do|did|explain|describe|"
                           r"define|tell me|where|should|was|were|can)\b")
_RUN_VERB = re.compile(r"\b(?:(?:run|rerun|re-run|simulate|train|generate|make|create|perform|execute|start|launch|"
                       r"try|plot|show me|compute|predict|reconstruct|evaluate|fit|repeat|redo|integrate|produce|"
                       r"compare|sweep|assimilate|iterate|learn|give me|map|go)\b|"
                       r"(?:(?<=^)|(?<=[,;.!] )|(?<=\bplease )|(?<=\band )|(?<=\bthen )|(?<=\bnow )|(?<=\byou )|(?<=\blet's )"
                       r"|(?<=\blets ))do (?!(?:you|i|we|they|these|those|not|so|this|that|all|any|both|more|less|most|"
                       r"it work)\b)(?=\w))")
"""A request to run something; "do" counts where a request starts with it and it is followed by what to do
("do origen", "please do a 3D-Var cycle", "can you do 4D-Var"), not in a question ("do you…", "do these
converge?", "what does localisation do in an EnKF?")."""
_FOLLOW = re.compile(r"\b(?:again|same|now|instead|this time|rerun|re-run|repeat|redo|what about|how about|"
                     r"also|one more|then)\b|^\s*(?:and|with|without|but|using|for)\b")
_THANKS = re.compile(r"^\s*(?:thanks?(?: you)?|thank u|thx|ty|cheers|great|nice|cool|perfect|awesome)\b[\s!.,]*"
                     r"(?:(?:a lot|so much|very much)[\s!.]*)?$")
_HELP = re.compile(r"^\s*(?:hi|hello|hey|hallo|help|good (?:morning|afternoon|evening)|what can you do|"
                   r"who are you|what are you|how do i use|usage|commands|what tools|which tools|list (?:the )?tools|"
                   r"thanks?|thank you|cheers)\b")
_WHY = re.compile(r"\b(?:why|explain\w*|reason|how come|what happens|tell me (?:why|about|what)|what does (?:it|this|that) mean|"
                  r"interpret\w*|intuition)\b")
_PRONOUN = re.compile(r"\b(?:it|this|that|these|those|they|the result|the rmse)\b")
# a question about the last run's result ("what did the gain come out as?", "is the budget closed?")
_ABOUT_LAST = re.compile(r"\b(?:did|was|were|came out|come out|got|get|result|this run|that run|my run|the run|last run|"
                         r"that value|this value|that number|these numbers|closed|residual|is that|is it|so high|"
                         r"so low|so large|so small|why is it)\b")
_SCRIPT = re.compile(r"\b(?:write|give|make|generate|show)\b(?:\s+\w+){0,3}\s+(?:python\s+)?(?:script|code|program)\b"
                     r"|\bscript (?:that|which|to)\b")
_OWN_DATA = re.compile(r"\bmy (?:own )?(?:[\w-]+ )?(?:observations|data|obs|measurements|file|csv)\b")

# "generate observations, train the network and then reconstruct the field": one run per step
_STEP_SPLIT = re.compile(r"\s*(?:,\s*(?:and\s+)?(?:then\s+)?|;\s*|\band then\b|\bthen\b|->|→|=>"
                         r"|\band\b(?=\s+(?:then\s+)?(?:train|reconstruct|generate|run|simulate|predict|evaluate)\b))\s*")


@dataclass(frozen=True)
class Route:
    """What the offline model does with a request: the tool calls, in order, or a direct reply."""

    calls: list[Call] = field(default_factory=list)
    reply: str | None = None     # a direct answer (help, scope, nothing to follow)
    about_last: bool = False     # the answer starts from the last run's own numbers


def _search_query(text: str, tool: str | None, previous: Call | None) -> str:
    t = _POLITE.sub("", text).strip()
    m = re.search(r"\b(?:and|then|,)\s*(?:also\s+)?((?:explain|tell me|why|what|how)\b.*)", t, re.I)
    query = m.group(1) if m and tool else t
    query = re.sub(r"^(?:please\s+)?(?:explain|tell me)\s+(?:to me\s+)?", "", query, flags=re.I).strip(" ?.!")
    about = tool or (previous[0] if previous and _PRONOUN.search(normalise(text)) else None)
    words = topic(about)
    if words and words.lower().split()[0] not in query.lower():
        query = f"{query} ({words})"
    return (query or text)[:500]


def _args(text: str, tool: str) -> dict[str, Any]:
    return read_args(text, tool)[0]


def _sequence(core: str) -> list[Call] | None:
    """The runs of a multi-step request, in order, when every step asks to run a lab tool
    (at least two different ones); otherwise None."""
    steps = [s for s in _STEP_SPLIT.split(core) if s and s.strip()]
    if len(steps) < 2:
        return None
    calls: list[Call] = []
    for step in steps:
        tool = pick_tool(step)
        if tool is None or tool == SEARCH or not _RUN_VERB.search(step):
            return None
        calls.append((tool, _args(step, tool)))
    if len({name for name, _ in calls}) < 2:
        return None
    return calls


def _follow_up(core: str, previous: Call, tool: str | None) -> Call | None:
    """The previous call with what this request changes, or None when it changes nothing."""
    name, before = previous
    new, _ = read_args(core, name)
    if tool is not None and tool != name:
        return None
    if not new:
        number = bare_number(core)
        target = main_argument(name, number, before) if number is not None else None
        if target is not None:
            new = {target: int(number) if number == int(number) and TOOLS[name].args.model_fields[target].annotation
                   is int else number}
    if not new and not _FOLLOW.search(core) and tool != name:
        return None
    return name, {**before, **new}


def route(request: str, previous: Call | None = None) -> Route:
    """Decide the tool calls for ``request``; ``previous`` is the last non-search call of the conversation."""
    t = normalise(request)
    if _THANKS.match(t):
        return Route(reply=prompts.YOU_ARE_WELCOME)
    if not t or (_HELP.search(t) and pick_tool(t) is None and len(t.split()) <= 6):
        return Route(reply=help_text())
    core = _POLITE.sub("", t)
    missing = scope.lacking(core)
    if missing:
        return Route(reply=missing)
    tool = pick_tool(core)
    question_led = bool(_QUESTION_LED.search(core))
    run_verb = bool(_RUN_VERB.search(core))
    explain = bool(_EXPLAIN.search(core))
    follow = bool(_FOLLOW.search(core))
    if tool == SEARCH:
        return Route(calls=[(SEARCH, {"query": _search_query(request, None, previous)})])

    if _SCRIPT.search(core) and SCRIPT_TOOL in TOOLS:
        target = tool if tool not in (None, SEARCH, SCRIPT_TOOL) else (previous[0] if previous else None)
        if target is not None:
            args = _args(core, target) if target == tool else dict(previous[1]) if previous else {}
            return Route(calls=[(SCRIPT_TOOL, {"tool": target, "args": args, "own_data": bool(_OWN_DATA.search(core)),
                                               "request": request[:500]})])

    steps = None if question_led and not _RUN_VERB.match(core) else _sequence(core)   # "what if I train, then…?"
    if steps is not None:
        return Route(calls=steps)

    args = _args(core, tool) if tool is not None else {}
    runs_question = tool is not None and asks_to_run(core, tool)
    # a question about the last result: answered from its numbers and the notes, nothing is rerun
    if (previous is not None and question_led and not run_verb and not runs_question and (tool in (None, previous[0]))
            and _ABOUT_LAST.search(core) and not _args(core, previous[0])):
        words = topic(previous[0])
        query = re.sub(r"\b(?:it|that|this) value\b|\bcome out as\b|\bcame out\b", " ", request).strip(" ?.!")
        query = f"{query} ({words})" if words else query
        return Route(calls=[(SEARCH, {"query": re.sub(r"\s+", " ", query)[:500]})], about_last=True)

    # a question that only describes an experiment ("why does the covariance update converge?")
    # asks for an explanation, not a run
    describes = question_led and not run_verb and not runs_question and not follow and all(
        isinstance(v, (bool, str)) for v in args.values())
    if previous is not None and not describes and (follow or tool in (None, previous[0])):
        call = _follow_up(core, previous, tool)
        if call is not None and (follow or call[1] != previous[1] or tool == previous[0]):
            calls: list[Call] = [call]
            asks_why = bool(_EXPLAIN.search(re.sub(r"\b(?:what|how) about\b", "", core)))   # "what about…" reruns
            if asks_why and not question_led:
                calls.append((SEARCH, {"query": _search_query(request, call[0], previous)}))
            return Route(calls=calls)

    if tool is not None:
        wants_run = run_verb or runs_question or (not question_led and not explain) or (
            bool(args) and not describes and not _only_concept(core))
        if wants_run:
            if previous is not None and "same" in core and previous[0] != tool:
                args = {k: v for k, v in previous[1].items() if k in accepted(tool)} | args
            calls = [(tool, args)]
            if _WHY.search(core) and not runs_question:
                calls.append((SEARCH, {"query": _search_query(request, tool, previous)}))
            return Route(calls=calls)
        return Route(calls=[(SEARCH, {"query": _search_query(request, None, previous)})])

    symbol = scope.notation(core)
    if symbol:                 # "what is B?": the symbol's name is what the notes are searched for
        return Route(calls=[(SEARCH, {"query": f"what is the {symbol}"})])
    refusal = scope.off_topic(core)
    if refusal:
        return Route(reply=refusal)
    if explain or request.strip().endswith("?") or len(core.split()) >= 3:
        return Route(calls=[(SEARCH, {"query": _search_query(request, None, previous)})])
    return Route(reply=prompts.NOTHING_TO_FOLLOW)


def _only_concept(core: str) -> bool:
    return bool(re.match(r"^\s*(?:what is|what are|what does|define|explain what)\b", core))


def help_text() -> str:
    return prompts.HELP_TEXT.format(tools=", ".join(TOOLS))


def extract_args(text: str, tool: str | None = None) -> dict[str, Any]:
    """The arguments ``text`` states for ``tool`` (default: the tool it names)."""
    tool = tool or pick_tool(text)
    return _args(text, tool) if tool else {}


# ----------------------------------------------------------------------------- the chat model

def _call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def previous_call(history: Sequence[BaseMessage]) -> Call | None:
    """The last successful non-search tool call in ``history``."""
    ok = {m.tool_call_id for m in history if isinstance(m, ToolMessage) and m.status != "error"}
    for m in reversed(history):
        if isinstance(m, AIMessage):
            for tc in reversed(m.tool_calls):
                if tc["name"] not in (SEARCH, SCRIPT_TOOL) and tc["id"] in ok:
                    return tc["name"], dict(tc["args"])
    return None


class OfflineChatModel(BaseChatModel):
    """Deterministic tool-routing chat model (no LLM); see the module docstring."""

    tool_names: list[str] | None = None
    tutor: bool = False
    """tutor mode: predictions before runs, hints in steps, misconceptions corrected (assistant.tutor)"""

    @property
    def _llm_type(self) -> str:
        return "dalab-offline"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> "OfflineChatModel":
        names = [getattr(t, "name", None) or (t.get("name") if isinstance(t, dict) else None) for t in tools]
        return self.model_copy(update={"tool_names": [n for n in names if n]})

    def decide(self, messages: Sequence[BaseMessage]) -> AIMessage:
        """The next message: the next planned tool call, or the final answer."""
        last_human = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
        if last_human < 0:
            return AIMessage(content=help_text())
        request = str(messages[last_human].content)
        history, turn = messages[:last_human], messages[last_human:]
        if self.tutor:
            msg = self._tutor(request, history, turn)
            if msg is not None:
                return msg
        r = route(request, previous_call(history))
        if r.reply is not None:
            return AIMessage(content=r.reply)
        calls = [c for c in r.calls if self.tool_names is None or c[0] in self.tool_names]
        done = [m for m in turn if isinstance(m, ToolMessage)]
        failed = any(m.status == "error" for m in done)
        if len(done) < len(calls) and not failed:
            name, args = calls[len(done)]
            return AIMessage(content="", tool_calls=[_call(name, args, f"offline_{last_human}_{len(done)}")])
        return AIMessage(content=answers.compose(turn, history, about_last=r.about_last))

    def _tutor(self, request: str, history: Sequence[BaseMessage], turn: Sequence[BaseMessage]) -> AIMessage | None:
        """Tutor mode's step, or None to route the request as usual."""
        done = [m for m in turn if isinstance(m, ToolMessage)]
        previous = previous_call(history)
        state = tutor.pending(history)
        if state is not None:                       # the student answers the prediction question
            name, args = state["ask"]
            choice = tutor.answer_option(request, TOOLS[name].predictions[state["index"]].options)
            if choice is not None:
                if not done:
                    return AIMessage(content="", tool_calls=[_call(name, args, f"tutor_{len(history)}")],
                                     additional_kwargs={tutor.KEY: {"predicted": choice, "index": state["index"]}})
                extra = tutor.comparison(turn)
                return AIMessage(content=answers.compose(turn, history) + (f"\n\n{extra}" if extra else ""))
        mis = tutor.misconception(request)
        if mis is not None:
            if not done:
                return AIMessage(content="", tool_calls=[_call(SEARCH, {"query": mis.query}, f"tutor_{len(history)}")])
            return AIMessage(content=f"{mis.correction}\n\n{answers.compose(turn, history)}")
        if tutor.wants_hint(request):
            msg = tutor.hint(request, history, previous[0] if previous else None)
            if msg is not None:
                return msg
        if not done:
            r = route(request, previous)
            runs = [c for c in r.calls if c[0] != SEARCH]
            if len(runs) == 1 and r.calls[0] == runs[0]:
                return tutor.ask(runs[0], tutor.asked_before(history, runs[0][0]))
        return None

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.decide(messages))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        msg = self.decide(messages)
        if msg.tool_calls:
            tc = msg.tool_calls[0]
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[
                {"name": tc["name"], "args": json.dumps(tc["args"]), "id": tc["id"], "index": 0}],
                additional_kwargs=msg.additional_kwargs))
            return
        # by paragraph: the text is whole already, and every chunk costs a message, callbacks and a
        # redraw of the transcript, so word-by-word pieces only slowed a class down
        for i, piece in enumerate(re.findall(r"(?s).+?(?:\n\s*\n|$)", str(msg.content))):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece,
                                                             additional_kwargs=msg.additional_kwargs if i == 0 else {}))


# ----------------------------------------------------------------------------- evaluation

def evaluate_routing(cases: Sequence[dict[str, Any]]) -> tuple[float, int, list[str]]:
    """Accuracy of ``route`` on an evaluation set (tests/assistant/routing_*.json): a request is
    right when the tools match in order and every listed argument of the first call matches."""
    n = ok = 0
    failures = []
    for case in cases:
        previous = None
        for turn in case["turns"]:
            r = route(turn["request"], previous)
            want = turn["tool"]
            want = [] if want is None else [want] if isinstance(want, str) else list(want)
            args = r.calls[0][1] if r.calls else {}
            good = [name for name, _ in r.calls] == want and all(
                k in args and (abs(args[k] - v) <= 1e-9 * max(1.0, abs(v))
                               if isinstance(v, float) and not isinstance(args[k], (bool, str)) else args[k] == v)
                for k, v in turn["args"].items())
            n += 1
            ok += good
            if not good:
                failures.append(f"{turn['request']!r} -> {r.calls or r.reply[:60]}; expected {turn['tool']} {turn['args']}")
            runs = [c for c in r.calls if c[0] not in (SEARCH, SCRIPT_TOOL)]
            if runs:
                previous = runs[0]
    return (ok / n if n else 0.0), n, failures
