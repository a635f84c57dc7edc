"""Token counts per prompt and per (prompt, candidate) response, and the cost they imply.

A response's count comes from the data when a reader provides it (``extras["response_tokens"]``: one int or None per
candidate; ``extras["prompt_tokens"]`` likewise for the prompt) for every candidate of that item; otherwise the item
is counted with a tokenizer, by default the embedded MiniLM (BERT WordPiece) tokenizer, which needs no download. Only
the Arena-Hard reader passes counts on (``conv_metadata.token_len``), and only for some models, so in practice every
count is a tokenizer count; :attr:`TokenCounts.source` says which.
Tokenizer counts are cached on disk, keyed by the tokenizer and the exact texts, because counting ~40k responses takes
tens of seconds on a CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lightning_lookahead.costs.prices import PriceTable
from lightning_lookahead.data.schema import PROMPT_TOKENS_KEY, RESPONSE_TOKENS_KEY, RoutingExample
from lightning_lookahead.errors import LookaheadError

DEFAULT_TOKENIZER = "minilm"
#: Bump when the way texts are counted changes, so stale cache files are not reused.
CACHE_FORMAT = "token-counts-v1"
_BATCH = 256


@dataclass(frozen=True)
class TokenCounts:
    """Prompt tokens (n,), response tokens (n, C), which response counts came from the data, and the tokenizer."""

    prompt: np.ndarray
    response: np.ndarray
    from_data: np.ndarray
    tokenizer: str

    @property
    def source(self) -> str:
        """One phrase for reports: where the response token counts came from."""
        share = float(self.from_data.mean()) if self.from_data.size else 0.0
        if share == 1.0:
            return "response token counts from the data"
        if share == 0.0:
            return f"response token counts from the {self.tokenizer} tokenizer"
        return f"response token counts from the data ({100 * share:.0f}%), else the {self.tokenizer} tokenizer"


def default_cache_dir() -> Path:
    """``$LOOKAHEAD_CACHE_DIR/token_counts`` (default ``.cache/lookahead``, as the feature cache)."""
    return Path(os.environ.get("LOOKAHEAD_CACHE_DIR", ".cache/lookahead")) / "token_counts"


def _fast_tokenizer(name: str):
    """``texts → token counts`` from ``<backbone>/tokenizer.json`` with ``tokenizers`` alone, or None without one."""
    from lightning_lookahead.models.backbone_names import minilm_path

    folder = Path(minilm_path() if name.lower() == "minilm" else name)
    if not (folder / "tokenizer.json").is_file():
        return None
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_truncation()  # we count whole texts; nothing is fed to a model
    tokenizer.no_padding()
    return lambda texts: [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)]


def _auto_tokenizer(name: str):
    """``texts → token counts`` with transformers' AutoTokenizer (a hub id, or a folder without tokenizer.json)."""
    from transformers import AutoTokenizer

    from lightning_lookahead.models.backbones import resolve_backbone

    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone(name))
    tokenizer.model_max_length = 10**9
    return lambda texts: [
        len(x) for x in tokenizer(texts, add_special_tokens=False, return_attention_mask=False)["input_ids"]
    ]


class TokenCounter:
    """Counts tokens with one tokenizer (loaded on first use) and caches the counts of each example list."""

    def __init__(self, tokenizer: str = DEFAULT_TOKENIZER, cache_dir: str | Path | None = None, progress: bool = True):
        self.name = tokenizer
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.progress = progress
        self._tokenizer = None

    def _load(self):
        """A ``tokenizers`` tokenizer from the backbone's ``tokenizer.json`` (no torch or transformers: the bundle path
        prices prompts too; counts equal the transformers fast tokenizer's), else transformers' AutoTokenizer."""
        if self._tokenizer is None:
            self._tokenizer = _fast_tokenizer(self.name) or _auto_tokenizer(self.name)
        return self._tokenizer

    def count(self, texts: Sequence[str], desc: str = "counting tokens") -> np.ndarray:
        """Tokens per text (no special tokens, no truncation)."""
        tokenizer = self._load()
        out = np.zeros(len(texts), dtype=np.int64)
        starts = range(0, len(texts), _BATCH)
        bar = tqdm(starts, desc=desc, unit="batch", disable=not self.progress or len(texts) <= _BATCH, leave=False)
        for start in bar:
            chunk = list(texts[start : start + _BATCH])
            out[start : start + len(chunk)] = tokenizer(chunk)
        return out

    def _cache_path(self, examples: Sequence[RoutingExample]) -> Path:
        digest = hashlib.sha256(json.dumps([CACHE_FORMAT, self.name]).encode())
        for ex in examples:
            digest.update(json.dumps([ex.prompt, *ex.responses], ensure_ascii=False).encode("utf-8"))
        name = examples[0].benchmark if examples else "empty"
        return self.cache_dir / f"{name}-{digest.hexdigest()[:32]}.npz"

    def tokenizer_counts(self, examples: Sequence[RoutingExample]) -> tuple[np.ndarray, np.ndarray]:
        """(prompt (n,), response (n, C)) counted by the tokenizer, from the cache when the texts are unchanged."""
        path = self._cache_path(examples)
        if path.is_file():
            with np.load(path) as cached:
                return cached["prompt"], cached["response"]
        n_candidates = len(examples[0].responses) if examples else 0
        if any(len(ex.responses) != n_candidates for ex in examples):
            raise LookaheadError("token counts: examples have different numbers of responses")
        name = examples[0].benchmark if examples else ""
        prompt = self.count([ex.prompt for ex in examples], desc=f"{name} prompt tokens")
        flat = [r for ex in examples for r in ex.responses]
        response = self.count(flat, desc=f"{name} response tokens").reshape(len(examples), n_candidates)
        path.parent.mkdir(parents=True, exist_ok=True)
        ignore = path.parent / ".gitignore"
        if not ignore.exists():  # a cache inside a checkout must never be committed by accident
            ignore.write_text("*\n")
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, prompt=prompt, response=response)
        os.replace(tmp, path)
        return prompt, response

    def counts(self, examples: Sequence[RoutingExample]) -> TokenCounts:
        """Data counts where the reader gave them, tokenizer counts elsewhere."""
        n = len(examples)
        n_candidates = len(examples[0].responses) if examples else 0
        response = np.zeros((n, n_candidates), dtype=np.int64)
        from_data = np.zeros((n, n_candidates), dtype=bool)
        prompt = np.zeros(n, dtype=np.int64)
        prompt_from_data = np.zeros(n, dtype=bool)
        for i, ex in enumerate(examples):
            given = ex.extras.get(RESPONSE_TOKENS_KEY)
            if given is not None:
                if len(given) != n_candidates:
                    raise LookaheadError(
                        f"{ex.benchmark} prompt {ex.prompt_id!r}: extras[{RESPONSE_TOKENS_KEY!r}] has {len(given)} "
                        f"counts, expected {n_candidates}"
                    )
                # All or nothing per item: costs are compared across candidates, so one item's counts must all
                # come from the same tokenizer (Arena-Hard records tiktoken counts for only some models).
                if all(value is not None for value in given):
                    response[i], from_data[i] = [int(value) for value in given], True
            if ex.extras.get(PROMPT_TOKENS_KEY) is not None:
                prompt[i], prompt_from_data[i] = int(ex.extras[PROMPT_TOKENS_KEY]), True
        if not (from_data.all() and prompt_from_data.all()):
            counted_prompt, counted_response = self.tokenizer_counts(examples)
            response = np.where(from_data, response, counted_response)
            prompt = np.where(prompt_from_data, prompt, counted_prompt)
        return TokenCounts(prompt, response, from_data, self.name)


