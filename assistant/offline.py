"""The offline chat model: a deterministic ``BaseChatModel`` that needs no LLM.

It plays the LLM's part in the same agent loop (``assistant.agent``):

1. From the latest user request it picks the tool(s) (names, synonyms, lecture vocabulary), fills
   the arguments it can read ("observation error 0.2", "200 steps", "mode B", "column 40"), and
   resolves follow-ups ("again with 200 steps", "now with the covariance update") against the
   previous tool call of the conversation. Concept questions go to ``search_lectures``; a request
   that runs something and asks why runs the tool, then searches the lectures.
2. After the tool results it writes the answer itself: the key numbers of the summary and metrics,
   the figures, and for concept questions the key sentences of the passages retrieved in this turn
   with their citations ``[source § section]``. It never invents a number.

``route(request, previous)`` is the pure routing function (fast, tested on its own).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from assistant import prompts

SEARCH = "search_lectures"
Call = tuple[str, dict[str, Any]]

# ----------------------------------------------------------------------------- routing vocabulary

@cache
def _tool_res() -> list[tuple[str, float, re.Pattern[str]]]:
    """(tool, weight, pattern) from the tools' declarations (``ToolSpec.keywords``), on the
    lower-cased request with "_" read as " "; the highest weight wins, ties go to the earlier entry."""
    from tools.registry import TOOLS  # noqa: PLC0415

    pats = [(spec.name, w, re.compile(p)) for spec in TOOLS.values() for w, p in spec.keywords]
    return sorted(pats, key=lambda x: -x[1])


@cache
def _topics() -> dict[str, str]:
    """Lecture words a search adds when a question refers to a tool's experiment (``ToolSpec.topic``)."""
    from tools.registry import TOOLS  # noqa: PLC0415

    return {name: spec.topic for name, spec in TOOLS.items() if spec.topic}


_POLITE = re.compile(r"^\s*(?:(?:hey|hi|ok|okay|so|please|pls|plz|could you|can you|can u|would you|will you|"
                     r"i want to|i'd like to|i would like to|let's|lets|let us|go ahead and|now)\b[\s,!]*)+")
_EXPLAIN = re.compile(r"\b(?:why|explain\w*|what|how|meaning|difference|describe|tell me about|interpret\w*|"
                      r"intuition|reason)\b")
_QUESTION_LED = re.compile(r"^\s*(?:why|how|what|when|which|who|whats|what's|is|are|does|do|explain|describe|"
                           r"define|tell me|where|compare|should)\b")
_RUN_VERB = re.compile(r"\b(?:run|rerun|re-run|simulate|train|generate|make|create|perform|execute|start|launch|"
                       r"try|plot|show me|compute|predict|reconstruct|evaluate|fit|repeat|redo|integrate|produce|"
                       r"do (?:a|an|the|another|one more|it)|go)\b")
_FOLLOW = re.compile(r"\b(?:again|same|now|instead|this time|rerun|re-run|repeat|redo|what about|how about|"
                     r"also|one more|then)\b|^\s*(?:and|with|without|but|using)\b")
_THANKS = re.compile(r"^\s*(?:thanks?(?: you)?|thank u|thx|ty|cheers|great|nice|cool|perfect|awesome)\b[\s!.,]*"
                     r"(?:(?:a lot|so much|very much)[\s!.]*)?$")
_HELP = re.compile(r"^\s*(?:hi|hello|hey|hallo|help|good (?:morning|afternoon|evening)|what can you do|"
                   r"who are you|what are you|how do i use|usage|commands|what tools|which tools|list (?:the )?tools|"
                   r"thanks?|thank you|cheers)\b")
_PRONOUN = re.compile(r"\b(?:it|this|that|these|those|they|the result|the rmse)\b")

# ----------------------------------------------------------------------------- argument vocabulary

