"""Tutor mode: predict before you run, hints in steps, and a few classic misconceptions corrected.

Why: unguided chatbot access lowered exam scores while a hint-giving tutor removed the harm
(Bastani et al., PNAS 2025), and predicting the outcome before a demonstration improves learning
(Crouch & Mazur). With tutor mode on, the offline model

1. before running an experiment whose tool declares ``predictions``, asks the student to predict
   the outcome, runs it when they answer, and compares their prediction with the result;
2. on "I'm stuck"/"give me a hint" gives the next of the tool's declared ``hints`` (one per
   request, from gentle to nearly the answer) before suggesting the run;
3. recognises a few classic misconceptions in what the student writes and corrects them with the
   lecture passage that explains why.

The state of a pending prediction travels in the ``additional_kwargs["tutor"]`` of the model's own
messages, so it survives in the conversation history like everything else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from assistant.routing import normalise, pick_tool
from tools.base import ToolResult
from tools.registry import TOOLS

KEY = "tutor"


@dataclass(frozen=True)
class Misconception:
    pattern: str
    correction: str
    query: str


MISCONCEPTIONS: tuple[Misconception, ...] = (
    Misconception(
        r"(?:gain|k)\s*(?:is|=|equals)?\s*(?:sigma ?b|σ ?b)\s*/\s*\(?\s*(?:sigma ?b|σ ?b)\s*\+\s*(?:sigma ?o|σ ?o)\s*\)?"
        r"(?!\s*(?:\^|²|\*\*))|ratio of (?:the )?(?:standard deviations|stds|sigmas)",
        "Careful: the gain weighs *variances*, not standard deviations: K = σ_b²/(σ_b²+σ_o²). With σ_b = 0.8 and "
        "σ_o = 0.3 that is 0.64/0.73 = 0.88, not 0.8/1.1 = 0.73.",
        "scalar Kalman gain variances"),
    Misconception(
        r"(?:fixed|constant|static)[- ]b\b.*\b(?:converg\w*|reach\w*|get\w* to|go\w* to)\b.*\btruth|"
        r"3d-?var\b.*\b(?:converg\w*|reach\w*) (?:to )?(?:the )?truth|keeps? (?:getting|improving) (?:forever|until)",
        "Not quite: with a fixed B, cycled 3D-Var does not converge to the truth. Every cycle trusts the new noisy "
        "observations as much as the first one, so observation error keeps entering and the error plateaus; the "
        "covariance update (B ← (I−KH)B) is what lets it keep falling.",
        "why 3D-Var is not enough fixed B plateau"),
    Misconception(
        r"(?:network|nn|obs2obs|neural net\w*)\b.*\b(?:needs?|requires?|must (?:have|use)|uses?)\b.*\b(?:the )?"
        r"(?:model|simulation|simulator|equations|pde)\b|without (?:the|a) model\b.*\bcan'?t\b|"
        r"can'?t reconstruct\w* .*without (?:the|a) model",
        "That is the point of the lab: the obs-to-obs network needs no model. It learns from observations only "
        "(satellite curtains and radiosondes at t → observations at t+1) and at run time it is queried at any "
        "point of the grid, with no simulation and no equations.",
        "learning from observations only obs-to-obs network"),
)
_MIS = tuple((re.compile(m.pattern), m) for m in MISCONCEPTIONS)

_HINT = re.compile(r"\b(?:hint|stuck|clue|nudge|i don'?t (?:get|understand) how|where do i start|how do i start)\b")
_SKIP = re.compile(r"^\s*(?:skip|no idea|don'?t know|dunno|just run( it)?|pass|idk)\b")


def misconception(text: str) -> Misconception | None:
    t = normalise(text)
    return next((m for rx, m in _MIS if rx.search(t)), None)


def wants_hint(text: str) -> bool:
    return bool(_HINT.search(normalise(text)))


def _state(m: BaseMessage) -> dict[str, Any] | None:
    return m.additional_kwargs.get(KEY) if isinstance(m, AIMessage) else None


def pending(history: Sequence[BaseMessage]) -> dict[str, Any] | None:
    """The prediction the tutor asked for in its last message, if it is still waiting for an answer."""
    for m in reversed(history):
        if isinstance(m, AIMessage):
            state = _state(m)
            return state if state and "ask" in state else None
    return None


def answer_option(text: str, options: Sequence[str]) -> str | None:
    """Which of ``options`` the student's reply picks ("below", "I think it will be below σo"), or "skip"."""
    t = normalise(text)
    if _SKIP.search(t):
        return "skip"
    found = [o for o in options if re.search(rf"\b{re.escape(o.lower())}\b", t)]
    return found[0] if len(found) == 1 else None


def ask(call: tuple[str, dict[str, Any]], index: int = 0) -> AIMessage | None:
    """The question to ask before running ``call``, or None when its tool declares none."""
    name, args = call
    preds = TOOLS[name].predictions
    if not preds:
        return None
    pred = preds[index % len(preds)]
    try:
        filled = {**TOOLS[name].args.model_validate(args).model_dump(), **args}
        question = pred.question.format(**filled)
    except (KeyError, ValueError):
        question = pred.question
    options = " or ".join(f"'{o}'" for o in pred.options)
    text = (f"Before I run {name}, a prediction (it helps to commit first): {question} "
            f"Reply {options}, or 'skip' to just run it.")
    return AIMessage(content=text, additional_kwargs={KEY: {"ask": [name, args], "index": index % len(preds)}})


def comparison(turn: Sequence[BaseMessage]) -> str | None:
    """The student's prediction against the run's result, for the final answer of the turn."""
    state = next((_state(m) for m in turn if _state(m) and "predicted" in _state(m)), None)
    if state is None:
        return None
    result = next((m.artifact for m in turn if isinstance(m, ToolMessage) and isinstance(m.artifact, ToolResult)),
                  None)
    if result is None:
        return None
    right, why = TOOLS[result.tool].predictions[state["index"]].outcome(result)
    guess = state["predicted"]
    if guess == "skip":
        return f"The answer to the prediction question is **{right}**: {why}."
    verdict = "You predicted it right" if guess == right else "Not what you predicted"
    return f"{verdict}: you said **{guess}**; {why}, so the answer is **{right}**."


def hint(text: str, history: Sequence[BaseMessage], previous_tool: str | None) -> AIMessage | None:
    """The next hint for the exercise the student is on (the tool named, or the last one run)."""
    tool = pick_tool(text)
    last_hint = next(((_state(m) or {}).get("hint") for m in reversed(history) if (_state(m) or {}).get("hint")), None)
    tool = tool if tool in TOOLS and TOOLS[tool].hints else last_hint or previous_tool
    if tool is None or not TOOLS[tool].hints:
        return None
    given = sum(1 for m in history if (_state(m) or {}).get("hint") == tool)
    hints = TOOLS[tool].hints
    if given >= len(hints):
        example = TOOLS[tool].examples[0].request if TOOLS[tool].examples else tool
        text = f"You have all the hints for {tool}. Try it now: ask \"{example}\" and look at what the numbers say."
    else:
        text = f"Hint {given + 1} of {len(hints)} ({tool}): {hints[given]}"
    return AIMessage(content=text, additional_kwargs={KEY: {"hint": tool}})


def asked_before(history: Sequence[BaseMessage], tool: str) -> int:
    """How many predictions the tutor has asked about ``tool`` in this conversation."""
    return sum(1 for m in history if ((_state(m) or {}).get("ask") or [None])[0] == tool)
