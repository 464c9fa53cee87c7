"""The offline model's answers, written from this turn's tool results (it never invents a number).

- a run: the tool's summary, its key numbers and its figures;
- a concept: a direct answer made of the best-matching sentences of the retrieved passages (whole
  sentences, whole formulas, whole tables: never cut inside one), the formula when one is asked
  for, then the citations; passages that do not address the question are left out;
- a question about the last run: that run's own numbers (``ToolSpec.explain``, or the metrics the
  question names), then the lecture passage that explains them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from assistant import prompts
from assistant.routing import SEARCH, all_args, spec
from tools.base import ToolResult
from tools.chunking import tokenize
from tools.registry import TOOLS

_STOP = set("""a an the of to in on for and or is are was were be been it its this that these those with without by
from at as do does did why what how which when who whom explain tell me about can could would should we i you
they he she there here than then so if into over under per not no yes more most less very much many some any
please matter matters use used using run lab lecture lectures note notes mean means get got come came out value
give show""".split())


def _stem(w: str) -> str:
    for suffix in ("ations", "ation", "ing", "ers", "er", "ed", "es", "s"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            return w[: -len(suffix)]
    return w


def terms(text: str) -> set[str]:
    """Content words of ``text`` (stop words dropped, crude suffixes folded: presented ~ presenter)."""
    words = re.findall(r"[a-zA-Z][a-zA-Z0-9-]+", text.lower())
    return {_stem(w) for w in words if w not in _STOP and len(w) > 1}


def fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# ----------------------------------------------------------------------------- passages

_BLOCK = re.compile(r"(\$\$.+?\$\$)", re.S)


def units(text: str) -> list[tuple[str, str]]:
    """A passage cut into whole units: ("sentence", …), ("formula", $$…$$), ("table", rows), ("item", …).

    Display maths and tables are never split; a sentence that introduces a formula ("…:") keeps it.
    """
    text = re.sub(r"^#+\s.*$", "", text, flags=re.M)
    out: list[tuple[str, str]] = []
    for piece in _BLOCK.split(text):
        if not piece.strip():
            continue
        if piece.startswith("$$"):
            out.append(("formula", piece.strip()))
            continue
        table: list[str] = []
        for para in re.split(r"\n\s*\n", piece):
            lines = [ln for ln in para.split("\n") if ln.strip()]
            if lines and all(ln.lstrip().startswith("|") for ln in lines):
                table = lines
                out.append(("table", "\n".join(table)))
                continue
            for ln in _join_items(lines):
                kind = "item" if re.match(r"\s*(?:[-*]|\d+\.)\s", ln) else "sentence"
                flat = re.sub(r"\s+", " ", ln.replace("**", "")).strip()
                flat = re.sub(r"^(?:[-*]|\d+\.)\s+", "", flat)
                for s in _SENTENCE_END.split(flat) if kind == "sentence" else [flat]:
                    if len(s.strip()) > 2:
                        out.append((kind, s.strip()))
    return out


_SENTENCE_END = re.compile(r"(?<=[.!?])(?<!\bal\.)(?<!e\.g\.)(?<!i\.e\.)(?<!\bcf\.)(?<!\bvs\.)(?<!\bEq\.)(?<!\bFig\.)"
                           r"\s+(?=[A-Z0-9(\[$])")
"""A sentence boundary: an end mark, then space and a capital, digit, bracket or formula; not after
"et al.", "e.g.", "i.e.", "cf.", "vs.", "Eq.", "Fig."."""
_REFERS_BACK = re.compile(r"^(?:This|These|That|Those|It|Its|They|Their|Such|Here|Both|Then)\b|^(?:\S+\s+){1,5}(?:these|those|its|their)\b")
"""A sentence that leans on the one before it ("These correlations …") and is not quoted without it."""
_LEANS = re.compile(r"\b(?:measures|does|means|shows|explains|fixes|avoids|prevents|causes|counters|cures) (?:this|that|these)\b")
"""... or that names what the sentence before it said ("N_eff measures this")."""


def _join_items(lines: list[str]) -> list[str]:
    """Paragraph lines joined into sentences, list items kept one per entry."""
    out: list[str] = []
    for ln in lines:
        if re.match(r"\s*(?:[-*]|\d+\.)\s", ln) or not out:
            out.append(ln)
        elif re.match(r"\s*(?:[-*]|\d+\.)\s", out[-1]) and ln.startswith("  "):
            out[-1] += " " + ln.strip()
        elif re.match(r"\s*(?:[-*]|\d+\.)\s", out[-1]):
            out.append(ln)
        else:
            out[-1] += " " + ln.strip()
    return out


_WANTS_FORMULA = re.compile(r"\b(?:formula|equation|defined|definition|expression|how (?:is|are) .* (?:computed|calculated)|"
                            r"written|maths?|operator)\b")


def relevant(query: str, passages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The passages that address the question, in retrieval order: those that share its content
    words; and when some passages' section titles name a term of the question, those first and then the
    best passage (the others mention it in passing). On the retrieval eval set this filter
    raised the share of quoted passages that are expected answers from 0.37 to 0.56."""
    asked = set(tokenize(query))
    titled = [bool(asked & set(tokenize(str(p.get("section", ""))))) for p in passages]
    if any(titled):         # the passages whose section is about the question lead; the best match follows
        passages = [p for i, p in enumerate(passages) if titled[i]] + ([] if titled[0] else [passages[0]])
    q = terms(query)
    return [p for p in passages if q & terms(p.get("text", "") + " " + str(p.get("section", "")))]