NUM = r"(-?(?:\d+\.?\d*|\.\d+)(?:e-?\d+)?)"
SEP = r"\s*(?:=|:|≈|\bof\b|\bis\b|\bto\b|\bat\b|equal to|=)?\s*(?:=\s*)?"
INT = r"(\d+)"


def _after(names: str, num: str = NUM) -> str:
    return rf"(?:{names}){SEP}{num}\b"


def _before(names: str, num: str = INT) -> str:
    return rf"\b{num}\s*(?:-\s*)?(?:{names})"


# argument -> list of patterns; group 1 is the value
ARG_PATTERNS: dict[str, list[str]] = {
    "sigma_o": [_after(r"sigma[ _-]?o(?:bs)?\b|σ[ _]?o\b|σₒ|obs(?:ervation)?s?[- ](?:er+o?r+|noise)(?:\s*(?:std|sigma|"
                       r"standard deviation|level))?|observational (?:error|noise)|r std")],
    "sigma_b": [_after(r"sigma[ _-]?b\b|σ[ _]?b\b|background[- ](?:error|noise)(?:\s*(?:std|sigma|standard deviation))?")],
    "rs_noise": [_after(r"(?:radiosonde|rs|sonde)[- _](?:noise|error)")],
    "sat_noise": [_after(r"(?:satellite|sat)[- _](?:noise|error)")],
    "n_steps": [_before(r"(?:time[- ]?|model |rk4 |integration )?steps?\b(?! rollout)"), _after(r"n[ _]steps|steps", INT)],
    "n_cycles": [_before(r"(?:origen |reconstruction )?(?:cycles|iterations|cycle\b)"), _after(r"n[ _]cycles|cycles", INT)],
    "n_snapshots": [_before(r"snapshots"), _after(r"n[ _]snapshots", INT)],
    "time_index": [rf"\b(?:snapshot|time[ _-]?index|time index|t)\s*(?:=|:|#|number|no\.?|index)?\s*{INT}\b(?!\s*(?:steps|snapshots))"],
    "column": [rf"\bcol(?:umn)?\s*(?:=|:|#|number|no\.?|index|at)?\s*{INT}\b", rf"\bx[ _-]?index\s*=?\s*{INT}\b"],
    "seed": [rf"\b(?:random )?seed\s*(?:=|:|of|to)?\s*{INT}\b", _before(r"seed\b")],
    "K": [_after(r"\bk\b(?! *passages)|diffusivity|diffusion(?: coefficient)?|kappa")],
    "u": [_after(r"\bu\b|mean wind|horizontal wind|wind speed|\bwind\b")],
    "w": [_after(r"\bw\b|vertical wind|updraft")],
    "dt": [_after(r"\bdt\b|δt|Δt|delta[ _-]?t|time[- ]?step(?: size)?(?!s)")],
    "damping": [_after(r"damping(?: rate)?|\blambda\b|λ")],
    "sponge": [_after(r"sponge(?: rate)?")],
    "pulse_period": [_after(r"pulse[ _-]?period")],
    "nx": [_after(r"\bnx\b", INT)],
    "nz": [_after(r"\bnz\b", INT)],
    "n_levels": [_before(r"(?:radiosonde |vertical )?levels"), _after(r"n[ _]levels", INT)],
    "n_radiosondes": [_before(r"(?:radiosondes?|radio sondes?|sondes?|stations)\b"),
                      _after(r"n[ _]radiosondes|radiosondes|stations", INT)],
    "n_channels": [_before(r"(?:satellite |sat )?channels?\b"), _after(r"n[ _]channels|channels", INT)],
    "n_trajectories": [_before(r"(?:trajectories|trajectory|independent runs)"), _after(r"n[ _]trajectories", INT)],
    "snapshot_every": [rf"\bevery\s+{INT}\s+steps", _after(r"snapshot[ _]every", INT)],
    "spinup_steps": [_after(r"spin[- _]?up(?: steps)?", INT), _before(r"spin[- _]?up")],
    "epochs": [_before(r"epochs?\b"), _after(r"epochs", INT)],
    "alpha": [_after(r"alpha|α")],
    "lr": [_after(r"\blr\b|learning[- _]rate")],
    "rollout_steps": [_after(r"roll-?out(?:[ _]steps)?(?: of| length)?", INT), _before(r"(?:-?steps? )?roll-?out")],
    "q": [_after(r"\bq\b|model[- ]error(?: variance)?(?: q)?|process noise(?: q)?")],
    "inflation": [_after(r"(?:covariance |multiplicative )?inflation(?: factor)?(?: rho| ρ)?|inflate b by")],
}
_ARG_RES = {name: [re.compile(p) for p in pats] for name, pats in ARG_PATTERNS.items()}
_INT_ARGS = {"n_steps", "n_cycles", "n_snapshots", "time_index", "column", "seed", "nx", "nz", "n_levels",
             "n_radiosondes", "n_channels", "n_trajectories", "snapshot_every", "spinup_steps", "epochs",
             "rollout_steps"}

