"""Reward-model scoring: the single logit of a sequence-classification model over (prompt, response).

Any ``AutoModelForSequenceClassification`` checkpoint with one output (``num_labels=1``), from the Hub or a local
folder. The text is the tokenizer's chat template over the prompt's turns plus the response as the assistant turn
when the tokenizer has one, else ``prompt + "\\n\\n" + response``. Inputs longer than the model's limit are cut at
the end. Batches are padded on the right and sorted by length, so a batch gives the same scores as one at a time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.scorers.base import (
    OnResult,
    Progress,
    ScoreItem,
    ScoreResult,
    failed,
    finished,
    messages,
    prompt_text,
)

#: Tokenizers without a real limit report ~1e30 as ``model_max_length``; treat anything above this as unset.
_NO_LIMIT = 1_000_000
_FALLBACK_MAX_LENGTH = 4096


class RewardModelScorer:
    """Scores with one reward model, loaded on first use so a bad dataset fails before the slow load."""

    def __init__(self, model: str, *, batch_size: int = 8, device: str = "cpu", max_length: int | None = None) -> None:
        if batch_size < 1:
            raise LookaheadError("--batch-size must be at least 1")
        self.model_id = model
        self.batch_size = batch_size
        self.device = device
        self.max_length = max_length
        self.name = f"reward:{model}"
        self._model: Any = None
        self._tokenizer: Any = None

    def score(
        self, items: Sequence[ScoreItem], progress: Progress | None = None, *, on_result: OnResult | None = None
    ) -> list[ScoreResult]:
        if not items:
            return []
        self._load()
        texts = [self.text(item) for item in items]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: list[ScoreResult | None] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            for i, value in zip(batch, self._logits([texts[i] for i in batch]), strict=True):
                result = ScoreResult(value) if math.isfinite(value) else failed(f"reward model gave {value}")
                results[i] = finished(i, result, progress, on_result)
        return [r for r in results if r is not None]

    def text(self, item: ScoreItem) -> str:
        """What the model reads for one item (the chat template's rendering, or prompt + blank line + response)."""
        self._load()
        if getattr(self._tokenizer, "chat_template", None):
            turns = [*messages(item.prompt), {"role": "assistant", "content": item.response}]
            return self._tokenizer.apply_chat_template(turns, tokenize=False)
        return f"{prompt_text(item.prompt)}\n\n{item.response}"

    def _logits(self, texts: list[str]) -> list[float]:
        import torch

        templated = bool(getattr(self._tokenizer, "chat_template", None))
        batch = self._tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self._limit(),
            return_tensors="pt",
            add_special_tokens=not templated,  # the template already holds the special tokens
        ).to(self.device)
        with torch.inference_mode():
            logits = self._model(**batch).logits
        return [float(v) for v in logits[:, 0].float().cpu()]

    def _limit(self) -> int:
        if self.max_length is not None:
            return self.max_length
        limits = [getattr(self._model.config, "max_position_embeddings", None), self._tokenizer.model_max_length]
        limits = [n for n in limits if isinstance(n, int) and 0 < n < _NO_LIMIT]
        return min(limits) if limits else _FALLBACK_MAX_LENGTH

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model_id)
            model = AutoModelForSequenceClassification.from_pretrained(self.model_id)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LookaheadError(f"reward model {self.model_id}: cannot load it ({first})") from None
        labels = model.config.num_labels
        if labels != 1:
            raise LookaheadError(
                f"reward model {self.model_id} has a {labels}-output head ({type(model).__name__}); a reward model "
                "has one output (num_labels=1)"
            )
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise LookaheadError(f"reward model {self.model_id}: its tokenizer has neither a pad nor an EOS token")
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "right"
        model.config.pad_token_id = tokenizer.pad_token_id  # sequence-classification heads find the last token by it
        self._tokenizer = tokenizer
        self._model = model.to(self.device).eval()