def passage_answer(query: str, passages: Sequence[dict[str, Any]], n: int = 3) -> tuple[str, list[str]]:
    """A direct answer from the passages: from each of the (at most ``n``) passages that address the
    question, its best one or two whole sentences with the citation, best passage first; the formula
    when one is asked for (or when a chosen sentence introduces one); then the sources.

    Returns (text, citations); ("", []) when no passage addresses the question.
    """
    q = terms(query)
    wants_formula = bool(_WANTS_FORMULA.search(query))
    pieces: list[str] = []
    cites: list[str] = []
    formula_shown = False
    for p in relevant(query, passages)[:n]:
        cite = p.get("citation") or f"[{p.get('source')} § {p.get('section')}]"
        us = units(p.get("text", ""))
        ranked = sorted((j for j, (kind, text) in enumerate(us) if kind not in ("formula", "table")
                         and not text.endswith("?") and q & terms(text)),
                        key=lambda j: (-len(q & terms(us[j][1])), j))
        if not ranked:
            continue
        chosen = sorted(ranked[:2])
        for _ in range(2):                           # quote the sentences a chosen one refers back to
            chosen = sorted({*chosen, *(j - 1 for j in chosen if j > 0 and us[j - 1][0] == "sentence"
                                        and (_REFERS_BACK.match(us[j][1]) or _LEANS.search(us[j][1])))})
        text = ""
        for j in chosen:
            text += (" " if text else "") + us[j][1]
            nxt = us[j + 1] if j + 1 < len(us) else None
            if nxt and nxt[0] in ("formula", "table") and (not us[j][1].rstrip().endswith((".", "!", "?"))
                                                           or wants_formula):
                text += "\n\n" + nxt[1] + "\n\n"
                formula_shown = formula_shown or nxt[0] == "formula"
        pieces.append(f"{text.rstrip()} {cite}")
        cites.append(cite)
    if not pieces:
        return "", []
    if wants_formula and not formula_shown:
        for p in relevant(query, passages)[:2]:
            f = next((t for k, t in units(p.get("text", "")) if k == "formula"), None)
            if f:
                cite = p.get("citation") or f"[{p.get('source')} § {p.get('section')}]"
                pieces.append(f"The formula:\n\n{f}\n\n{cite}")
                cites.append(cite)
                break
    lead, rest = pieces[0], pieces[1:]
    body = lead + ("\n\nAlso from the notes:\n" + "\n".join(f"- {x}" for x in rest) if rest else "")
    sources = list(dict.fromkeys(cites))
    return body + "\n\nSources: " + " ".join(sources), sources


