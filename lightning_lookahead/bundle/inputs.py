"""Numpy input builders of the bundle: the same ids, masks and positions as the torch input builders
(``models/mlm/inputs.py`` + ``models/mlm/layout.py`` for MLM, ``models/prompt_inputs.py`` for MLC and RouterDC),
from a ``tokenizers.Tokenizer`` instead of a transformers tokenizer.

Only the routing input is built: a new prompt has no responses, so every MLM candidate block is all model-id tokens.
tests/bundle/test_bundle_inputs.py pins both paths to identical arrays on real prompts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from lightning_lookahead.errors import LookaheadError


class ArrayInputs(Protocol):
    """Prompt → token ids → a batch of int64 (batch, sequence) arrays named as the ONNX graph's inputs."""

    def featurize(self, prompt: str) -> list[int]: ...

    def collate(self, rows: Sequence[Sequence[int]]) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class MLMArrayInputs:
    """Lookahead-MLM's sequence ``[CLS] prompt [SEP] B_0 [SEP] … B_{N-1} [SEP]``, every slot masked."""

    tokenizer: Any
    cls_id: int
    sep_id: int
    pad_id: int
    model_id_tokens: tuple[int, ...]
    mask_length: int
    max_prompt_tokens: int
    position_scheme: str

    def __post_init__(self) -> None:
        self.tokenizer.no_truncation()  # the torch path tokenises MLM prompts whole and cuts them from the left
        self.tokenizer.no_padding()

    def featurize(self, prompt: str) -> list[int]:
        ids = self.tokenizer.encode(prompt, add_special_tokens=False).ids
        keep = self.max_prompt_tokens
        return list(ids[len(ids) - keep :] if len(ids) > keep else ids)

    def collate(self, rows: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
        if not rows:
            raise LookaheadError("an MLM batch needs at least one prompt")
        n, block = len(self.model_id_tokens), self.mask_length + 1
        blocks = np.repeat(np.asarray(self.model_id_tokens, dtype=np.int64)[:, None], block, axis=1)
        blocks[:, -1] = self.sep_id
        blocks = blocks.reshape(-1)
        block_pos = np.tile(np.arange(block, dtype=np.int64), n)
        lengths = [len(r) + 2 + n * block for r in rows]
        total = max(lengths)
        input_ids = np.full((len(rows), total), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(rows), total), dtype=np.int64)
        position_ids = np.zeros((len(rows), total), dtype=np.int64)
        for b, (row, end) in enumerate(zip(rows, lengths, strict=True)):
            p = len(row)
            input_ids[b, : p + 2] = [self.cls_id, *row, self.sep_id]
            input_ids[b, p + 2 : end] = blocks
            attention_mask[b, :end] = 1
            if self.position_scheme == "sequential":
                position_ids[b, :end] = np.arange(end)
            else:
                position_ids[b, : p + 2] = np.arange(p + 2)
                position_ids[b, p + 2 : end] = block_pos + p + 2
        return {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids}


@dataclass(frozen=True)
class PromptArrayInputs:
    """The query-only predictors' input: the prompt with the tokenizer's special tokens, cut from the left."""

    tokenizer: Any
    max_length: int
    pad_id: int

    def __post_init__(self) -> None:
        self.tokenizer.enable_truncation(self.max_length, strategy="longest_first", direction="left")
        self.tokenizer.no_padding()

    def featurize(self, prompt: str) -> list[int]:
        return list(self.tokenizer.encode(prompt, add_special_tokens=True).ids)

    def collate(self, rows: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
        if not rows:
            raise LookaheadError("a batch needs at least one prompt")
        longest = max(len(r) for r in rows)
        input_ids = np.full((len(rows), longest), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(rows), longest), dtype=np.int64)
        for b, row in enumerate(rows):
            input_ids[b, : len(row)] = row
            attention_mask[b, : len(row)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask}


def array_inputs(settings: Mapping[str, Any], tokenizer: Any) -> ArrayInputs:
    """The numpy input builder ``router.json``'s ``input_builder`` describes."""
    kind = settings.get("type")
    if kind == "mlm_blocks":
        return MLMArrayInputs(
            tokenizer,
            cls_id=int(settings["cls_id"]),
            sep_id=int(settings["sep_id"]),
            pad_id=int(settings["pad_id"]),
            model_id_tokens=tuple(int(t) for t in settings["model_id_tokens"]),
            mask_length=int(settings["slots_per_candidate"]),
            max_prompt_tokens=int(settings["window"]),
            position_scheme=str(settings["position_scheme"]),
        )
    if kind == "prompt":
        return PromptArrayInputs(tokenizer, max_length=int(settings["window"]), pad_id=int(settings["pad_id"]))
    raise LookaheadError(f"unknown input builder type {kind!r} (expected mlm_blocks or prompt)")
