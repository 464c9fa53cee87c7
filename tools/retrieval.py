"""Lecture retrieval: section-aware chunks, BM25 + dense (chromadb) search fused by reciprocal rank.

Layout under ``DALAB_HOME/index/``::

    CURRENT              name of the version folder that serves queries (replaced atomically)
    user_docs/           the user's own lecture files (added with ``add_files``)
    v-<time>-<hash>/     one complete index: chroma/ (PersistentClient), chunks.json (texts and
                         metadata, also the BM25 data), embeddings.npy, manifest.json

A build writes a fresh version folder, and only when it is complete does ``CURRENT`` move to it
(``os.replace``); then older versions are deleted. A failure or crash mid-build leaves the previous
index serving. The index is rebuilt when the content hash (file names and bytes of ``corpus/`` and
``user_docs/``, the chunking version and the model name) changes; unchanged chunks reuse their
stored embeddings.

Chunking, the tokenizer and BM25 live in ``tools.chunking``; this module keeps the index and
the search.

Public API (used by the CLI, the ``search_lectures`` tool, the agent and the UI): ``ensure_index``,
``add_files``, ``search``, ``corpus_dir``, ``Passage``, ``IndexInfo``, ``IngestError``
(``RetrievalError`` for bad search arguments; ``evaluate`` and ``close_index`` for tests and
benchmarks).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict

from tools import embedding
from tools.chunking import BM25, CHUNKING_VERSION, Chunk, chunk_file, pdf_text, tokenize
from tools.chunking import MD_MAX_WORDS, chunk_markdown, chunk_text  # noqa: F401 (re-exported)
from tools.settings import get_settings

COLLECTION = "lectures"
MODES = ("hybrid", "dense", "bm25")
ALLOWED = {".md": "Markdown", ".markdown": "Markdown", ".txt": "text", ".pdf": "PDF"}
ALLOWED_TEXT = ("allowed: non-empty UTF-8 text or Markdown files (.txt, .md, .markdown) and PDFs "
                "with extractable text (.pdf)")
MAX_FILE_BYTES = 50 * 2**20
MAX_NEW_PASSAGES = 1500
"""passages one call of ``add_files`` may add: embedding runs at 40–80 passages/s on the class
machine, so an upload is indexed in well under a minute"""
MAX_NAME = 100                           # characters of a stored upload's name
UPLOADS = "uploads.json"                 # who added which user file (index/uploads.json)
Progress = Callable[[float, str], None]
RRF_K = 60                               # reciprocal rank fusion constant
CANDIDATES = 40                          # candidates taken from each ranker before fusion


class IngestError(ValueError):
    """A user file that cannot be added; the message names the file, the reason and what is allowed."""


class RetrievalError(ValueError):
    """Bad search arguments; the message says what is allowed."""


class Passage(BaseModel):
    """A retrieved lecture passage; cite it as ``[<source> § <section>]``."""

    model_config = ConfigDict(frozen=True)

    text: str
    source: str          # "corpus/<file>.md" or "user/<filename>"
    section: str         # the deepest heading's text (or a label for plain-text windows)
    score: float         # hybrid: RRF normalised to 1 = first in both rankers; dense: cosine; bm25: BM25
    heading_path: str    # "Title > Section > Sub"
    seed: str | None = None   # the front-matter seeds of the source file, comma-separated

    @property
    def citation(self) -> str:
        return f"[{self.source} § {self.section}]"

    def to_dict(self) -> dict:
        return self.model_dump()


class IndexInfo(BaseModel):
    """What ``ensure_index`` / ``add_files`` found or built."""

    path: Path              # the version folder serving queries
    content_hash: str
    chunking_version: str
    n_chunks: int
    n_sources: int
    n_user_files: int
    built: bool             # False: the index was up to date
    seconds: float          # time taken by this call
    added: list[str] = []   # add_files: the names the files were stored under (user/<name>)

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")


# ----------------------------------------------------------------------------- index on disk

def corpus_dir() -> Path:
    """The repository's lecture notes folder, ``corpus/`` next to the ``assistant`` package."""
    return Path(__file__).resolve().parents[1] / "corpus"


def _root(home: Path | str | None) -> Path:
    return Path(home if home is not None else get_settings().home).expanduser().resolve() / "index"


