"""Lecture retrieval: chunking, BM25, the versioned index (rebuild, crash safety), user files, and
the retrieval quality on the question set ``retrieval_eval.json``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tools import retrieval
from tools.retrieval import (BM25, IngestError, Passage, add_files, chunk_markdown, chunk_text,
                                 ensure_index, search, tokenize)

CORPUS = retrieval.corpus_dir()
#: The course's seed material: the repo sits at .../main next to .../shared (also in CI).
SEEDS_DIR = Path(__file__).resolve().parents[3] / "shared" / "seeds"
#: Questions with the lecture sections that answer them.
EVAL_SET = Path(__file__).resolve().parent / "retrieval_eval.json"


def _current(home: Path) -> str:
    return (home / "index" / "CURRENT").read_text()


def _versions(home: Path) -> list[str]:
    return sorted(p.name for p in (home / "index").glob("v-*"))


# ----------------------------------------------------------------------------- tokenizer, BM25

def test_tokenizer_keeps_lecture_terms_and_lowercases():
    toks = tokenize("3D-Var with σ_o = 0.2, RK4 on L63; Normalisation per CHANNEL")
    for term in ("3d-var", "3dvar", "sigma_o", "0.2", "rk4", "lorenz63", "channel"):
        assert term in toks
    assert "with" not in toks and "on" not in toks                    # stop words
    assert set(tokenize("3DVar")) & set(tokenize("3D-Var"))            # spelling variants meet
    assert set(tokenize("sigma_o")) <= set(tokenize("σ_o"))
    assert tokenize("normalise") == tokenize("normalisation") == tokenize("normalization")


def test_bm25_ranks_the_exact_term_document_first():
    docs = ["The ensemble Kalman filter updates members with a gain.",
            "RK4 evaluates the tendency four times per time step.",
            "The time step and the grid spacing set the CFL number."]
    bm25 = BM25([tokenize(d) for d in docs])
    top = bm25.top(tokenize("RK4"), 3)
    assert [i for i, _ in top] == [1]                                   # only doc 1 has the term
    ranked = [i for i, _ in bm25.top(tokenize("time step of RK4"), 3)]
    assert ranked[0] == 1 and set(ranked) == {1, 2}
    assert bm25.scores(tokenize("zebrafish")).sum() == 0


# ----------------------------------------------------------------------------- chunking

LONG = "\n\n".join(f"Paragraph {i} " + "about covariance inflation and localisation " * 12
                   for i in range(10))
DOC = f"""---
title: Test lecture
seeds: [001_abc, 002_def]
---
# Test lecture

Intro text under the title.

## Short section

Tiny.

```python
# a comment, not a heading
x = 1
```

### Sub part

The sub-section text.

## Long section