@cache
def notes_vocabulary() -> frozenset[str]:
    """Every content word of the lecture notes (corpus/*.md), folded as ``terms`` folds them."""
    from tools.retrieval import corpus_dir  # noqa: PLC0415

    words: set[str] = set()
    for path in corpus_dir().glob("*.md"):
        words |= terms(path.read_text(encoding="utf-8"))
    return frozenset(words)


@cache
def _common_words() -> frozenset[str]:
    """Whole words of the embedding model's WordPiece vocabulary: everyday English and common terms."""
    from tools.embedding import get_model  # noqa: PLC0415

    return frozenset(w for w in get_model().tokenizer.vocab if w.isalpha())


def uncovered(query: str) -> list[str]:
    """The question's distinctive words that appear nowhere in the lecture notes ("kuramoto", "sivashinsky"):
    rare words (not whole words of the embedding model's vocabulary) absent from every note. When there are
    any, the notes do not cover the question, whatever passages come closest."""
    words = re.findall(r"[a-z][a-z]+", query.lower())
    return sorted({w for w in words if len(w) >= 4 and w not in _STOP and _stem(w) not in notes_vocabulary()
                   and w not in notes_vocabulary() and w not in _common_words()})


# ----------------------------------------------------------------------------- runs

def run_paragraph(name: str, call_args: dict[str, Any], msg: ToolMessage) -> str:
    result = msg.artifact
    given = ", ".join(f"{k}={fmt(v)}" for k, v in call_args.items()) or "defaults"
    if result is None:       # e.g. a replay without artifact: the content is what we have
        return f"**{name}** ({given}):\n{msg.content}"
    lines = [f"**{name}** ({given}): {result.summary}"]
    metrics = [(k, v) for k, v in result.metrics.items() if not isinstance(v, str)][:8]
    if metrics:
        lines.append("Key numbers: " + ", ".join(f"{k} = {fmt(v)}" for k, v in metrics) + ".")
    if result.figures:
        lines.append("Figures: " + ", ".join(p.name for p in result.figures) + f" (in {result.run_dir.name}).")
    return "\n".join(lines)


_EXAMPLE = {name: (s.examples[0].request if s.examples else name) for name, s in TOOLS.items()}


def error_paragraph(name: str, content: str) -> str:
    text = prompts.for_people(str(content))
    text = re.sub(rf"^{re.escape(name)}:\s*", "", text)
    fix = ""
    m = re.search(r"run `(\w+)` first", text)
    if m:
        fix = f"Run `{m.group(1)}` first (e.g. ask \"{_EXAMPLE.get(m.group(1), m.group(1))}\"), then ask again."
    elif "invalid arguments" in text or "not allowed" in text:
        fix = "Ask again with an allowed value (the allowed values are listed above)."
    elif "failed unexpectedly" in text:
        fix = "Other settings may still work."
    elif name in prompts.PREREQUISITES:
        fix = f"If an earlier product is missing, run {prompts.PREREQUISITES[name]} first."
    return f"**{name}** could not run: {text}" + (f"\n{fix}" if fix else "")


def unused_note(request: str, runs: Sequence[tuple[str, dict[str, Any]]]) -> str | None:
    """Say which values of the request no run used (a tool without that argument), and which
    tools take them, instead of dropping them silently."""
    if not runs:
        return None
    used = set().union(*(set(args) for _, args in runs))
    used |= {k for _, args in runs for v in args.values() if isinstance(v, dict) for k in v}   # a script's or sweep's
    stated = {k: v for k, v in all_args(request).items()          # numbers the student wrote, not words that
              if isinstance(v, (int, float)) and not isinstance(v, bool)}   # happen to name some tool's option
    unused = {k: v for k, v in stated.items() if k not in used
              and not any(k in TOOLS[n].args.model_fields for n, _ in runs)}
    if not unused:
        return None
    lines = []
    for k, v in unused.items():
        takers = [t for t in TOOLS if k in TOOLS[t].args.model_fields]
        where = f" (an argument of {', '.join(takers)})" if takers else ""
        lines.append(f"{k}={fmt(v)}{where}")
    names = ", ".join(dict.fromkeys(name for name, _ in runs))
    return f"Not used: {'; '.join(lines)}. This run ({names}) has no such argument."