def _collect(cdir: Path, user_dir: Path) -> dict[str, bytes]:
    """Source name -> bytes for every corpus Markdown file and every user file."""
    docs = {}
    if cdir.is_dir():
        for p in sorted(cdir.rglob("*.md")):
            if p.is_file():
                docs["corpus/" + p.relative_to(cdir).as_posix()] = p.read_bytes()
    if user_dir.is_dir():
        for p in sorted(user_dir.iterdir()):
            if p.is_file() and not p.name.startswith("."):
                docs[f"user/{p.name}"] = p.read_bytes()
    return docs


def _content_hash(docs: dict[str, bytes]) -> str:
    h = hashlib.sha256(f"chunking {CHUNKING_VERSION}; model {embedding.MODEL_NAME}\n".encode())
    for name in sorted(docs):
        h.update(name.encode() + b"\0" + hashlib.sha256(docs[name]).digest())
    return h.hexdigest()


def _write_atomic(path: Path, data: bytes | str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_current(root: Path) -> str | None:
    try:
        return (root / "CURRENT").read_text().strip() or None
    except OSError:
        return None


def _current(root: Path) -> tuple[Path, dict] | None:
    """The serving version folder and its manifest, or None if there is no complete index."""
    name = _read_current(root)
    try:
        return root / name, json.loads((root / name / "manifest.json").read_text())
    except (OSError, ValueError, TypeError):
        return None


@contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    """One build at a time per index, across threads and processes."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as f:
        try:
            import fcntl

            fcntl.flock(f, fcntl.LOCK_EX)
        except ImportError:  # not POSIX: no cross-process lock
            pass
        yield


def _client(vdir: Path):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.PersistentClient(path=str(vdir / "chroma"),
                                     settings=ChromaSettings(anonymized_telemetry=False))


def _key(c: Chunk) -> str:
    return hashlib.sha1(c.indexed_text.encode()).hexdigest()


def _stored_vectors(root: Path) -> dict[str, np.ndarray]:
    """Embeddings of the serving index by chunk text, reused by the next build."""
    cur = _current(root)
    try:
        records = json.loads((cur[0] / "chunks.json").read_text())
        vecs = np.load(cur[0] / "embeddings.npy")
    except (OSError, ValueError, TypeError):
        return {}
    return {_key(Chunk(**r)): v for r, v in zip(records, vecs)} if len(records) == len(vecs) else {}


def _embed(chunks: list[Chunk], known: dict[str, np.ndarray], progress: Progress | None = None,
           batch: int = 64) -> np.ndarray:
    keys = [_key(c) for c in chunks]
    todo = [i for i, k in enumerate(keys) if k not in known]
    texts = [chunks[i].indexed_text for i in todo]
    parts = []
    for s in range(0, len(texts), batch):
        if progress is not None:
            progress(s / max(len(texts), 1), f"embedding passages {s}/{len(texts)}")
        parts.append(embedding.encode(texts[s:s + batch]))
    fresh = np.concatenate(parts) if parts else np.zeros((0, embedding.DIM), dtype=np.float32)
    vecs = np.zeros((len(chunks), embedding.DIM), dtype=np.float32)
    for i, k in enumerate(keys):
        if k in known:
            vecs[i] = known[k]
    vecs[todo] = fresh
    return vecs


def _fill_collection(coll, chunks: list[Chunk], vecs: np.ndarray, batch: int = 500) -> None:
    for s in range(0, len(chunks), batch):
        part = chunks[s:s + batch]
        coll.add(ids=[f"c{i:05d}" for i in range(s, s + len(part))],
                 embeddings=vecs[s:s + len(part)], documents=[c.indexed_text for c in part],
                 metadatas=[{"source": c.source, "section": c.section,
                             "heading_path": c.heading_path, "seed": c.seed or ""} for c in part])


def _build(root: Path, docs: dict[str, bytes], digest: str, cdir: Path,
           before_swap=None, progress: Progress | None = None) -> tuple[Path, dict]:
    """Build a complete index in a fresh version folder, then point CURRENT at it (call under the
    build lock). On any failure the new folder is removed and CURRENT is untouched."""
    t0 = time.perf_counter()
    chunks = [c for name, data in docs.items() for c in chunk_file(name, data)]
    if not chunks:
        raise RetrievalError(f"no lecture text to index: {cdir} has no Markdown files and no user "
                             "files were added")
    vdir = root / f"v-{time.strftime('%Y%m%d-%H%M%S')}-{digest[:8]}-{uuid.uuid4().hex[:4]}"
    vdir.mkdir(parents=True)
    client = None
    try:
        vecs = _embed(chunks, _stored_vectors(root), progress)
        client = _client(vdir)
        coll = client.create_collection(COLLECTION, embedding_function=embedding.LectureEmbedding(),
                                        configuration={"hnsw": {"space": "cosine"}})
        _fill_collection(coll, chunks, vecs)
        np.save(vdir / "embeddings.npy", vecs)
        _write_atomic(vdir / "chunks.json", json.dumps([asdict(c) for c in chunks], ensure_ascii=False))
        manifest = {"content_hash": digest, "chunking_version": CHUNKING_VERSION,
                    "model": embedding.MODEL_NAME, "n_chunks": len(chunks), "n_sources": len(docs),
                    "n_user_files": sum(n.startswith("user/") for n in docs), "corpus_dir": str(cdir),
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "build_seconds": round(time.perf_counter() - t0, 3)}
        _write_atomic(vdir / "manifest.json", json.dumps(manifest, indent=1))
        client.close()
        client = None
        if before_swap is not None:
            before_swap()
        _write_atomic(root / "CURRENT", vdir.name)
    except BaseException:
        if client is not None:
            client.close()
        shutil.rmtree(vdir, ignore_errors=True)
        raise
    _forget(root)
    for old in root.glob("v-*"):   # the previous version and any left by a crashed build
        if old != vdir:
            shutil.rmtree(old, ignore_errors=True)
    return vdir, manifest


def _info(cur: tuple[Path, dict], built: bool, t0: float) -> IndexInfo:
    path, m = cur
    return IndexInfo(path=path, content_hash=m["content_hash"], chunking_version=m["chunking_version"],
                     n_chunks=m["n_chunks"], n_sources=m["n_sources"], n_user_files=m["n_user_files"],
                     built=built, seconds=round(time.perf_counter() - t0, 3))


def ensure_index(home: Path | None = None, corpus_dir: Path | None = None,
                 rebuild: bool = False) -> IndexInfo:
    """Build the lecture index under ``DALAB_HOME/index`` if it is missing or stale (or always, with
    ``rebuild``); otherwise return at once. The corpus defaults to the repository's ``corpus/``."""
    t0 = time.perf_counter()
    root = _root(home)
    cdir = Path(corpus_dir).expanduser().resolve() if corpus_dir is not None else _default_corpus()
    with _build_lock(root):
        docs = _collect(cdir, root / "user_docs")
        digest = _content_hash(docs)
        cur = _current(root)
        if cur is not None and not rebuild and cur[1]["content_hash"] == digest:
            return _info(cur, False, t0)
        return _info(_build(root, docs, digest, cdir), True, t0)


_default_corpus = corpus_dir


# ----------------------------------------------------------------------------- user files

def safe_name(name: str) -> str:
    """A stored upload's name: the last path component only, no leading dots (no hidden files),
    letters, digits, ``.``, ``-``, ``_`` and spaces only, at most ``MAX_NAME`` characters."""
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    clean = lambda text: re.sub(r"[^\w.\- ]+", "_", text).strip(" ._-")  # noqa: E731
    stem, suffix = clean(stem)[:MAX_NAME - 12] or "upload", clean(suffix)[:10]
    return f"{stem}.{suffix.lower()}" if suffix else stem


def _check_user_file(p: Path) -> bytes:
    """The bytes of a user file, or an IngestError naming the file and the reason."""
    def refuse(reason: str) -> IngestError:
        return IngestError(f"{p}: {reason}")

    if not p.exists():
        raise refuse("file not found")
    if not p.is_file():
        raise refuse("not a regular file")
    kind = ALLOWED.get(p.suffix.lower())
    if kind is None:
        raise refuse(f"unsupported file type {p.suffix or '(no extension)'!r}")
    try:
        size = p.stat().st_size              # before reading: a huge file is never read whole
    except OSError as e:
        raise refuse(f"cannot be read ({e.strerror or e})") from None
    if size > MAX_FILE_BYTES:
        raise refuse(f"too large ({size / 2**20:.0f} MiB; at most {MAX_FILE_BYTES // 2**20} MiB)")
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise refuse(f"cannot be read ({e.strerror or e})") from None
    if len(data) > MAX_FILE_BYTES:
        raise refuse(f"too large (more than {MAX_FILE_BYTES // 2**20} MiB)")
    if not data.strip():
        raise refuse("the file is empty")
    if kind == "PDF":
        if not data.startswith(b"%PDF-"):
            raise refuse("not a PDF file (no %PDF header)")
        try:
            text = pdf_text(data)
        except Exception as e:  # pypdf raises many types on damaged files
            raise refuse(f"could not be read as a PDF ({type(e).__name__}: {str(e)[:120]})") from None
        if not text.strip():
            raise refuse("the PDF has no extractable text (a scanned PDF without a text layer?)")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise refuse("binary content or not UTF-8 text") from None
        controls = sum(ord(c) < 32 and c not in "\n\r\t\f" for c in text)
        if "\0" in text or controls > 0.01 * len(text):
            raise refuse("binary content, not text")
        if not text.strip():
            raise refuse("the file is empty")
    if not chunk_file(f"user/{safe_name(p.name)}", data):
        raise refuse("no text to index")
    return data


def _owners(root: Path) -> dict[str, str]:
    try:
        data = json.loads((root / UPLOADS).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _beside(name: str, taken: set[str]) -> str:
    """``name``, or ``<stem>-2<suffix>``, ``-3``… when a different file already has it."""
    if name not in taken:
        return name
    stem, dot, suffix = name.rpartition(".")
    stem, suffix = (stem, dot + suffix) if dot else (name, "")
    k = 2
    while f"{stem}-{k}{suffix}" in taken:
        k += 1
    return f"{stem}-{k}{suffix}"


def add_files(paths: list[Path], home: Path | None = None, owner: str | None = None,
              progress: Progress | None = None) -> IndexInfo:
    """Add the user's own lecture files (PDF, Markdown, text) to the index as ``user/<name>``.

    Every file is checked first; if any is missing, unreadable, empty, binary or of another type,
    or the files would add more than ``MAX_NEW_PASSAGES`` passages, an ``IngestError`` lists them
    all and nothing changes. Otherwise the files are copied under ``DALAB_HOME/index/user_docs/``
    under a safe name (:func:`safe_name`); a file with the same name and other content is kept
    beside it as ``<stem>-2<suffix>`` (never replaced). ``owner`` (a UI session, or None for the
    command line) is recorded so that only its owner removes it (:func:`remove_file`). The index
    is rebuilt aside (``progress`` reports the embedding) and swapped in; ``IndexInfo.added``
    names the stored files.
    """
    t0 = time.perf_counter()
    root = _root(home)
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not paths:
        raise IngestError(f"no files given; {ALLOWED_TEXT}")
    staged: list[tuple[str, bytes]] = []
    problems = []
    for p in paths:
        try:
            data = _check_user_file(p)
            if any(safe_name(p.name) == name for name, _ in staged):
                raise IngestError(f"{p}: another file named {safe_name(p.name)!r} is in the same call")
            staged.append((safe_name(p.name), data))
        except IngestError as e:
            problems.append(str(e))
    if problems:
        raise IngestError(f"cannot add {'; '.join(problems)}. Nothing was added and the index is "
                          f"unchanged; {ALLOWED_TEXT}.")
    n_new = sum(len(chunk_file(f"user/{name}", data)) for name, data in staged)
    if n_new > MAX_NEW_PASSAGES:
        raise IngestError(f"cannot add {', '.join(p.name for p in paths)}: {n_new} passages to index (at most "
                          f"{MAX_NEW_PASSAGES} per upload, which take about a minute to embed). Nothing was added "
                          "and the index is unchanged; split the file or upload only the relevant chapters.")
    user_dir = root / "user_docs"

    with _build_lock(root):
        existing = {p.name: p for p in user_dir.iterdir() if p.is_file()} if user_dir.is_dir() else {}
        named: dict[str, bytes] = {}
        for name, data in staged:
            same = name in existing and existing[name].read_bytes() == data   # the very same file again
            final = name if same else _beside(name, set(existing) | set(named))
            named[final] = data

        def copy_in() -> None:
            user_dir.mkdir(parents=True, exist_ok=True)
            owners = _owners(root)
            for final, data in named.items():
                _write_atomic(user_dir / final, data)
                owners.setdefault(final, owner or "")
            _write_atomic(root / UPLOADS, json.dumps(owners, indent=1))

        cur = _current(root)
        cdir = Path(cur[1]["corpus_dir"]) if cur else _default_corpus()
        cdir = cdir if cdir.is_dir() else _default_corpus()
        docs = {**_collect(cdir, user_dir), **{f"user/{n}": d for n, d in named.items()}}
        digest = _content_hash(docs)
        added = list(named)
        if cur is not None and cur[1]["content_hash"] == digest:
            return _info(cur, False, t0).model_copy(update={"added": added})
        return _info(_build(root, docs, digest, cdir, before_swap=copy_in, progress=progress), True,
                     t0).model_copy(update={"added": added})


def user_files(home: Path | None = None, owner: str | None = None) -> list[str]:
    """The stored user files (``owner`` given: only those it added)."""
    root = _root(home)
    user_dir = root / "user_docs"
    names = sorted(p.name for p in user_dir.iterdir() if p.is_file() and not p.name.startswith(".")) \
        if user_dir.is_dir() else []
    if owner is None:
        return names
    owners = _owners(root)
    return [n for n in names if owners.get(n) == owner]


def remove_file(name: str, home: Path | None = None, owner: str | None = None) -> IndexInfo:
    """Remove the user file ``name`` from the index (``owner`` given: only a file it added; the
    command line, ``owner=None``, may remove any). The index is rebuilt aside and swapped in."""
    t0 = time.perf_counter()
    root = _root(home)
    user_dir = root / "user_docs"
    with _build_lock(root):
        owners = _owners(root)
        target = user_dir / str(name)
        if (str(name) != safe_name(str(name)) or not target.is_file()
                or (owner is not None and owners.get(str(name)) != owner)):
            mine = user_files(home, owner)
            raise IngestError(f"no lecture file called {str(name)[:80]!r} that you added; "
                              + (f"yours: {', '.join(mine)}" if mine else "you have not added any"))

        def delete() -> None:
            target.unlink()
            owners.pop(str(name), None)
            _write_atomic(root / UPLOADS, json.dumps(owners, indent=1))

        cur = _current(root)
        cdir = Path(cur[1]["corpus_dir"]) if cur else _default_corpus()
        cdir = cdir if cdir.is_dir() else _default_corpus()
        docs = {k: v for k, v in _collect(cdir, user_dir).items() if k != f"user/{name}"}
        return _info(_build(root, docs, _content_hash(docs), cdir, before_swap=delete), True, t0)


# ----------------------------------------------------------------------------- search

@dataclass
class _Index:
    version: str
    client: object
    collection: object
    chunks: list[Chunk]
    bm25: BM25
    lock: threading.Lock = field(default_factory=threading.Lock)


_OPEN: dict[Path, _Index] = {}
_OPEN_LOCK = threading.RLock()


def _forget(root: Path) -> None:
    with _OPEN_LOCK:
        idx = _OPEN.pop(root, None)
    if idx is not None:
        with idx.lock:   # not while another thread is querying it
            idx.client.close()


def close_index(home: Path | None = None) -> None:
    """Release this process's open handle on the index of ``home`` (it reopens on the next search)."""
    _forget(_root(home))


def _open(root: Path) -> _Index:
    """The serving index of ``root``, opened once per process (reopened when CURRENT moves)."""
    with _OPEN_LOCK:
        idx = _OPEN.get(root)
        if idx is not None and idx.version == _read_current(root):
            return idx
    if _current(root) is None:   # build outside _OPEN_LOCK: a build takes it to drop the cache
        ensure_index(root.parent)
    with _OPEN_LOCK:
        idx = _OPEN.get(root)
        if idx is not None and idx.version == _read_current(root):
            return idx   # opened by another thread meanwhile
        _forget(root)
        path, _ = _current(root)
        chunks = [Chunk(**r) for r in json.loads((path / "chunks.json").read_text())]
        client = _client(path)
        coll = client.get_collection(COLLECTION, embedding_function=embedding.LectureEmbedding())
        idx = _Index(path.name, client, coll, chunks, BM25([tokenize(c.bm25_text) for c in chunks]))
        _OPEN[root] = idx
        return idx


def _rrf(rankings: list[list[tuple[int, float]]]) -> list[tuple[int, float]]:
    """Reciprocal rank fusion, scaled so that 1.0 means first in every ranking."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (i, _) in enumerate(ranking, start=1):
            fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank)
    best = len(rankings) / (RRF_K + 1)
    return sorted(((i, s / best) for i, s in fused.items()), key=lambda t: -t[1])


def _search(idx: _Index, query: str, k: int, mode: str) -> list[Passage]:
    n = min(max(CANDIDATES, 4 * k), len(idx.chunks))
    rankings = []
    if mode != "bm25":
        vec = embedding.encode_query(query)
        with idx.lock:
            res = idx.collection.query(query_embeddings=[vec.tolist()], n_results=n,
                                       include=["distances"])
        rankings.append([(int(i[1:]), 1.0 - d) for i, d in zip(res["ids"][0], res["distances"][0])])
    if mode != "dense":
        rankings.append(idx.bm25.top(tokenize(query), n))
    ranked = _rrf(rankings) if mode == "hybrid" else rankings[0]
    passages, seen = [], set()
    for i, score in ranked:   # best chunk per section, so k passages cover k sections
        c = idx.chunks[i]
        if (c.source, c.heading_path) not in seen:
            seen.add((c.source, c.heading_path))
            passages.append(Passage(text=c.text, source=c.source, section=c.section,
                                    score=round(float(score), 4), heading_path=c.heading_path,
                                    seed=c.seed))
        if len(passages) == k:
            break
    return passages


def search(query: str, k: int = 4, home: Path | None = None, mode: str = "hybrid") -> list[Passage]:
    """The ``k`` best lecture passages for ``query`` (at most one per section), best first.

    ``mode`` is ``"hybrid"`` (BM25 and dense fused by reciprocal rank, the default), ``"dense"`` or
    ``"bm25"``. Builds the index first if there is none.
    """
    if not isinstance(query, str) or not query.strip():
        raise RetrievalError("query must be a non-empty string, e.g. 'why do we normalise per channel?'")
    if len(query) > 2000:
        raise RetrievalError(f"query is too long ({len(query)} characters; at most 2000)")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 20:
        raise RetrievalError(f"k must be an integer from 1 to 20, got {k!r}")
    if mode not in MODES:
        raise RetrievalError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    root = _root(home)
    idx = _open(root)
    try:
        return _search(idx, query.strip(), k, mode)
    except Exception:
        if _read_current(root) == idx.version:
            raise
        return _search(_open(root), query.strip(), k, mode)   # rebuilt by another process meanwhile


# ----------------------------------------------------------------------------- evaluation

def _hit(p: Passage, answer: dict) -> bool:
    sections = p.heading_path.split(" > ")[1:] + [p.section]
    return p.source == answer["source"] and answer["section"] in sections


def evaluate(questions: list[dict], home: Path | None = None, mode: str = "hybrid",
             k: int = 3, depth: int = 10) -> dict:
    """Recall@k and MRR (over the top ``depth``) of ``search`` on ``questions`` (items with
    ``question`` and ``answers: [{source, section}]``); a passage in a sub-section of an answer's
    section counts as a hit. Also returns the misses (not in the top k) with what came instead."""
    hits, rr, misses = 0, 0.0, []
    for q in questions:
        got = search(q["question"], k=depth, home=home, mode=mode)
        rank = next((r for r, p in enumerate(got, 1) if any(_hit(p, a) for a in q["answers"])), None)
        hits += rank is not None and rank <= k
        rr += 1.0 / rank if rank else 0.0
        if rank is None or rank > k:
            misses.append({"question": q["question"], "rank": rank, "expected": q["answers"],
                           "got": [p.citation for p in got[:k]]})
    n = max(len(questions), 1)
    return {"mode": mode, "n": len(questions), f"recall_at_{k}": hits / n, "mrr": rr / n,
            "misses": misses}