{LONG}
"""


def test_chunk_markdown_keeps_heading_paths_and_splits_long_sections():
    chunks = chunk_markdown(DOC, "corpus/test.md")
    by_section = {}
    for c in chunks:
        by_section.setdefault(c.section, []).append(c)
        assert c.source == "corpus/test.md" and c.seed == "001_abc,002_def"
    assert set(by_section) == {"Test lecture", "Short section", "Sub part", "Long section"}
    assert by_section["Sub part"][0].heading_path == "Test lecture > Short section > Sub part"
    short = by_section["Short section"]
    assert len(short) == 1 and "# a comment, not a heading" in short[0].text   # kept whole
    long_parts = by_section["Long section"]
    assert len(long_parts) >= 3
    assert all(c.heading_path == "Test lecture > Long section" for c in long_parts)
    assert all(len(c.text.split()) <= retrieval.MD_MAX_WORDS for c in long_parts)
    assert " ".join(c.text for c in long_parts).split() == LONG.split()          # nothing lost
    assert all(c.indexed_text.startswith(c.heading_path) for c in chunks)


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.md")), ids=lambda p: p.name)
def test_corpus_files_chunk_into_unique_cited_sections(path):
    text = path.read_text()
    chunks = retrieval.chunk_file(f"corpus/{path.name}", path.read_bytes())
    assert chunks, f"{path.name} gives no chunks"
    headings = [m.group(2).strip() for m in re.finditer(r"^(#{1,6})\s+(.+?)\s*$", text, re.M)]
    paths = {}
    for c in chunks:
        assert c.source == f"corpus/{path.name}" and c.seed != ""
        assert c.section in headings
        assert c.heading_path.endswith(c.section) and c.heading_path.startswith(headings[0])
        paths.setdefault(c.section, set()).add(c.heading_path)
    assert all(len(p) == 1 for p in paths.values()), f"a section name repeats: {paths}"


def test_long_section_tail_is_merged_not_left_tiny():
    body = "\n\n".join([" ".join(["alpha"] * 200), " ".join(["beta"] * 200), "Short tail."])
    chunks = chunk_markdown(f"# T\n\n## S\n\n{body}\n", "corpus/t.md")
    assert len(chunks) == 2 and chunks[-1].text.endswith("Short tail.")
    assert " ".join(c.text for c in chunks).split() == body.split()


def test_chunk_text_makes_word_windows_with_unique_labels():
    pars = [f"Heading {i // 3}\n" + " ".join(["word"] * 60) + "." for i in range(12)]
    chunks = chunk_text("\n\n".join(pars), "user/notes.txt")
    sizes = [len(c.text.split()) for c in chunks]
    assert all(150 <= n <= 250 for n in sizes[:-1]) and sizes[-1] <= 250
    labels = [c.section for c in chunks]
    assert len(set(labels)) == len(labels) and labels[0] == "Heading 0"
    assert all(c.heading_path == f"notes.txt > {c.section}" for c in chunks)
    assert [c.section for c in chunk_text("just some words " * 100, "user/x.txt")] == ["part 1", "part 2"]


# ----------------------------------------------------------------------------- search

def test_search_returns_typed_json_serialisable_passages(lecture_env):
    passages = search("How is the RK4 time step computed?", k=4)
    assert 1 <= len(passages) <= 4 and all(isinstance(p, Passage) for p in passages)
    assert len({(p.source, p.section) for p in passages}) == len(passages)
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    p = passages[0]
    assert p.source.startswith("corpus/") and p.citation == f"[{p.source} § {p.section}]"
    assert p.heading_path.endswith(p.section)
    assert json.loads(json.dumps(p.to_dict()))["section"] == p.section
    for mode in ("dense", "bm25"):
        assert search("RK4 time stepping", k=2, mode=mode)


@pytest.mark.parametrize("kwargs, words", [
    ({"query": "", "k": 4}, "non-empty"), ({"query": "   ", "k": 4}, "non-empty"),
    ({"query": "gain", "k": 0}, "1 to 20"), ({"query": "gain", "k": 21}, "1 to 20"),
    ({"query": "gain", "k": 4, "mode": "fuzzy"}, "hybrid, dense, bm25"),
])
def test_search_refuses_bad_arguments(tmp_path, kwargs, words):
    with pytest.raises(ValueError, match=words):
        search(home=tmp_path, **kwargs)
    assert not (tmp_path / "index").exists()                              # refused before any work


# ----------------------------------------------------------------------------- versioned index

def test_index_rebuilds_only_when_the_corpus_changes(tmp_path, mini_corpus):
    home = tmp_path / "home"
    first = ensure_index(home, mini_corpus)
    assert first.built and first.n_sources == 2 and first.n_chunks == 3
    again = ensure_index(home, mini_corpus)
    assert not again.built and again.path == first.path and again.content_hash == first.content_hash
    assert search("scalar Kalman gain", k=1, home=home)[0].section == "Scalar gain"

    (mini_corpus / "rk4.md").write_text((mini_corpus / "rk4.md").read_text()
                                        + "\n## Butcher tableau\n\nThe zebrafish tableau of RK4.\n")
    changed = ensure_index(home, mini_corpus)
    assert changed.built and changed.content_hash != first.content_hash
    assert _versions(home) == [changed.path.name]                       # old version deleted
    top = search("zebrafish tableau", k=1, home=home)[0]                # cached index was replaced
    assert (top.source, top.section) == ("corpus/rk4.md", "Butcher tableau")
    assert ensure_index(home, mini_corpus, rebuild=True).built


def test_failure_mid_build_leaves_the_previous_index_serving(tmp_path, mini_corpus, monkeypatch):
    home = tmp_path / "home"
    ensure_index(home, mini_corpus)
    before = _current(home)
    (mini_corpus / "kalman.md").write_text("# Kalman basics\n\n## Gone\n\nNothing about gains.\n")

    def crash(*args, **kwargs):
        raise RuntimeError("disk full (injected)")

    monkeypatch.setattr(retrieval, "_fill_collection", crash)
    with pytest.raises(RuntimeError, match="injected"):
        ensure_index(home, mini_corpus)
    assert _current(home) == before and _versions(home) == [before]     # half-built folder removed
    top = search("scalar Kalman gain", k=1, home=home)[0]
    assert top.section == "Scalar gain"                                 # old index still answers
    monkeypatch.undo()
    assert ensure_index(home, mini_corpus).built
    assert search("scalar Kalman gain", k=1, home=home)[0].section != "Scalar gain"


# ----------------------------------------------------------------------------- user files

def _seed_only_line(seeds: list[Path]) -> tuple[str, str]:
    """The seed line (10-30 words of 3+ letters) with the most words that appear nowhere in the
    corpus: the corpus is written from the seeds, so a fixed phrase could be copied into it."""
    corpus = set(re.findall(r"\w+", " ".join(p.read_text() for p in CORPUS.glob("*.md")).lower()))
    best, best_new = ("", ""), 1
    for seed in seeds:
        for line in seed.read_text().splitlines():
            words = set(re.findall(r"[^\W\d_]{3,}", line.lower()))
            new = len(words - corpus)
            if 10 <= len(words) <= 30 and not set("$\t") & set(line) and new > best_new:
                best, best_new = (f"user/{seed.name}", line.strip()), new
    assert best_new >= 2, "no seed line has words that the corpus lacks"
    return best


def test_add_files_makes_seed_text_retrievable(lecture_home_copy):
    home = lecture_home_copy
    seeds = sorted(SEEDS_DIR.glob("*.txt"))
    assert len(seeds) >= 5, f"seed files missing under {SEEDS_DIR}"
    info = add_files(seeds, home=home)
    assert info.built and info.n_user_files == len(seeds)
    assert sorted(p.name for p in (home / "index" / "user_docs").iterdir()) == [p.name for p in seeds]
    source, line = _seed_only_line(seeds)
    top = search(line, k=4, home=home, mode="bm25")[0]
    assert top.source == source and line in top.text, (line, top)
    hits = search(line, k=4, home=home)
    assert any(p.source == source and line in p.text for p in hits), (line, hits)
    assert not ensure_index(home).built                                  # user files are in the hash
    assert ensure_index(home, rebuild=True).n_user_files == len(seeds)   # and survive rebuilds


def test_add_files_reads_pdf_text(lecture_home_copy, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    fig.text(0.05, 0.8, "Quasigeostrophic zebrafish inversion")
    fig.text(0.05, 0.7, "The zebrafish experiment assimilates sixteen ensemble members.")
    fig.savefig(tmp_path / "slides.pdf")
    plt.close(fig)
    add_files([tmp_path / "slides.pdf"], home=lecture_home_copy)
    top = search("zebrafish experiment", k=1, home=lecture_home_copy)[0]
    assert top.source == "user/slides.pdf" and "sixteen" in top.text


@pytest.mark.parametrize("name, content, reason", [
    ("empty.txt", b"", "empty"),
    ("blank.md", b"  \n\n ", "empty"),
    ("blob.txt", bytes(range(256)) * 8, "binary"),
    ("program.exe", b"MZ\x90\x00", "unsupported file type '.exe'"),
    ("fake.pdf", b"just text pretending", "not a PDF"),
    ("missing.md", None, "not found"),
])
def test_add_files_refuses_bad_files_and_keeps_the_index(lecture_home_copy, tmp_path, name,
                                                         content, reason):
    home = lecture_home_copy
    bad = tmp_path / name
    if content is not None:
        bad.write_bytes(content)
    good = tmp_path / "good.txt"
    good.write_text("A perfectly fine note about zebrafish covariance.\n")
    before, hits = _current(home), search("zebrafish covariance", k=3, home=home)
    with pytest.raises(IngestError) as err:
        add_files([good, bad], home=home)
    message = str(err.value)
    assert name in message and reason in message and "allowed" in message
    assert "good.txt" not in message
    assert _current(home) == before and _versions(home) == [before]
    assert not (home / "index" / "user_docs").exists()                   # good.txt not added either
    assert search("zebrafish covariance", k=3, home=home) == hits


# ----------------------------------------------------------------------------- quality

def test_eval_set_recall_at_3_and_mrr(lecture_home, capsys):
    questions = json.loads(EVAL_SET.read_text())
    assert len(questions) >= 20
    index = json.loads((retrieval._current(lecture_home / "index")[0] / "chunks.json").read_text())
    known = {(c["source"], c["section"]) for c in index}
    for q in questions:
        for a in q["answers"]:
            assert (a["source"], a["section"]) in known, f"eval answer not in the index: {a}"
    results = {mode: retrieval.evaluate(questions, home=lecture_home, mode=mode)
               for mode in retrieval.MODES}
    with capsys.disabled():
        print("\nretrieval eval (%d questions): " % len(questions) + "; ".join(
            f"{m} recall@3 {r['recall_at_3']:.3f} MRR {r['mrr']:.3f}" for m, r in results.items()))
    hybrid = results["hybrid"]
    assert hybrid["recall_at_3"] >= 0.9, hybrid["misses"]
    assert hybrid["mrr"] >= 0.7, hybrid["misses"]
