"""Shared pieces of the predictor tests: vocabulary, hand-made routing examples, loaders and a quiet trainer.

A uniquely named module (not ``conftest``) so test files can import it without clashing with other conftests.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
UNUSED = [f"[unused{j}]" for j in range(5)]
PROMPT_WORDS = ["write", "a", "function", "to", "sort", "list", "solve", "equation", "for", "x", "tell", "me", "story"]
PROMPT_WORDS += ["about", "cat", "dog", "code", "math", "chat", "please"]
#: Response words never occur in prompts, so a response token in ``input_ids`` means a leaked response.
RESPONSE_WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]

CANDIDATES = ["m0", "m1", "m2", "m3", "m4"]

_PROMPTS = [
    "write a function to sort a list",
    "write code to sort a list please",
    "solve the equation for x",
    "solve math equation for x please",
    "tell me a story about a cat",
    "tell me a story about a dog",
    "write a function for math",
    "code a function to solve x",
    "chat about a cat please",
    "tell me about code",
    "please solve x",
    "a story about math",
]


def make_examples(n: int = 12) -> list[dict[str, Any]]:
    """Examples whose best candidate depends on the prompt's topic (code → 4, math → 1, else 0)."""
    out = []
    for i in range(n):
        prompt = _PROMPTS[i % len(_PROMPTS)]
        best = 4 if ("code" in prompt or "function" in prompt) else 1 if ("solve" in prompt or "math" in prompt) else 0
        scores = [0.1 * ((i + j) % 3) for j in range(5)]
        scores[best] = 1.0
        responses = [
            " ".join(RESPONSE_WORDS[(i + j + k) % len(RESPONSE_WORDS)] for k in range(2 + (i + j) % 5))
            for j in range(5)
        ]
        out.append({"prompt_id": f"p{i}", "prompt": prompt, "responses": responses, "scores": scores, "benchmark": "t"})
    return out


def make_module(model: Mapping[str, Any], loss: Mapping[str, Any] | None = None, **optim: Any):
    """The training module of a ``model:`` block over :data:`CANDIDATES` (BCE unless ``loss`` says otherwise)."""
    from lightning_lookahead.training.modules.registry import build_module

    return build_module(dict(model), loss or {"name": "bce"}, optim or None, CANDIDATES)


def make_features(inputs: Any, examples: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the DataModule caches: each example's features next to its fields."""
    return [{**ex, **inputs.featurize(ex)} for ex in examples]


def make_batch(inputs: Any, examples: Sequence[dict[str, Any]], *, train: bool = False) -> dict[str, Any]:
    return inputs.collate(make_features(inputs, examples), train=train)


def make_loader(
    inputs: Any, examples: Sequence[dict[str, Any]], batch_size: int = 4, shuffle: bool = False, train: bool = False
):
    """What the DataModule does, minus caching: featurize every example, collate in the training or routing layout."""
    from torch.utils.data import DataLoader

    collate = functools.partial(inputs.collate, train=True) if train else inputs.collate
    return DataLoader(make_features(inputs, examples), batch_size=batch_size, shuffle=shuffle, collate_fn=collate)


def score(predictor_or_module: Any, examples: Sequence[dict[str, Any]], batch_size: int = 32) -> np.ndarray:
    """Score matrix through the one scoring path (what test, route and serve use)."""
    from lightning_lookahead.models.scoring import score_features

    p = predictor_or_module
    return score_features(
        p.network, p.inputs, make_features(p.inputs, examples), len(p.candidates), batch_size=batch_size
    )


def make_trainer(**kwargs: Any):
    """A quiet CPU trainer; ``kwargs`` override the defaults."""
    import lightning as L

    defaults: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    defaults.update(kwargs)
    return L.Trainer(**defaults)


class TableEmbedder:
    """Embeds a text by looking it up (hand-made vectors) or, failing that, by hashing it to a unit vector of ``dim``
    entries; deterministic, instant, and it records every call (so tests can see what was embedded or cached)."""

    def __init__(self, table: Mapping[str, Any] | None = None, name: str = "table", dim: int = 16) -> None:
        self.table = dict(table or {})
        self.name = name
        self.dim = dim
        self.calls: list[list[str]] = []

    @property
    def fingerprint(self) -> str:
        return f"{self.name}-v1"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            if text in self.table:
                rows.append(self.table[text])
            else:
                digest = hashlib.sha256(text.encode()).digest()[: self.dim]
                raw = np.frombuffer(digest, dtype=np.uint8).astype(np.float32)
                rows.append(raw / np.linalg.norm(raw))
        return np.asarray(rows, dtype=np.float32)
