"""Lecture retrieval: index build time, warm query latency, and recall@3 / MRR on the question set
``tests/assistant/retrieval_eval.json`` for hybrid (BM25 + dense, RRF), dense-only and BM25-only."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import Row, best_of

AREA = "tools.retrieval"
EVAL_SET = Path(__file__).resolve().parents[1] / "tests" / "assistant" / "retrieval_eval.json"


def rows() -> list[Row]:
    from tools import embedding, retrieval

    out: list[Row] = []
    t0 = time.perf_counter()
    embedding.get_model()
    out.append(Row(AREA, "embedding model load (incl. sentence-transformers import)",
                   time.perf_counter() - t0, "s", note="once per process"))
    questions = json.loads(EVAL_SET.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        info = retrieval.ensure_index(home)
        out.append(Row(AREA, f"index build, corpus/ ({info.n_sources} files, {info.n_chunks} chunks)",
                       info.seconds, "s", "< 60 s", info.seconds < 60,
                       "embed + chroma + files, model already loaded"))
        rebuilt = retrieval.ensure_index(home, rebuild=True)
        out.append(Row(AREA, "index rebuild reusing stored embeddings", rebuilt.seconds, "s",
                       note="what a changed file or add_files costs, plus its new chunks"))
        out.append(Row(AREA, "ensure_index when up to date (hash check)",
                       best_of(lambda: retrieval.ensure_index(home)) * 1000, "ms"))

        retrieval.search("warm up", home=home)
        for mode in retrieval.MODES:
            lat = []
            for q in questions:
                t = time.perf_counter()
                retrieval.search(q["question"], k=4, home=home, mode=mode)
                lat.append(1000 * (time.perf_counter() - t))
            goal = "< 50 ms" if mode == "hybrid" else ""
            med = statistics.median(lat)
            out.append(Row(AREA, f"warm query latency, {mode}, median", med, "ms", goal,
                           med < 50 if goal else None,
                           f"p90 {sorted(lat)[int(0.9 * (len(lat) - 1))]:.1f} ms over {len(lat)} queries"))

        results = {m: retrieval.evaluate(questions, home=home, mode=m) for m in retrieval.MODES}
        best_single = max(results["dense"]["recall_at_3"], results["bm25"]["recall_at_3"])
        for mode, r in results.items():
            note = f"{r['n']} questions, {len(r['misses'])} misses"
            if mode == "hybrid":
                note += (f"; vs dense {r['recall_at_3'] - results['dense']['recall_at_3']:+.3f}, "
                         f"vs bm25 {r['recall_at_3'] - results['bm25']['recall_at_3']:+.3f}")
            out.append(Row(AREA, f"recall@3, {mode}", r["recall_at_3"], "fraction",
                           ">= 0.9" if mode == "hybrid" else "",
                           r["recall_at_3"] >= 0.9 if mode == "hybrid" else None, note))
            out.append(Row(AREA, f"MRR@10, {mode}", r["mrr"], "",
                           ">= best single mode" if mode == "hybrid" else "",
                           (r["mrr"] >= max(results["dense"]["mrr"], results["bm25"]["mrr"]))
                           if mode == "hybrid" else None))
        out.append(Row(AREA, "hybrid recall@3 minus best single mode",
                       results["hybrid"]["recall_at_3"] - best_single, "fraction", ">= 0",
                       results["hybrid"]["recall_at_3"] >= best_single))
        retrieval.close_index(home)
    return out


if __name__ == "__main__":
    from benchmarks import markdown_table

    print(markdown_table(rows()))