def usd_per_1000_prompts(
    prompt_tokens: np.ndarray, response_tokens: np.ndarray, prices: PriceTable, candidates: Sequence[str]
) -> np.ndarray:
    """Cost per (prompt, candidate) in USD per 1,000 prompts, the unit of every λ in the project.

    ``prompt_tokens`` is (n,); ``response_tokens`` is (n, C) (each response's own length) or (C,) (an expected length
    per candidate, the same for every prompt).
    """
    price_in, price_out = prices.arrays(candidates)
    response = np.asarray(response_tokens, dtype=np.float64)
    if response.ndim == 1:
        response = response[None, :]
    usd = (np.asarray(prompt_tokens)[:, None] * price_in[None, :] + response * price_out[None, :]) / 1e6
    return 1000.0 * usd


def cost_matrix(counts: TokenCounts, prices: PriceTable, candidates: Sequence[str]) -> np.ndarray:
    """Realised cost per (prompt, candidate) in USD per 1,000 prompts: each candidate's own response length."""
    return usd_per_1000_prompts(counts.prompt, counts.response, prices, candidates)


def expected_cost_matrix(counts: TokenCounts, prices: PriceTable, candidates: Sequence[str]) -> np.ndarray:
    """Cost a router can know before generating, in USD per 1,000 prompts: the prompt's own length, and each
    candidate's mean response length on this benchmark (a deployment would take it from its request logs)."""
    mean_response = counts.response.mean(axis=0) if len(counts.response) else np.zeros(len(candidates))
    return usd_per_1000_prompts(counts.prompt, mean_response, prices, candidates)


def recorded_response_tokens(
    examples: Sequence[RoutingExample], candidates: Sequence[str]
) -> tuple[dict[str, float], int] | None:
    """Each candidate's mean *recorded* response length (``extras["response_tokens"]``, e.g. the ``tokens`` of a
    user's dataset: what the endpoints billed) over the examples that record one for every candidate, and how many
    examples that is; None when no example does. No tokenizer is loaded."""
    rows = []
    for ex in examples:
        given = ex.extras.get(RESPONSE_TOKENS_KEY)
        if given is not None and len(given) == len(candidates) and all(v is not None for v in given):
            rows.append([float(v) for v in given])
    if not rows:
        return None
    means = np.asarray(rows, dtype=np.float64).mean(axis=0)
    return {name: float(v) for name, v in zip(candidates, means, strict=True)}, len(rows)


def mean_response_tokens(
    examples: Sequence[RoutingExample], candidates: Sequence[str], counter: TokenCounter | None = None
) -> dict[str, float]:
    """Each candidate's mean response length over ``examples`` (e.g. the training split), for pricing new prompts.

    When every example records its response lengths, those are used and no tokenizer is loaded.
    """
    if not examples:
        raise LookaheadError("mean response tokens: no examples")
    recorded = recorded_response_tokens(examples, candidates)
    if recorded is not None and recorded[1] == len(examples):
        return recorded[0]
    counts = (counter or TokenCounter(progress=False)).counts(examples)
    if counts.response.shape[1] != len(candidates):
        raise LookaheadError(f"mean response tokens: {counts.response.shape[1]} responses for {len(candidates)} models")
    return {name: float(v) for name, v in zip(candidates, counts.response.mean(axis=0), strict=True)}