_COV_OFF = re.compile(r"\b(?:without|no|w/o|disable|turn off|switch off|fixed|static|constant|frozen|not)\s+(?:the\s+|a\s+)?"
                      r"(?:kalman[- ]?(?:style\s+)?)?(?:covariance[- ]update|cov(?:ariance)?[- ]?update|b[- ]update|"
                      r"update of b|updating b|b\b)|covariance[ _]update\s*(?:=|:)?\s*(?:false|off|no)\b")
_COV_ON = re.compile(r"\b(?:covariance[- _]?update|cov(?:ariance)?[- ]?update|b[- ]update|update (?:of )?b\b|"
                     r"updat\w* b\b|updating the covariance|update the covariance|b ← \(i−kh\)b|b <- \(i-kh\)b)")

_PATTERN = [
    (re.compile(r"\balternat\w*"), "alternating"),
    (re.compile(r"\b(?:only|just)\s+(?:observ\w* )?x1\b|\bobserv\w* (?:only )?x1\b|\bx1 only\b|obs[ _]pattern\s*=?\s*x1"), "x1"),
    (re.compile(r"\b(?:only|just)\s+(?:observ\w* )?x2\b|\bobserv\w* (?:only )?x2\b|\bx2 only\b|obs[ _]pattern\s*=?\s*x2"), "x2"),
    (re.compile(r"\brandom(?:ly)? (?:obs|observ|pattern|component)|obs[ _]pattern\s*=?\s*random"), "random"),
]
_MODE = re.compile(r"\bmode\s*(?:=|:)?\s*['\"]?([ab])\b|\b([ab])[- ]mode\b|\bvariant\s*([ab])\b")
_TRAIN_ON = [(re.compile(r"\b(?:on|from) (?:the )?(?:true trajectory|truth)\b|train[ _]on\s*=?\s*truth"), "truth"),
             (re.compile(r"\b(?:on|from) (?:the )?(?:origen )?(?:reconstruction|analys[ie]s)\b"), "reconstruction")]


def normalise(text: str) -> str:
    """Lower case, unified dashes and Greek letters, so that the patterns stay simple."""
    t = text.lower().replace("–", "-").replace("—", "-").replace("−", "-").replace("’", "'")
    t = t.replace("σ_o", "sigma_o").replace("σo", "sigma_o").replace("σ_b", "sigma_b").replace("σb", "sigma_b")
    t = t.replace("σ", "sigma ").replace("sigma  ", "sigma ")
    return re.sub(r"\s+", " ", t).strip()


