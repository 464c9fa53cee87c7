"""A sensitivity question as a sweep: which experiment tool, which of its arguments vary, over which values.

"how does the EnKF error depend on ensemble size and inflation?" becomes ``{"tool":
"run_da_experiment", "grid": {"n_members": [5, 10, 20], "inflation": [1.0, 1.2, 1.4]},
"fixed": {"method": "enkf"}}``. Nothing here names a tool or a question: the target is the
experiment tool whose declared keywords the question matches (else the one whose arguments it
names most), and its arguments are found by the phrases and value words the target declares
(``tools.base.arg``). This is ``run_sweep``'s ``ToolSpec.read``; the offline model calls it
with the registry's tools.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

from tools.base import ToolArgs, ToolSpec, phrase_regex, phrases_of, values_of

SCALES = (0.25, 0.5, 1.0, 2.0)
"""an argument the question names without values is tried at these multiples of its default"""
PRESET_VALUES: dict[str, tuple[Any, ...]] = {
    "n_members": (5, 10, 20),
    "inflation": (1.0, 1.2, 1.4),
    "sigma_o": (0.25, 0.5, 1.0, 2.0),
    "localisation_radius": (1.0, 2.0, 4.0, 8.0),
    "n_obs": (100, 300, 1000),
    "obs_every": (5, 10, 25, 50),
    "window": (1, 2, 4),
}
"""values tried for an argument whose default is a preset (None), where no multiple of a default exists;
few enough that a two-argument sweep of the Lorenz-63 EnKF (9 points) runs in well under a minute"""
_NUMBER = r"-?(?:\d+\.?\d*|\.\d+)(?:e-?\d+)?"
_REPEATS = r"\s*(?:seeds?|repetitions?|repeats?|realis|realiz|times|runs)\b"
_LISTED = re.compile(rf"\s*(?:of|=|:|in|from|over|between|at|equal to)?\s*[\[(]?\s*"
                     rf"({_NUMBER}(?:\s*(?:,\s*and|,\s*or|,|\bor\b|\band\b)\s*{_NUMBER})*)(?![\w.])(?!{_REPEATS})")
_BEFORE = re.compile(rf"(?<![\w.-])({_NUMBER})\s*-?\s*$")
_SEEDS = re.compile(rf"\b(\d+)\s+(?:seeds|repetitions|repeats|realisations|realizations)\b")


def sweepable(spec: ToolSpec) -> bool:
    """Experiment tools: they write run records (not search) and do not work on other tools (the
    sweep itself, the script writer)."""
    return spec.records and "tool" not in spec.args.model_fields


def _base(annotation: Any) -> Any:
    """``int`` for ``int | None``; the annotation itself otherwise."""
    if get_origin(annotation) in (Union, UnionType):
        inner = [a for a in get_args(annotation) if a is not NoneType]
        return inner[0] if len(inner) == 1 else annotation
    return annotation


def _kind(annotation: Any) -> str | None:
    base = _base(annotation)
    if get_origin(base) is Literal:
        return "choice"
    return {bool: "bool", int: "int", float: "float"}.get(base)


@cache
def _patterns(model: type[ToolArgs]) -> tuple[tuple[re.Pattern[str], str, Any], ...]:
    """(pattern, argument, value) for every phrase of the model's numeric and yes/no arguments (value
    None) and every word for one value of its choice arguments."""
    out = []
    for name, field in model.model_fields.items():
        kind = _kind(field.annotation)
        if name == "seed" or kind is None:
            continue
        if kind == "choice":
            words = values_of(model, name)
            for value in get_args(_base(field.annotation)):
                for w in {value, *words.get(value, [])}:
                    if len(w) >= 2:
                        out.append((re.compile(phrase_regex(w)), name, value))
        else:
            for p in {*phrases_of(model, name), name}:
                if len(p) >= 2 and "#" not in p:
                    out.append((re.compile(phrase_regex(p)), name, None))
    return tuple(out)


def named_arguments(t: str, model: type[ToolArgs]) -> list[tuple[int, int, str, Any]]:
    """Where ``t`` names the model's arguments: (start, end, argument, value), value None for a numeric
    or yes/no argument's phrase; longer phrases win where two overlap. In order of position."""
    found = [(m.start(), m.end(), name, value) for rx, name, value in _patterns(model) for m in rx.finditer(t)]
    found.sort(key=lambda c: (c[0] - c[1], c[0]))
    chosen: list[tuple[int, int, str, Any]] = []
    for c in found:
        if not any(c[0] < e and s < c[1] for s, e, _, _ in chosen):
            chosen.append(c)
    return sorted(chosen)


