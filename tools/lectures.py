"""The lecture search tool: passages from the lecture index, with citations."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tools.base import Example, RunContext, ToolArgs, ToolSpec, flat_cost


class SearchArgs(ToolArgs):
    query: str = Field(min_length=2, max_length=500, description="what to look up in the lecture notes")
    k: int = Field(4, ge=1, le=20, description="number of passages to return")


def search_lectures(args: SearchArgs, ctx: RunContext) -> tuple[str, dict[str, Any]]:
    """Search the lecture notes (the lab, ORIGEN, DA basics, the course's talks and schedule)
    and return the most relevant passages, each with its citation [source § section].

    Use it for every concept question ("why do we normalise per channel?", "what is the
    covariance update?", "what is on day 3?") and to explain the numbers another tool
    returned. Answer from the passages and cite them; say so when nothing relevant is found.
    """
    # chromadb, BM25 and the embedding model are imported here so that the numeric tools never load them.
    from tools.retrieval import search  # noqa: PLC0415

    passages = search(args.query, k=args.k)
    ctx.passages.extend(p.to_dict() | {"citation": p.citation} for p in passages)
    if not passages:
        return f"No lecture passage matches {args.query!r}.", {"n_passages": 0}
    body = "\n\n".join(f"{p.citation} (score {p.score:.2f})\n{p.text}" for p in passages)
    summary = f"{len(passages)} lecture passages for {args.query!r}:\n\n{body}"
    return summary, {"n_passages": len(passages), "top_score": float(passages[0].score),
                     "top_source": passages[0].source, "top_section": passages[0].section}


TOOLS = (
    ToolSpec(
        "search_lectures", search_lectures, SearchArgs, records=False, cost=flat_cost(256, 5.0),
        keywords=((7, r"search (?:the )?(?:lectures?|notes|slides)|look up|lecture notes say"),),
        examples=(Example("search the lecture notes for the covariance update", {"query": "covariance update"}),),
    ),
)