def extract_args(text: str) -> dict[str, Any]:
    """Every argument that can be read from ``text``, under the registry's argument names."""
    t = normalise(text)
    out: dict[str, Any] = {}
    for name, res in _ARG_RES.items():
        for rx in res:
            m = rx.search(t)
            if m:
                raw = next(g for g in m.groups() if g is not None)
                try:
                    value: Any = int(float(raw)) if name in _INT_ARGS else float(raw)
                except ValueError:
                    continue
                out[name] = value
                break
    if _COV_OFF.search(t):
        out["covariance_update"] = False
    elif _COV_ON.search(t):
        out["covariance_update"] = True
    for rx, value in _PATTERN:
        if rx.search(t):
            out["obs_pattern"] = value
            break
    m = _MODE.search(t)
    if m:
        out["mode"] = next(g for g in m.groups() if g).upper()
    for rx, value in _TRAIN_ON:
        if rx.search(t):
            out["train_on"] = value
            break
    return out


def accepted(tool: str) -> set[str]:
    from tools.registry import TOOLS  # noqa: PLC0415

    return set(TOOLS[tool].args.model_fields)


def pick_tool(text: str) -> str | None:
    """The tool named or described by ``text`` (highest weight), or None."""
    t = normalise(text).replace("_", " ")
    best, best_w = None, 0.0
    for tool, w, rx in _tool_res():
        if w > best_w and rx.search(t):
            best, best_w = tool, w
    return best


@dataclass(frozen=True)
class Route:
    """What the offline model does with a request: the tool calls, in order, or a canned reply."""

    calls: list[Call] = field(default_factory=list)
    reply: str | None = None     # a direct answer (help, nothing to follow)
    kind: str = "run"            # run | concept | run+concept | sequence | help | unclear


def _search_query(text: str, tool: str | None, previous: Call | None) -> str:
    t = _POLITE.sub("", text).strip()
    m = re.search(r"\b(?:and|then|,)\s*(?:also\s+)?((?:explain|tell me|why|what|how)\b.*)", t, re.I)
    query = m.group(1) if m and tool else t
    query = re.sub(r"^(?:please\s+)?(?:explain|tell me)\s+(?:to me\s+)?", "", query, flags=re.I).strip(" ?.!")
    topic = tool or (previous[0] if previous and _PRONOUN.search(normalise(text)) else None)
    topics = _topics()
    if topic in topics and topics[topic].lower().split()[0] not in query.lower():
        query = f"{query} ({topics[topic]})"
    return (query or text)[:500]


# "generate observations, train the network and then reconstruct the field": one run per step
_STEP_SPLIT = re.compile(r"\s*(?:,\s*(?:and\s+)?(?:then\s+)?|;\s*|\band then\b|\bthen\b|->|→|=>"
                         r"|\band\b(?=\s+(?:then\s+)?(?:train|reconstruct|generate|run|simulate|predict|evaluate)\b))\s*")


# arguments that a question can mention to describe an experiment without asking to run it
_DESCRIPTIVE = {"covariance_update", "obs_pattern", "mode", "train_on"}


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
        calls.append((tool, {k: v for k, v in extract_args(step).items() if k in accepted(tool)}))
    if len({name for name, _ in calls}) < 2:
        return None
    names = [name for name, _ in calls]
    if "generate_observations" in names and "train_obs2obs" in names[names.index("generate_observations"):]:
        # observations made to be trained on: the training dataset's size unless the student chose one
        from tools.atmosphere import TRAINING_DATASET_DEFAULTS  # noqa: PLC0415

        i = names.index("generate_observations")
        calls[i] = (calls[i][0], {**TRAINING_DATASET_DEFAULTS, **calls[i][1]})
    return calls


