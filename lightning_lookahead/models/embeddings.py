"""Frozen sentence embeddings of prompts, cached on disk, for the kNN and cluster baselines (METHOD §9).

The original embeds with sentence-transformers ``all-mpnet-base-v2``; offline the default here is the embedded
MiniLM-L6 (alias ``minilm``), a sentence-transformers directory. Embeddings are mean-pooled and L2-normalised, so the
dot product the kNN router ranks by is the cosine similarity, whichever encoder is used.

Encoding thousands of prompts takes minutes on a CPU, so :class:`CachedEmbedder` keeps each batch of embeddings as one
``.npy`` file named by the encoder's fingerprint and the sha256 of the texts: any change of encoder, weights, length
limit or text gives a new file, and a second run reads instead of re-encoding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.array_cache import read_array, write_array

#: The default encoder: the bundled MiniLM-L6 sentence-transformers model (no download).
DEFAULT_EMBEDDER = "minilm"
#: Where embeddings go when nobody says otherwise.
DEFAULT_CACHE_DIR = Path("~/.cache/lightning_lookahead/embeddings")
#: Bump when the way embeddings are computed changes (pooling, normalisation), so old cache files miss.
EMBEDDING_VERSION = 1


@runtime_checkable
class Embedder(Protocol):
    """Anything that maps texts to a float (n, d) array; ``fingerprint`` names everything that changes the output."""

    @property
    def fingerprint(self) -> str: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def hash_dir(path: Path) -> str:
    """sha256 over every file of a model directory (names and contents), so re-saved weights change the key."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode("utf-8") + b"\0")
        with open(file, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


class SentenceEncoder:
    """A frozen sentence-transformers encoder on CPU or GPU: mean pooling (or the model's own), L2-normalised.

    ``name_or_path`` is ``minilm``, a local model directory (a plain Hugging Face encoder gets mean pooling) or a hub
    id. The model loads on the first ``encode``, so a fully cached run never loads it.
    """

    def __init__(
        self,
        name_or_path: str | Path = DEFAULT_EMBEDDER,
        *,
        batch_size: int = 64,
        device: str | None = None,
        progress_min: int = 256,
    ) -> None:
        from lightning_lookahead.models.backbones import resolve_backbone

        self.source = resolve_backbone(name_or_path)
        self.batch_size = batch_size
        self.device = device
        self.progress_min = progress_min
        self._model: Any = None
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            path = Path(self.source)
            content = hash_dir(path) if path.is_dir() else "hub"
            self._fingerprint = f"sentence-transformers-v{EMBEDDING_VERSION}|{self.source}|{content}|l2"
        return self._fingerprint

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise LookaheadError(
                    "the kNN and cluster baselines need sentence-transformers; pip install it"
                ) from exc
            from lightning_lookahead.models.backbones import _quiet_transformers

            try:
                with _quiet_transformers():
                    model = SentenceTransformer(self.source, device=self.device or "cpu")
            except (OSError, ValueError) as exc:
                raise LookaheadError(f"cannot load sentence encoder {self.source!r}: {exc}") from exc
            config = getattr(getattr(model[0], "auto_model", None), "config", None)
            limit = getattr(config, "max_position_embeddings", None)
            if limit is not None and (model.max_seq_length is None or model.max_seq_length > limit):
                model.max_seq_length = int(limit)  # plain encoders: never index past the position embeddings
            self._model = model
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        model = self._load()
        out = model.encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=len(texts) >= self.progress_min,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(out, dtype=np.float32)


def texts_sha256(texts: Sequence[str]) -> str:
    """sha256 of a list of texts, length-prefixed so that ``["ab"]`` and ``["a", "b"]`` differ."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


class CachedEmbedder:
    """An :class:`Embedder` that reads each list of texts' embeddings from ``cache_dir`` when it can.

    ``hits`` / ``misses`` count disk reads and encoder calls (the tests check them). Identical lists within one process
    are also kept in memory, so routers sharing training prompts embed them once.
    """

    def __init__(self, embedder: Embedder, cache_dir: str | Path | None = None) -> None:
        self.embedder = embedder
        self.cache_dir = Path(cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR).expanduser()
        self.hits = 0
        self.misses = 0
        self._memory: dict[str, np.ndarray] = {}

    @property
    def fingerprint(self) -> str:
        return self.embedder.fingerprint

    def key(self, texts: Sequence[str]) -> str:
        payload = f"{self.embedder.fingerprint}\n{texts_sha256(texts)}".encode()
        return hashlib.sha256(payload).hexdigest()

    def path(self, texts: Sequence[str]) -> Path:
        return self.cache_dir / f"{self.key(texts)}.npy"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        key = self.key(texts)
        if key in self._memory:
            return self._memory[key]
        path = self.cache_dir / f"{key}.npy"
        array = self._read(path, len(texts))
        if array is None:
            array = np.asarray(self.embedder.encode(texts), dtype=np.float32)
            if array.ndim != 2 or array.shape[0] != len(texts):
                raise LookaheadError(f"the embedder returned shape {array.shape} for {len(texts)} texts")
            self.misses += 1
            self._write(path, array)
        else:
            self.hits += 1
        self._memory[key] = array
        return array

    @staticmethod
    def _read(path: Path, n: int) -> np.ndarray | None:
        return read_array(path, "embedding", lambda a: a.ndim == 2 and a.shape[0] == n)

    def _write(self, path: Path, array: np.ndarray) -> None:
        write_array(path, array, "embeddings")
