"""Response-aware inputs (METHOD §9 "rm", paper Fig. 1 left): ``prompt ‖ response_j`` for every candidate j.

Built with the tokenizer's own pair template: BERT-style ``[CLS] prompt [SEP] response [SEP]`` (token types 0 / 1
where the tokenizer uses them); for causal tokenizers, whose template adds nothing, ``prompt response EOS`` as in the
original. The prompt is cut from the LEFT (its question sits at the end) and the response from the RIGHT (its
beginning says the most); see :func:`split_budget` for how the length is shared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from lightning_lookahead.data.inputs import scores_tensor, tokenizer_fingerprint
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.encoder import pad_id_of, pad_right

#: Bump when ``featurize`` output changes for the same settings, so stale feature caches miss.
FEATURE_VERSION = 1


def split_budget(n_prompt: int, n_response: int, budget: int, response_share: int) -> tuple[int, int]:
    """Tokens kept of (prompt, response) when both must fit in ``budget`` tokens.

    Each side is guaranteed its share (the response ``response_share``, the prompt the rest); a side shorter than its
    share hands the slack to the other. With ``response_share = budget // 2`` this is the "longest first" rule of
    Hugging Face pair truncation, so neither a long prompt nor a long response can crowd out the other.
    """
    response = min(n_response, max(response_share, budget - n_prompt))
    prompt = min(n_prompt, budget - response)
    return prompt, response


@dataclass
class PairTemplate:
    """The special tokens a tokenizer puts around a pair (prefix A middle B suffix) and their token-type ids."""

    prefix: list[int]
    middle: list[int]
    suffix: list[int]
    types: tuple[int, int, int, int, int] | None  # prefix, A, middle, B, suffix; None if the model has no types

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    @classmethod
    def of(cls, tokenizer: Any) -> PairTemplate:
        """Read the template off the tokenizer by encoding a probe pair with and without special tokens."""
        a_text, b_text = "alpha", "omega"
        a = tokenizer(a_text, add_special_tokens=False)["input_ids"]
        b = tokenizer(b_text, add_special_tokens=False)["input_ids"]
        enc = tokenizer(a_text, b_text, add_special_tokens=True, return_token_type_ids=True)
        ids, types = list(enc["input_ids"]), enc.get("token_type_ids")
        start = _find(ids, a, 0)
        start_b = _find(ids, b, start + len(a)) if start >= 0 else -1
        if start < 0 or start_b < 0:
            raise LookaheadError(f"cannot read the pair template of tokenizer {type(tokenizer).__name__}")
        end_a, end_b = start + len(a), start_b + len(b)
        seg = None
        if types is not None and "token_type_ids" in getattr(tokenizer, "model_input_names", ()):
            # The type of each part's first token (BERT: 0 up to the first [SEP], 1 after); empty parts get a default.
            bounds = [(0, start, 0), (start, end_a, 0), (end_a, start_b, 0), (start_b, end_b, 1), (end_b, len(ids), 1)]
            seg = tuple(int(types[lo]) if hi > lo else default for lo, hi, default in bounds)
        return cls(prefix=ids[:start], middle=ids[end_a:start_b], suffix=ids[end_b:], types=seg)


def _find(seq: list[int], sub: list[int], start: int) -> int:
    for i in range(start, len(seq) - len(sub) + 1):
        if seq[i : i + len(sub)] == sub:
            return i
    return -1


@dataclass
class PairInputs:
    """One ``prompt ‖ response_j`` sequence per candidate, flattened prompt-major by ``collate``."""

    tokenizer: Any
    max_length: int
    n_candidates: int
    max_response_tokens: int | None = None
    append_eos: bool | None = None  # None: append EOS when the pair template adds no special tokens (causal LMs)
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        self.template = PairTemplate.of(self.tokenizer)
        if self.append_eos is None:
            self.append_eos = self.template.n_special == 0
        eos = self.tokenizer.eos_token_id
        if self.append_eos and eos is None:
            raise LookaheadError("the tokenizer has no EOS token to end the response with; set model.append_eos")
        self.eos = [int(eos)] if self.append_eos else []
        self.budget = self.max_length - self.template.n_special - len(self.eos)
        if self.budget < 2:
            raise LookaheadError(f"model.max_length = {self.max_length} leaves no room for a prompt and a response")
        share = self.budget // 2 if self.max_response_tokens is None else self.max_response_tokens
        if not 1 <= share < self.budget:
            raise LookaheadError(
                f"model.max_response_tokens = {share} must be in [1, {self.budget - 1}]: model.max_length = "
                f"{self.max_length} leaves {self.budget} tokens after special tokens, and the prompt needs at least one"
            )
        self.response_share = share
        if not self.fingerprint:
            self.fingerprint = (
                f"gt-v{FEATURE_VERSION}|{tokenizer_fingerprint(self.tokenizer)}|max_length={self.max_length}|"
                f"response_share={share}|eos={self.append_eos}"
            )

    def _tokens(self, text: str) -> list[int]:
        return [int(t) for t in self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]]

    def encode_pair(self, prompt_ids: list[int], response_ids: list[int]) -> tuple[list[int], list[int] | None]:
        """``input_ids`` (and token types) of one pair, the prompt cut from the left, the response from the right."""
        n_p, n_r = split_budget(len(prompt_ids), len(response_ids), self.budget, self.response_share)
        a = prompt_ids[len(prompt_ids) - n_p :]
        b = response_ids[:n_r] + self.eos
        t = self.template
        ids = t.prefix + a + t.middle + b + t.suffix
        if t.types is None:
            return ids, None
        parts = (t.prefix, a, t.middle, b, t.suffix)
        types = [seg for part, seg in zip(parts, t.types, strict=True) for _ in part]
        return ids, types

    def featurize(self, example: dict[str, Any]) -> dict[str, Any]:
        responses = list(example.get("responses") or [])
        if not responses:
            raise LookaheadError(
                f"prompt {example.get('prompt_id')!r} has no responses: the response-aware upper bound reads the real "
                "responses of every candidate"
            )
        prompt_ids = self._tokens(example["prompt"])
        pairs = [self.encode_pair(prompt_ids, self._tokens(str(r))) for r in responses]
        out: dict[str, Any] = {
            "prompt_id": str(example["prompt_id"]),
            "input_ids": [ids for ids, _ in pairs],
            "scores": [float(s) for s in (example.get("scores") or [])],
        }
        if self.template.types is not None:
            out["token_type_ids"] = [types for _, types in pairs]
        return out

    def collate(self, features: list[dict[str, Any]], train: bool = False) -> dict[str, torch.Tensor]:
        """Flatten to B·N right-padded sequences, prompt-major (row b·N + j is prompt b, candidate j)."""
        for f in features:
            if len(f["input_ids"]) != self.n_candidates:
                raise LookaheadError(
                    f"prompt {f['prompt_id']!r} has {len(f['input_ids'])} responses, expected one per candidate "
                    f"({self.n_candidates})"
                )
        input_ids, attention_mask = pad_right(
            [ids for f in features for ids in f["input_ids"]], pad_id_of(self.tokenizer)
        )
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "scores": scores_tensor(features, self.n_candidates),
        }
        if features and "token_type_ids" in features[0]:
            types = torch.zeros_like(input_ids)
            for i, row in enumerate(t for f in features for t in f["token_type_ids"]):
                types[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            batch["token_type_ids"] = types
        return batch