def route(request: str, previous: Call | None = None) -> Route:
    """Decide the tool calls for ``request``; ``previous`` is the last non-search call of the conversation."""
    t = normalise(request)
    if _THANKS.match(t):
        return Route(reply=prompts.YOU_ARE_WELCOME, kind="help")
    if not t or (_HELP.search(t) and pick_tool(t) is None):
        return Route(reply=help_text(), kind="help")
    core = _POLITE.sub("", t)
    tool = pick_tool(core)
    args = extract_args(core)
    explain = bool(_EXPLAIN.search(core))
    question_led = bool(_QUESTION_LED.search(core))
    run_verb = bool(_RUN_VERB.search(core))
    follow = bool(_FOLLOW.search(core))
    if tool == SEARCH:
        return Route(calls=[(SEARCH, {"query": _search_query(request, None, previous)})], kind="concept")
    steps = None if question_led and not _RUN_VERB.match(core) else _sequence(core)   # "what if I train, then…?"
    if steps is not None:
        return Route(calls=steps, kind="sequence")

    # a question that only describes an experiment ("why does the covariance update converge?")
    # asks for an explanation, not a run
    describes = question_led and not run_verb and set(args) <= _DESCRIPTIVE
    # a follow-up of the previous run: same tool, previous arguments updated
    if previous is not None and (tool is None or tool == previous[0]) and (follow or args) and not (
            question_led and not run_verb and (not args or describes) and not follow):
        name = previous[0]
        new = {k: v for k, v in args.items() if k in accepted(name)}
        if new or follow or tool == name:
            calls: list[Call] = [(name, {**previous[1], **new})]
            asks_why = bool(_EXPLAIN.search(re.sub(r"\b(?:what|how) about\b", "", core)))   # "what about…" reruns
            if asks_why and (not question_led or args):
                calls.append((SEARCH, {"query": _search_query(request, name, previous)}))
                return Route(calls=calls, kind="run+concept")
            return Route(calls=calls, kind="run")

    if tool is not None:
        wants_run = run_verb or (not question_led and not explain) or (bool(args) and not _only_concept(core))
        if describes:
            wants_run = False   # "why does 3D-Var with a fixed B plateau?" describes, it does not ask for a run
        if wants_run:
            carried = {}
            if previous is not None and "same" in core:
                carried = {k: v for k, v in previous[1].items() if k in accepted(tool)}
            calls = [(tool, carried | {k: v for k, v in args.items() if k in accepted(tool)})]
            if explain:
                calls.append((SEARCH, {"query": _search_query(request, tool, previous)}))
                return Route(calls=calls, kind="run+concept")
            return Route(calls=calls, kind="run")
        return Route(calls=[(SEARCH, {"query": _search_query(request, None, previous)})], kind="concept")

    if explain or request.strip().endswith("?") or len(core.split()) >= 3:
        return Route(calls=[(SEARCH, {"query": _search_query(request, None, previous)})], kind="concept")
    return Route(reply=prompts.NOTHING_TO_FOLLOW, kind="unclear")


def _only_concept(core: str) -> bool:
    return bool(re.match(r"^\s*(?:what is|what are|what does|define|explain what)\b", core))


def help_text() -> str:
    from tools.registry import TOOLS  # noqa: PLC0415

    return prompts.HELP_TEXT.format(tools=", ".join(TOOLS))


# ----------------------------------------------------------------------------- the answer

_STOP = set("""a an the of to in on for and or is are was were be been it its this that these those with without by
from at as do does did why what how which when who whom explain tell me about can could would should we i you
they he she there here than then so if into over under per not no yes more most less very much many some any
please matter matters use used using run lab lecture lectures note notes""".split())


def _terms(text: str) -> set[str]:
    words = re.findall(r"[a-zA-Z][a-zA-Z0-9-]+", text.lower())
    return {w.rstrip("s") if len(w) > 4 else w for w in words if w not in _STOP and len(w) > 1}


def _sentences(text: str) -> list[str]:
    text = re.sub(r"^#+\s.*$", "", text, flags=re.M)                  # headings
    text = re.sub(r"\s+", " ", text.replace("**", "").replace("`", "")).strip()
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9(\[$])", text)
    return [p.strip() for p in parts if len(p.strip()) > 25]


