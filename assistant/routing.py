"""Reading a request: which tool(s) it asks for and with which arguments (the offline model).

Everything here is derived from the tools' declarations (``TOOLS`` in each tools module): the
keywords that name a tool, the phrases students use for each argument and for each value, and
the example requests. No tool and no argument is named in this module, so a new tool is routed
as soon as it is declared.

``read_args(text, tool)`` reads the arguments of one tool; ``pick_tool(text)`` names the tool;
``route(request, previous)`` (in :mod:`assistant.offline`) puts them together with follow-ups,
questions, sequences and the scope checks.
"""

from __future__ import annotations

import inspect
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, get_args, get_origin

from tools.base import ToolSpec, phrase_regex, phrases_of, values_of
from tools.registry import TOOLS

SEARCH = "search_lectures"

NUM = r"(?P<v>-?(?:\d+\.?\d*|\.\d+)(?:e-?\d+)?)"
SEP = (r"\s*(?:=|:|≈|\bof\b|\bis\b|\bto\b|\bat\b|\bequal to\b|\bshould be\b|\bset to\b|\bbeing\b|\bwith\b)?"
       r"\s*(?:=\s*)?(?:\bof\b\s*)?")
FILE = r"(?P<v>[\w~./\\-]+\.(?:csv|nc|npz|pt|txt))"
_NEGATION = re.compile(r"\b(?:without|no|not|don't|dont|do not|w/o|disable|turn off|switch off|never|skip|"
                       r"rather than|instead of)\b(?:\s+[\w'-]+){0,3}\s*$")
_OFF_WORDS = {"false": False, "off": False, "no": False, "0": False, "true": True, "on": True, "yes": True, "1": True}
_COMMON = {"a", "an", "on", "in", "at", "to", "of", "or", "is", "it", "no", "as", "be", "by", "do", "if", "me", "my",
           "so", "up", "we"}


def normalise(text: str) -> str:
    """Lower case, unified dashes and Greek letters, so that the phrases stay simple."""
    t = text.lower().replace("–", "-").replace("—", "-").replace("−", "-").replace("’", "'")
    t = t.replace("σ_o", "sigma o").replace("σo", "sigma o").replace("σ_b", "sigma b").replace("σb", "sigma b")
    t = t.replace("sigma_o", "sigma o").replace("sigma_b", "sigma b")
    t = t.replace("σ", "sigma ").replace("sigma  ", "sigma ")
    return re.sub(r"\s+", " ", t).strip()


# ----------------------------------------------------------------------------- arguments

Kind = Literal["int", "float", "bool", "choice", "many", "file", "text"]


@dataclass(frozen=True)
class Candidate:
    """One reading of an argument in the text: its value, where the value stands, how specific it is."""

    name: str
    value: Any
    span: tuple[int, int]
    weight: int          # length of the phrase that matched: longer phrases win


@dataclass(frozen=True)
class ArgReader:
    """How one argument of one tool is read: numeric phrases, value words, or file names."""

    name: str
    kind: Kind
    numeric: tuple[tuple[re.Pattern[str], int], ...] = ()
    words: tuple[tuple[re.Pattern[str], Any, int], ...] = ()

    def candidates(self, t: str) -> list[Candidate]:
        out = []
        for rx, weight in self.numeric:
            for m in rx.finditer(t):
                raw = m.group("v")
                try:
                    value: Any = raw if self.kind == "file" else float(raw)
                except ValueError:
                    continue
                if self.kind == "int":
                    if value != int(value):
                        continue
                    value = int(value)
                out.append(Candidate(self.name, value, m.span("v"), weight))
        for rx, value, weight in self.words:
            for m in rx.finditer(t):
                v = value
                if self.kind == "bool" and value is True:
                    explicit = re.match(r"\s*(?:=|:)?\s*(false|off|no|true|on|yes)\b", t[m.end():])
                    if explicit:
                        v = _OFF_WORDS[explicit.group(1)]
                    elif _NEGATION.search(_clause_before(t, m.start())):
                        v = False
                out.append(Candidate(self.name, v, m.span(), weight))
        return out


