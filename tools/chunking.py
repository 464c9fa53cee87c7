"""Lecture text as chunks and BM25 terms: the text side of the lecture index.

Chunks (``chunk_file`` picks the chunker by file type; PDF text comes from pypdf):

- Markdown with headings: one chunk per heading's own text (up to the next heading of any level,
  ignoring ``#`` lines inside code fences), with its heading path ("Title > Section > Sub"); the
  title is the front matter's ``title`` or the file name, and the front matter's ``seeds`` go with
  every chunk. A section over ``MD_MAX_WORDS`` (250) words is split on paragraphs into even parts of
  about ``MD_PART_WORDS`` (200) that keep the same section, so a citation still names the section.
- Plain text, PDF text and Markdown without headings: windows of ``WIN_LO``..``WIN_HI`` (150-250)
  words of whole paragraphs (an over-long paragraph is cut at sentence ends); the section is the
  window's first heading-like line, else "part N".
- A chunk is embedded and BM25-indexed with its heading path in front of its text
  (``Chunk.indexed_text``); BM25 counts the heading path twice, since a title match is a strong
  signal.

Tokenizer: lecture terms stay whole ("3d-var", "rk4", "sigma_o") and also give their joined form
and parts, Greek letters are spelled out, a few course abbreviations are expanded (l63 ->
lorenz63), stop words dropped and plain words lightly stemmed. BM25 is plain Okapi BM25 over these
terms, built in memory when the index is opened.

``CHUNKING_VERSION`` is part of the index's content hash: bump it whenever the chunks this module
makes (or ``Chunk.indexed_text``) change, so that existing indexes are rebuilt. The tokenizer and
BM25 are not stored in the index, so changing them needs no bump. Everything here is pure (bytes or
text in, chunks out): no files, no embedding model, no chromadb.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHUNKING_VERSION = "1"
MD_MAX_WORDS, MD_PART_WORDS = 250, 200   # Markdown sections longer than this are split in parts
WIN_LO, WIN_HI = 150, 250                # word windows for plain text and PDF


# ----------------------------------------------------------------------------- tokenizer and BM25

_GREEK = dict(zip("αβγδεζηθικλμνξπρσςτυφχψωΔΦΨΩΣΓΛ",
                  "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho "
                  "sigma sigma tau upsilon phi chi psi omega delta phi psi omega sigma gamma lambda"
                  .split()))
_TOKEN = re.compile(r"\w+(?:[-‐–'’.]\w+)*")
_SPLIT = re.compile(r"[-‐–'’._]")
_STOP = frozenset("""a an and are as at be been but by can do does for from has have how i if in into
is it its me my of on or our so such than that the their them then there these this those to was we
were what when where which while who why will with would you your about also each more most not
only other same should some use used using via vs""".split())
_ALIASES = {"l63": "lorenz63", "l96": "lorenz96", "rs": "radiosonde", "sat": "satellite",
            "obs": "observation", "nn": "network", "cnn": "convolutional"}
_SUFFIXES = ("isations", "izations", "isation", "ization", "ations", "ation", "ising", "izing",
             "ised", "ized", "ises", "izes", "ise", "ize", "ings", "ing", "ies", "ed", "ly", "s")


def _stem(w: str) -> str:
    if len(w) <= 3 or not w.isalpha():
        return w
    for suf in _SUFFIXES:
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            if suf == "s" and w[-2] in "siu":
                break
            w = w[: -len(suf)] + ("y" if suf == "ies" else "")
            break
    return w[:-1] if w.endswith("e") and len(w) > 4 else w


def _term(t: str) -> str | None:
    t = _ALIASES.get(t, t)
    return None if t in _STOP else _stem(t)


def tokenize(text: str) -> list[str]:
    """Lower-cased BM25 terms. Lecture terms stay whole ("3d-var", "rk4", "sigma_o", "0.2") and
    also give their joined form ("3dvar") and parts ("3d", "var"); Greek letters are spelled out
    (σ_o -> sigma_o); plain words are lightly stemmed (normalisation, normalise -> normal)."""
    text = "".join(_GREEK.get(c, c) for c in text.lower())
    out: list[str] = []
    for tok in _TOKEN.findall(text):
        parts = [p for p in _SPLIT.split(tok) if p]
        if len(parts) > 1 and not re.fullmatch(r"[\d.]+", tok):
            terms = [tok.replace("’", "'"), "".join(parts), *(p for p in parts if len(p) > 1)]
        else:
            terms = [tok]
        out.extend(t for t in dict.fromkeys(map(_term, terms)) if t)
    return out


class BM25:
    """Okapi BM25 over pre-tokenized documents (k1 = 1.5, b = 0.75, non-negative idf)."""

    def __init__(self, docs: list[list[str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b, self.n = k1, b, len(docs)
        self.doc_len = np.array([len(d) for d in docs], dtype=float)
        self.avgdl = float(self.doc_len.mean()) if docs else 0.0
        self.postings: dict[str, dict[int, int]] = {}
        for i, doc in enumerate(docs):
            for t in doc:
                self.postings.setdefault(t, {}).setdefault(i, 0)
                self.postings[t][i] += 1
        self.idf = {t: math.log(1 + (self.n - len(p) + 0.5) / (len(p) + 0.5))
                    for t, p in self.postings.items()}

    def scores(self, query: list[str]) -> np.ndarray:
        s = np.zeros(self.n)
        norm = self.k1 * (1 - self.b + self.b * self.doc_len / max(self.avgdl, 1e-9))
        for t in set(query):
            for i, tf in self.postings.get(t, {}).items():
                s[i] += self.idf[t] * tf * (self.k1 + 1) / (tf + norm[i])
        return s

    def top(self, query: list[str], n: int) -> list[tuple[int, float]]:
        s = self.scores(query)
        order = np.argsort(-s, kind="stable")[:n]
        return [(int(i), float(s[i])) for i in order if s[i] > 0]


# ----------------------------------------------------------------------------- chunking

@dataclass(frozen=True)
class Chunk:
    text: str
    source: str
    section: str
    heading_path: str
    seed: str | None = None

    @property
    def indexed_text(self) -> str:
        """What is embedded and BM25-indexed: the heading path, then the text."""
        return f"{self.heading_path}\n\n{self.text}"

    @property
    def bm25_text(self) -> str:
        """What BM25 indexes: the heading path counts twice (a title match is a strong signal)."""
        return f"{self.heading_path}\n{self.indexed_text}"


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def _words(s: str) -> int:
    return len(s.split())


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _split_long(par: str, hi: int) -> list[str]:
    """A paragraph as pieces of at most ``hi`` words, cut at sentence ends where possible."""
    if _words(par) <= hi:
        return [par]
    out, cur = [], []
    for sentence in re.split(r"(?<=[.!?])\s+|\n", par):
        words = sentence.split()
        if cur and len(cur) + len(words) > hi:
            out.append(" ".join(cur))
            cur = []
        while len(words) > hi:
            out.append(" ".join(words[:hi]))
            words = words[hi:]
        cur += words
    return out + ([" ".join(cur)] if cur else [])


def _pack(paragraphs: list[str], lo: int, hi: int) -> list[str]:
    """Consecutive paragraphs packed into windows of about ``lo``..``hi`` words."""
    pieces = [q for p in paragraphs for q in _split_long(p, hi)]
    windows: list[list[str]] = []
    n = 0
    for p in pieces:
        w = _words(p)
        if not windows or n >= lo or n + w > hi:
            windows.append([])
            n = 0
        windows[-1].append(p)
        n += w
    if len(windows) > 1 and sum(map(_words, windows[-1])) < lo / 3 \
            and sum(map(_words, windows[-2] + windows[-1])) <= hi * 1.2:
        last = windows.pop()
        windows[-1] += last
    return ["\n\n".join(w) for w in windows]


def _front_matter(text: str) -> tuple[dict, str]:
    m = re.match(r"^---\s*\n(.*?)\n---\s*(?:\n|$)", text, flags=re.S)
    if not m:
        return {}, text
    import yaml

    try:
        meta = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        meta = None
    return (meta if isinstance(meta, dict) else {}), text[m.end():]


def chunk_markdown(text: str, source: str) -> list[Chunk]:
    """One chunk per heading's own text (before the next heading of any level), keeping the heading
    path; sections over 250 words are split on paragraphs into parts with the same section."""
    meta, body = _front_matter(text)
    seeds = meta.get("seeds")
    seed = (",".join(map(str, seeds)) if isinstance(seeds, list) else str(seeds or "")) or None
    title = str(meta.get("title") or Path(source).stem)
    stack: list[tuple[int, str]] = []
    blocks: list[tuple[list[tuple[int, str]], list[str]]] = [([], [])]
    fenced = False
    for line in body.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        m = None if fenced else _HEADING.match(line)
        if m:
            level = len(m.group(1))
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, m.group(2).strip()))
            blocks.append((list(stack), []))
        else:
            blocks[-1][1].append(line)
    chunks = []
    for path, lines in blocks:
        content = "\n".join(lines).strip()
        if not content:
            continue
        names = [h for _, h in path]
        if not path or path[0][0] != 1:
            names = [title] + names
        section, heading_path = names[-1], " > ".join(names)
        pars = _paragraphs(content)
        parts = ([content] if _words(content) <= MD_MAX_WORDS else
                 _pack(pars, math.ceil(_words(content) / math.ceil(_words(content) / MD_PART_WORDS)),
                       MD_MAX_WORDS))
        chunks += [Chunk(p, source, section, heading_path, seed) for p in parts]
    return chunks


def _label(window: str) -> str | None:
    """A heading-like line of a text window (short, mostly letters, no sentence end), if any."""
    for line in window.splitlines():
        s = line.strip().lstrip("#").strip().strip("*_").strip()
        if (3 <= len(s) <= 80 and _words(s) <= 10 and s[-1] not in ".,;:" and "$" not in s
                and not s.startswith(("-", "▶", "•", "|", "(")) and "\t" not in s
                and sum(c.isalpha() for c in s) >= 0.6 * len(s)):
            return s
    return None


def chunk_text(text: str, source: str, title: str | None = None) -> list[Chunk]:
    """Plain text (or PDF text) in ~150-250-word windows of whole paragraphs; the section is the
    window's first heading-like line, else "part N" (made unique within the file)."""
    title = title or Path(source).name
    chunks, seen = [], set()
    for n, window in enumerate(_pack(_paragraphs(text), WIN_LO, WIN_HI), start=1):
        label = _label(window) or f"part {n}"
        if label in seen:
            label = f"{label} (part {n})"
        seen.add(label)
        chunks.append(Chunk(window, source, label, f"{title} > {label}"))
    return chunks


def pdf_text(data: bytes) -> str:
    """The text of a PDF, pages separated by blank lines."""
    import io

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)


def chunk_file(source: str, data: bytes) -> list[Chunk]:
    """Chunks of one source file (Markdown with headings, Markdown without, text, PDF)."""
    suffix = Path(source).suffix.lower()
    if suffix == ".pdf":
        return chunk_text(pdf_text(data), source)
    text = data.decode("utf-8-sig").replace("\r\n", "\n")
    if suffix in (".md", ".markdown") and re.search(r"^#{1,6}\s+\S", text, flags=re.M):
        return chunk_markdown(text, source)
    return chunk_text(text, source)