def passage_answer(query: str, passages: Sequence[dict[str, Any]], n: int = 3) -> tuple[str, list[str]]:
    """Key sentences of the best passages, each with its citation; (text, citations).

    The best passage is always used; when some passages' section titles name a term of the
    question, the others (which only mention it in passing) are left out. On the retrieval eval
    set this raised the share of cited passages that are expected answers from 0.37 to 0.56.
    """
    from tools.chunking import tokenize  # noqa: PLC0415

    asked = set(tokenize(query))
    titled = [bool(asked & set(tokenize(str(p.get("section", ""))))) for p in passages]
    if any(titled):
        passages = [p for i, p in enumerate(passages) if i == 0 or titled[i]]
    q = _terms(query)
    lines, cites = [], []
    for p in passages[:n]:
        sents = [x for x in _sentences(p.get("text", "")) if not x.endswith("?")]   # the notes' own questions
        if not sents:
            continue
        ranked = sorted(range(len(sents)), key=lambda i: (-len(q & _terms(sents[i])), i))
        keep = sorted(ranked[:2])
        if not q & _terms(" ".join(sents[i] for i in keep)):
            continue
        body = " ".join(sents[i] for i in keep)
        if len(body) > 420:
            body = body[:417].rsplit(" ", 1)[0] + "..."
        cite = p.get("citation") or f"[{p.get('source')} § {p.get('section')}]"
        lines.append(f"- {body} {cite}")
        cites.append(cite)
    return "\n".join(lines), cites


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _run_paragraph(name: str, call_args: dict[str, Any], msg: ToolMessage) -> str:
    result = msg.artifact
    given = ", ".join(f"{k}={_fmt(v)}" for k, v in call_args.items()) or "defaults"
    if result is None:       # e.g. an LLM-less replay without artifact: the content is what we have
        return f"**{name}** ({given}):\n{msg.content}"
    lines = [f"**{name}** ({given}): {result.summary}"]
    metrics = [(k, v) for k, v in result.metrics.items() if not isinstance(v, str)][:8]
    if metrics:
        lines.append("Key numbers: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in metrics) + ".")
    if result.figures:
        lines.append("Figures: " + ", ".join(p.name for p in result.figures) + f" (in {result.run_dir.name}).")
    return "\n".join(lines)


def _error_paragraph(name: str, content: str) -> str:
    from assistant.prompts import PREREQUISITES, for_people  # noqa: PLC0415

    text = for_people(str(content))
    text = re.sub(rf"^{re.escape(name)}:\s*", "", text)
    fix = ""
    m = re.search(r"run `(\w+)` first", text)
    if m:
        fix = f"Run `{m.group(1)}` first (e.g. ask \"{_EXAMPLE.get(m.group(1), m.group(1))}\"), then ask again."
    elif "invalid arguments" in text or "not allowed" in text or "validation error" in text.lower():
        fix = "Ask again with an allowed value (the allowed range is given above)."
    elif "not a valid tool" in text or "unknown tool" in text:
        fix = "Use one of the lab's tools (ask \"help\" for the list)."
    elif name in PREREQUISITES:
        fix = f"If an earlier product is missing, run {PREREQUISITES[name]} first."
    return f"**{name}** could not run: {text}" + (f"\n{fix}" if fix else "")


_EXAMPLE = {
    "generate_observations": "generate observations", "train_obs2obs": "train the obs2obs network",
    "run_origen_lorenz63": "run ORIGEN on Lorenz-63", "simulate_atmosphere": "simulate the toy atmosphere",
}


def compose_answer(turn: Sequence[BaseMessage]) -> str:
    """The final answer from this turn's messages (the user's request first, then calls and results)."""
    request = str(turn[0].content) if turn else ""
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    for m in turn:
        if isinstance(m, AIMessage):
            for tc in m.tool_calls:
                calls[tc["id"]] = (tc["name"], tc["args"])
    parts: list[str] = []
    for m in turn:
        if not isinstance(m, ToolMessage):
            continue
        name, args = calls.get(m.tool_call_id, (m.name or "tool", {}))
        if m.status == "error" or m.artifact is None and str(m.content).startswith("Error"):
            parts.append(_error_paragraph(name, str(m.content)))
        elif name == SEARCH:
            passages = list(getattr(m.artifact, "passages", []) or [])
            text, cites = passage_answer(args.get("query", request), passages)
            if cites:
                lead = "From the lecture notes:" if len(parts) == 0 else "Why, from the lecture notes:"
                parts.append(f"{lead}\n{text}")
            else:
                parts.append(prompts.OUTSIDE_LAB)
        else:
            parts.append(_run_paragraph(name, args, m))
    if not parts:
        return prompts.NOTHING_TO_FOLLOW
    note = unused_note(request, [c for c in calls.values() if c[0] != SEARCH])
    return "\n\n".join(parts + ([note] if note else []))


def unused_note(request: str, runs: Sequence[Call]) -> str | None:
    """Say which values of the request no run used (a tool without that argument), and which
    tools take them, instead of dropping them silently."""
    if not runs:
        return None
    used = set().union(*(set(args) for _, args in runs))
    unused = {k: v for k, v in extract_args(request).items() if k not in used}
    if not unused:
        return None
    from tools.registry import TOOLS  # noqa: PLC0415

    lines = []
    for k, v in unused.items():
        takers = [t for t in TOOLS if k in accepted(t)]
        where = f" (an argument of {', '.join(takers)})" if takers else ""
        lines.append(f"{k}={_fmt(v)}{where}")
    names = ", ".join(dict.fromkeys(name for name, _ in runs))
    return f"Not used: {'; '.join(lines)}. This run ({names}) has no such argument."


# ----------------------------------------------------------------------------- the chat model

def previous_call(history: Sequence[BaseMessage]) -> Call | None:
    """The last successful non-search tool call in ``history``."""
    ok = {m.tool_call_id for m in history if isinstance(m, ToolMessage) and m.status != "error"}
    for m in reversed(history):
        if isinstance(m, AIMessage):
            for tc in reversed(m.tool_calls):
                if tc["name"] != SEARCH and tc["id"] in ok:
                    return tc["name"], dict(tc["args"])
    return None


class OfflineChatModel(BaseChatModel):
    """Deterministic tool-routing chat model (no LLM); see the module docstring."""

    tool_names: list[str] | None = None

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
        r = route(request, previous_call(history))
        if r.reply is not None:
            return AIMessage(content=r.reply)
        calls = [c for c in r.calls if self.tool_names is None or c[0] in self.tool_names]
        done = [m for m in turn if isinstance(m, ToolMessage)]
        failed = any(m.status == "error" for m in done)
        if len(done) < len(calls) and not failed:
            name, args = calls[len(done)]
            call_id = f"offline_{last_human}_{len(done)}"
            return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])
        return AIMessage(content=compose_answer(turn))

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.decide(messages))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        msg = self.decide(messages)
        if msg.tool_calls:
            tc = msg.tool_calls[0]
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[
                {"name": tc["name"], "args": json.dumps(tc["args"]), "id": tc["id"], "index": 0}]))
            return
        for piece in re.findall(r"\S+\s*|\s+", str(msg.content)):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


# ----------------------------------------------------------------------------- evaluation

def evaluate_routing(cases: Sequence[dict[str, Any]]) -> tuple[float, int, list[str]]:
    """Accuracy of ``route`` on an evaluation set (tests/assistant/routing_eval.json): a request is
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
                failures.append(f"{turn['request']!r} -> {r.calls}; expected {turn['tool']} {turn['args']}")
            runs = [c for c in r.calls if c[0] != SEARCH]
            if runs:
                previous = runs[0]
    return (ok / n if n else 0.0), n, failures