def _clause_before(t: str, i: int) -> str:
    """The text of the clause before position i (a negation does not reach across commas or 'but')."""
    before = t[:i]
    cut = max(before.rfind(","), before.rfind(";"), before.rfind(" but "), before.rfind(" then "))
    return before[cut + 1:] if cut >= 0 else before


def _kind(annotation: Any, extra: dict) -> Kind:
    if extra.get("files"):
        return "file"
    if get_origin(annotation) in (list, tuple, set) and _choices(annotation):
        return "many"
    args = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) is not None else []
    base = args[0] if len(args) == 1 and get_origin(annotation) is not Literal else annotation
    if get_origin(base) is Literal or get_origin(annotation) is Literal:
        return "choice"
    if base is bool:
        return "bool"
    if base is int:
        return "int"
    if base is float:
        return "float"
    return "choice" if extra.get("values") else "text"


def _numeric_patterns(phrases: list[str], kind: Kind) -> tuple[tuple[re.Pattern[str], int], ...]:
    value = FILE if kind == "file" else NUM
    out = []
    for phrase in phrases:
        if "#" in phrase:
            left, right = (phrase_regex(p) if p.strip() else "" for p in phrase.split("#", 1))
            out.append((re.compile(rf"{left}[\s-]*{value}[\s-]*{right}"), len(phrase)))
            continue
        p = phrase_regex(phrase)
        out.append((re.compile(rf"{p}{SEP}{value}(?![\w.])"), len(phrase)))
        if kind in ("int", "float"):
            out.append((re.compile(rf"(?<![\w.-]){value}\s*(?:-\s*)?{p}"), len(phrase)))
    return tuple(out)


@cache
def readers(tool: str) -> tuple[ArgReader, ...]:
    """The argument readers of ``tool``, from its declaration."""
    model = TOOLS[tool].args
    out = []
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        kind = _kind(field.annotation, extra)
        phrases = phrases_of(model, name)
        words: list[tuple[re.Pattern[str], Any, int]] = []
        if kind == "bool":
            for p in phrases:
                words.append((re.compile(phrase_regex(p)), True, len(p)))
            for value, ps in values_of(model, name).items():
                for p in ps:
                    words.append((re.compile(phrase_regex(p)), value == "true", len(p) + 1))
            phrases = []
        elif kind in ("choice", "many"):
            allowed = _choices(field.annotation)
            for value, ps in values_of(model, name).items():
                for p in ps:
                    words.append((re.compile(phrase_regex(p)), value, len(p)))
            for value in allowed:
                if isinstance(value, str) and len(value) >= 2 and value.lower() not in _COMMON:
                    words.append((re.compile(phrase_regex(value)), value, len(value)))
                    words.append((re.compile(rf"\b{re.escape(name)}\s*=\s*{re.escape(value.lower())}\b"), value,
                                  len(name) + len(value) + 1))
            phrases = []
        elif kind in ("int", "float", "file"):
            phrases = sorted({*phrases, name.replace("_", " ")}, key=len, reverse=True)
        else:
            phrases = []
        out.append(ArgReader(name, kind, _numeric_patterns(phrases, kind), tuple(words)))
    return tuple(out)