# ----------------------------------------------------------------------------- the last result

def about_result(result: ToolResult, question: str) -> str:
    """What the last run's own numbers say to ``question``: the tool's explanation when it declares
    one, else the metrics and arguments the question names."""
    declared = spec(result.tool).explain if result.tool in TOOLS else None
    if declared is not None:
        text = declared(result, question)
        if text:
            return text
    q = terms(question.replace("_", " "))
    named = [(k, v) for k, v in result.metrics.items() if q & terms(k.replace("_", " "))]
    if not named:
        named = [(k, v) for k, v in result.metrics.items() if not isinstance(v, str)][:4]
    numbers = ", ".join(f"{k} = {fmt(v)}" for k, v in named[:6])
    return f"In your last run ({result.tool}, {result.run_dir.name}): {numbers}. {result.summary}"


def last_result(history: Sequence[BaseMessage]) -> ToolResult | None:
    """The ToolResult of the last successful non-search tool call in ``history``."""
    for m in reversed(history):
        if isinstance(m, ToolMessage) and m.status != "error" and isinstance(m.artifact, ToolResult) \
                and m.artifact.tool != SEARCH:
            return m.artifact
    return None


# ----------------------------------------------------------------------------- the whole answer

def compose(turn: Sequence[BaseMessage], history: Sequence[BaseMessage] = (), about_last: bool = False) -> str:
    """The final answer from this turn's messages (the user's request first, then calls and results)."""
    request = str(turn[0].content) if turn else ""
    calls: dict[str, tuple[str, dict[str, Any]]] = {}
    for m in turn:
        if isinstance(m, AIMessage):
            for tc in m.tool_calls:
                calls[tc["id"]] = (tc["name"], tc["args"])
    parts: list[str] = []
    if about_last:
        last = last_result(history)
        if last is not None:
            parts.append(about_result(last, request))
    for m in turn:
        if not isinstance(m, ToolMessage):
            continue
        name, args = calls.get(m.tool_call_id, (m.name or "tool", {}))
        if m.status == "error" or m.artifact is None and str(m.content).startswith("Error"):
            parts.append(error_paragraph(name, str(m.content)))
        elif name == SEARCH:
            passages = list(getattr(m.artifact, "passages", []) or [])
            missing = uncovered(request) if not parts else []
            text, cites = ("", []) if missing else passage_answer(args.get("query", request), passages)
            if cites:
                lead = "Why, from the lecture notes:" if parts else ""
                parts.append(f"{lead}\n{text}".strip())
            elif passages and not parts:
                p = passages[0]
                cite = p.get("citation") or f"[{p.get('source')} § {p.get('section')}]"
                first = next((t for k, t in units(p.get("text", "")) if k == "sentence"), "")
                parts.append(prompts.NOT_COVERED.format(nearest=f"{first} {cite}".strip(),
                                                        what=", ".join(missing) or "this"))
            elif not parts:
                parts.append(prompts.OUTSIDE_LAB)
        elif isinstance(m.artifact, ToolResult) and m.artifact.metrics.get("script"):
            parts.append(run_paragraph(name, args, m) + "\n\n```python\n" + m.artifact.files[0].read_text() + "```")
        else:
            parts.append(run_paragraph(name, args, m))
    if not parts:
        return prompts.NOTHING_TO_FOLLOW
    note = unused_note(request, [c for c in calls.values() if c[0] != SEARCH])
    return "\n\n".join(parts + ([note] if note else []))