def sweep_target(t: str, tools: Mapping[str, ToolSpec]) -> str | None:
    """The experiment tool a question is about: the one its declared keywords name most strongly (ties:
    the first declared), else the one whose arguments it names most, else None."""
    candidates = {n: s for n, s in tools.items() if sweepable(s)}
    words = t.replace("_", " ")
    best, best_w = None, 0.0
    for name, spec in candidates.items():
        for w, rx in spec.keywords:
            if w > best_w and re.search(rx, words):
                best, best_w = name, w
    if best is not None:
        return best
    counts = {n: len({c[2] for c in named_arguments(t, s.args)}) for n, s in candidates.items()}
    name = max(counts, key=counts.__getitem__, default=None)
    return name if name is not None and counts[name] else None


def _number(text: str) -> int | float:
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


def default_values(model: type[ToolArgs], name: str) -> list[Any]:
    """What a sweep tries for an argument the question gives no values for: no and yes; ¼, ½, 1 and 2
    times a numeric default; ``PRESET_VALUES`` where the default is a preset; inside the bounds."""
    field = model.model_fields[name]
    kind = _kind(field.annotation)
    if kind == "bool":
        return [False, True]
    default = field.default
    if isinstance(default, (int, float)) and not isinstance(default, bool) and default != 0:
        values = [default * s for s in SCALES]
        if kind == "int":
            values = [max(1, round(v)) for v in values]
    else:
        values = list(PRESET_VALUES.get(name, ()))
    bounds = [(getattr(m, k, None), k) for m in field.metadata for k in ("ge", "gt", "le", "lt")]
    ok = {"ge": lambda v, b: v >= b, "gt": lambda v, b: v > b, "le": lambda v, b: v <= b, "lt": lambda v, b: v < b}
    kept = [v for v in values if all(b is None or ok[k](v, b) for b, k in bounds)]
    return list(dict.fromkeys(kept)) if len(set(kept)) > 1 else []


def sweep_from_question(question: str, tools: Mapping[str, ToolSpec]) -> dict[str, Any]:
    """``run_sweep`` arguments for a sensitivity question, or ``{}`` when it names nothing to vary.

    The target tool is :func:`sweep_target`'s. Each argument of it that the question names varies:
    over the values written after its name ("sigma_o 0.5, 1 and 2"), else over
    :func:`default_values`; one value written ("with 20 members", "inflation 1.1") fixes it instead.
    Words for values of a choice argument ("EnKF", "3D-Var") fix it when one is named and vary it
    over those named when several are. "3 seeds" sets ``seeds``.

    Parameters
    ----------
    question : str
        The request (any case).
    tools : mapping of str to ToolSpec
        The registry's tools (``RunContext.tools``; the offline model passes them).
    """
    t = re.sub(r"\s+", " ", question.lower().replace("σ", "sigma ").replace("sigma  ", "sigma "))
    tool = sweep_target(t, tools)
    if tool is None:
        return {}
    model = tools[tool].args
    varied: dict[str, list[Any]] = {}
    fixed: dict[str, Any] = {}
    numbers_used: list[tuple[int, int]] = []
    for start, end, name, value in named_arguments(t, model):
        if value is not None:                               # a word for one value of a choice argument
            if value not in varied.setdefault(name, []):
                varied[name].append(value)
            continue
        if name in varied or name in fixed:
            continue
        values: list[Any] = []
        listed = _LISTED.match(t, end)
        before = _BEFORE.search(t, 0, start)
        if listed and not any(listed.start(1) < e and s < listed.end(1) for s, e in numbers_used):
            values = [_number(v if not v.lstrip("-").startswith(".") else v.replace(".", "0.", 1))
                      for v in re.findall(_NUMBER, listed.group(1))]
            numbers_used.append(listed.span(1))
        elif before and not any(before.start(1) < e and s < before.end(1) for s, e in numbers_used):
            values = [_number(before.group(1))]
            numbers_used.append(before.span(1))
        else:
            values = default_values(model, name)
        if values:
            varied[name] = values
    for name in list(varied):
        if len(varied[name]) == 1:
            fixed[name] = varied.pop(name)[0]
    if not varied:
        return {}
    out: dict[str, Any] = {"tool": tool, "grid": varied}
    if fixed:
        out["fixed"] = fixed
    seeds = _SEEDS.search(t)
    if seeds:
        out["seeds"] = int(seeds.group(1))
    return out