def _choices(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    for a in get_args(annotation):
        found = _choices(a)
        if found:
            return found
    return ()


def read_args(text: str, tool: str) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    """The arguments of ``tool`` that ``text`` states, and the spans they were read from.

    Every phrase of every argument is tried; longer phrases win, and a number is read for one
    argument only ("0.5 observation error and background error 0.8").
    """
    t = normalise(text)
    cands = [c for r in readers(tool) for c in r.candidates(t)]
    cands.sort(key=lambda c: (-c.weight, c.span[0]))
    many = {r.name for r in readers(tool) if r.kind == "many"}
    out: dict[str, Any] = {}
    used: list[tuple[int, int]] = []
    found: dict[str, list[tuple[int, Any]]] = {}
    for c in cands:
        if (c.name in out and c.name not in many) or any(c.span[0] < e and s < c.span[1] for s, e in used):
            continue
        if c.name in many:      # every value named, in the order written ("the EnKF and 3D-Var")
            found.setdefault(c.name, []).append((c.span[0], c.value))
            out[c.name] = None
        else:
            out[c.name] = c.value
        used.append(c.span)
    for name, values in found.items():
        out[name] = list(dict.fromkeys(v for _, v in sorted(values, key=lambda x: x[0])))
    files = [r.name for r in readers(tool) if r.kind == "file" and r.name not in out]
    if files and not any(r.kind == "file" and r.name in out for r in readers(tool)):
        m = re.search(FILE, t)          # a file named without its argument's words: the first file argument's
        if m:
            out[files[0]] = m.group("v")
    special = TOOLS[tool].read
    if special is not None:
        out.update(special(text, TOOLS) if _takes_tools(special) else special(text))
    return out, used


@cache
def _takes_tools(read: Any) -> bool:
    """Whether a tool's ``read`` takes the registry's tools as its second parameter (see ToolSpec.read)."""
    return len(inspect.signature(read).parameters) >= 2


def _all(text: str) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    out: dict[str, Any] = {}
    spans: list[tuple[int, int]] = []
    for tool in TOOLS:
        if tool == SEARCH:
            continue
        got, used = read_args(text, tool)
        spans += used
        for k, v in got.items():
            out.setdefault(k, v)
    return out, spans


def all_args(text: str) -> dict[str, Any]:
    """Every argument any tool could read from ``text`` (for saying which values no run used)."""
    return _all(text)[0]


def bare_number(text: str) -> float | None:
    """A number in ``text`` that no phrase of any tool claims ("now with 0.5"), or None."""
    t = normalise(text)
    used = _all(text)[1]
    for m in re.finditer(NUM, t):
        s, e = m.span("v")
        if not any(s < ue and us < e for us, ue in used):
            return float(m.group("v"))
    return None


def main_argument(tool: str, value: float, previous: dict[str, Any] | None = None) -> str | None:
    """Which argument a bare number ("now with 0.5") sets: of the numeric arguments that take this kind
    of number, the one the tool's examples set most often among those the student set before; else the
    one the examples set most often; else the first. The seed is never guessed."""
    kinds = {r.name: r.kind for r in readers(tool)}
    fits = [n for n, k in kinds.items() if n != "seed" and (k == "float" or (k == "int" and value == int(value)))]
    counts = Counter(k for ex in TOOLS[tool].examples for k in ex.args if k in fits)
    ranked = sorted(fits, key=lambda n: (-counts[n], fits.index(n)))
    before = [n for n in ranked if n in (previous or {})]
    return (before or ranked or [None])[0]


# ----------------------------------------------------------------------------- tools

@cache
def _keyword_res() -> tuple[tuple[str, float, re.Pattern[str]], ...]:
    return tuple((spec.name, w, re.compile(p)) for spec in TOOLS.values() for w, p in spec.keywords)


def pick_tool(text: str) -> str | None:
    """The tool named or described by ``text`` (highest keyword weight; ties: the first declared), or None."""
    t = normalise(text).replace("_", " ")
    best, best_w = None, 0.0
    for tool, w, rx in _keyword_res():
        if w > best_w and rx.search(t):
            best, best_w = tool, w
    return best


def asks_to_run(text: str, tool: str) -> bool:
    """A question that this tool answers by running ("how does the error depend on …?")."""
    t = normalise(text)
    return any(re.search(p, t) for p in TOOLS[tool].questions)


def topic(tool: str | None) -> str:
    """Lecture words that a search adds when a question refers to ``tool``'s experiment."""
    return TOOLS[tool].topic if tool in TOOLS else ""


def accepted(tool: str) -> set[str]:
    return set(TOOLS[tool].args.model_fields)


def spec(tool: str) -> ToolSpec:
    return TOOLS[tool]
