"""Lookahead-MLM inputs: one sequence per prompt holding every candidate as a masked block (METHOD §8).

Everything here works on token-id lists, so it is independent of the tokenizer and cheap to unit-test. Layout::

    [CLS] prompt(P) [SEP]  B_0 [SEP]  B_1 [SEP] ... B_{N-1} [SEP]
    B_j = mask_length slots: visible response-prefix tokens, then candidate j's model-id token in every masked or
          empty slot (the id token doubles as candidate j's mask token; [MASK] is never used).

Masking is applied per batch (not at tokenisation time) because its rate follows the curriculum of
:func:`curriculum_rate`, which counts global optimiser steps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import get_args

import torch
import torch.nn.functional as F

from lightning_lookahead.errors import LookaheadError, unknown_name
from lightning_lookahead.models.layout import IGNORE_INDEX, EncodedExample
from lightning_lookahead.models.mlm.config import MaskType, PositionScheme

POSITION_SCHEMES: tuple[str, ...] = get_args(PositionScheme)
MASK_TYPES: tuple[str, ...] = get_args(MaskType)

# floor(L·r) of e.g. 100·0.29 is 28.999999999999996 in binary floating point; this nudge makes it 29.
_FLOOR_EPS = 1e-9


def max_prompt_tokens_for(max_positions: int, n_candidates: int, mask_length: int) -> int:
    """Prompt budget ``max_positions − 2 − n·(mask_length + 1)`` so the whole sequence fits the position table.

    The bound is the sequential one, so it holds under both position schemes and the total length never exceeds what
    the backbone saw in pre-training (e.g. MiniLM, 512 positions, 5 × (32 + 1) slots → 345).
    """
    budget = max_positions - 2 - n_candidates * (mask_length + 1)
    if budget <= 0:
        raise LookaheadError(
            f"no room for the prompt: {max_positions} positions − 2 − {n_candidates} candidates × "
            f"({mask_length} slots + 1 [SEP]) = {budget}; lower mask_length or use a backbone with more positions"
        )
    return budget


def curriculum_rate(step: int, total_steps: int, start_rate: float = 0.3, warmup_ratio: float = 0.2) -> float:
    """Mask rate ``min(r0 + (1 − r0)·step / (warmup_ratio·total_steps), 1)``.

    ``step`` counts global optimiser steps (not micro-batches), so all micro-batches of one step share a rate and the
    schedule does not depend on the GPU count or dataloader workers (METHOD §13.5). A zero-length warm-up gives 1.0.
    """
    if not 0.0 <= start_rate <= 1.0:
        raise LookaheadError(f"starting mask rate must be in [0, 1], got {start_rate}")
    if not 0.0 <= warmup_ratio <= 1.0:
        raise LookaheadError(f"mask warm-up ratio must be in [0, 1], got {warmup_ratio}")
    warmup = warmup_ratio * total_steps
    if warmup <= 0:
        return 1.0
    return min(start_rate + (1.0 - start_rate) * max(step, 0) / warmup, 1.0)


@dataclass(frozen=True)
class MLMLayout:
    """Token ids and sizes that fix the concat layout; ``model_id_tokens[j]`` marks candidate j's slots."""

    cls_id: int
    sep_id: int
    pad_id: int
    model_id_tokens: tuple[int, ...]
    mask_length: int
    max_prompt_tokens: int
    position_scheme: PositionScheme = "block_restart"

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_id_tokens", tuple(int(t) for t in self.model_id_tokens))
        if not self.model_id_tokens:
            raise LookaheadError("MLMLayout needs one model-id token per candidate, got none")
        if len(set(self.model_id_tokens)) != len(self.model_id_tokens):
            raise LookaheadError(f"model-id tokens must be distinct, got {list(self.model_id_tokens)}")
        if self.mask_length < 1:
            raise LookaheadError(f"mask_length must be ≥ 1, got {self.mask_length}")
        if self.max_prompt_tokens < 0:
            raise LookaheadError(f"max_prompt_tokens must be ≥ 0, got {self.max_prompt_tokens}")
        if self.position_scheme not in POSITION_SCHEMES:
            raise unknown_name("position scheme", str(self.position_scheme), POSITION_SCHEMES)

    @property
    def n_candidates(self) -> int:
        """Number of candidate blocks per sequence."""
        return len(self.model_id_tokens)

    @property
    def block_length(self) -> int:
        """Positions per candidate block: its slots plus the trailing [SEP]."""
        return self.mask_length + 1

    def sequence_length(self, prompt_length: int) -> int:
        """Unpadded length ``P + 2 + N·(mask_length + 1)`` of a sequence with a ``prompt_length``-token prompt."""
        return prompt_length + 2 + self.n_candidates * self.block_length

    def encode_example(
        self, prompt_ids: Sequence[int], response_ids_per_candidate: Sequence[Sequence[int]]
    ) -> EncodedExample:
        """Cut the prompt from the left (its end holds the question) and each response from the right (its start)."""
        if len(response_ids_per_candidate) != self.n_candidates:
            raise LookaheadError(
                f"expected {self.n_candidates} responses (one per model-id token), "
                f"got {len(response_ids_per_candidate)}"
            )
        keep = self.max_prompt_tokens
        prompt = tuple(int(t) for t in prompt_ids)
        prompt = prompt[len(prompt) - keep :] if len(prompt) > keep else prompt  # keep == 0 → empty, unlike [-0:]
        responses = tuple(tuple(int(t) for t in r[: self.mask_length]) for r in response_ids_per_candidate)
        return EncodedExample(prompt, responses)

    def _block_mask(
        self, lengths: torch.Tensor, mask_rate: float, mask_type: MaskType, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Which response slots are masked, shape (B, N, mask_length); only real tokens (slot < L_j) can be masked."""
        slot = torch.arange(self.mask_length, device=lengths.device)
        real = slot < lengths.unsqueeze(-1)
        if mask_type == "no":
            return torch.zeros_like(real)
        if mask_type == "random":
            draw = torch.rand(real.shape, generator=generator, device=lengths.device)
            return real & (draw < mask_rate)
        # right / left: n = max(floor(L·r), 1) real tokens, never more than L (an empty response masks nothing)
        n = torch.floor(lengths.double() * mask_rate + _FLOOR_EPS).long().clamp(min=1)
        n = torch.minimum(n, lengths).unsqueeze(-1)
        if mask_type == "right":
            return real & (slot >= lengths.unsqueeze(-1) - n)
        return real & (slot < n)

    def collate(self, encoded_list: Sequence[EncodedExample]) -> dict[str, torch.Tensor]:
        """Stack examples into right-padded tensors with every response slot masked (the routing input).

        Returns ``input_ids``, ``attention_mask``, ``position_ids`` (B, T), plus what :meth:`mask` needs to show a
        response prefix later: ``responses`` (B, N, mask_length), each candidate's response ids padded with −1, and
        ``block_start`` (B,), where the first candidate block begins. Padding positions get ``pad_id``, attention 0
        and position 0.
        """
        if not encoded_list:
            raise LookaheadError("an MLM batch needs at least one example")
        n_cand, m = self.n_candidates, self.mask_length
        for ex in encoded_list:
            if len(ex.response_ids) != n_cand or any(len(r) > m for r in ex.response_ids):
                raise LookaheadError("MLM batches need examples from this layout's encode_example")
        batch = len(encoded_list)

        responses = torch.full((batch, n_cand, m), -1, dtype=torch.long)
        for b, ex in enumerate(encoded_list):
            for j, r in enumerate(ex.response_ids):
                if r:
                    responses[b, j, : len(r)] = torch.tensor(r, dtype=torch.long)
        id_tokens = torch.tensor(self.model_id_tokens, dtype=torch.long).view(n_cand, 1).expand(n_cand, m)
        sep = torch.full((n_cand, 1), self.sep_id, dtype=torch.long)
        blocks = torch.cat([id_tokens, sep], dim=-1).flatten()  # (N·(m+1)): every slot masked
        block_pos = torch.arange(self.block_length).repeat(n_cand)  # 0..m per block, restarted

        prompt_lengths = [len(ex.prompt_ids) for ex in encoded_list]
        total = max(self.sequence_length(p) for p in prompt_lengths)
        input_ids = torch.full((batch, total), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((batch, total), dtype=torch.long)
        position_ids = torch.zeros((batch, total), dtype=torch.long)
        for b, ex in enumerate(encoded_list):
            p = prompt_lengths[b]
            end = self.sequence_length(p)
            input_ids[b, : p + 2] = torch.tensor([self.cls_id, *ex.prompt_ids, self.sep_id], dtype=torch.long)
            input_ids[b, p + 2 : end] = blocks
            attention_mask[b, :end] = 1
            if self.position_scheme == "sequential":
                position_ids[b, :end] = torch.arange(end)
            else:
                position_ids[b, : p + 2] = torch.arange(p + 2)
                position_ids[b, p + 2 : end] = block_pos + (p + 2)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "position_ids": position_ids,
            "responses": responses,
            "block_start": torch.tensor([p + 2 for p in prompt_lengths], dtype=torch.long),
        }

    def mask(
        self,
        batch: dict[str, torch.Tensor],
        mask_rate: float,
        mask_type: MaskType = "right",
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """A collated batch with a response prefix shown at ``mask_rate`` and ``mlm_labels`` on the masked slots.

        ``mlm_labels`` (B, T) holds the true id only at masked real response tokens (−100 elsewhere, so no
        end-of-response target and nothing on [SEP]); ``masked_positions`` (K,) are their flat indices into the
        (B, T) grid, row-major. Works on the batch's device.

        Mask types: ``right`` masks the last ``n = max(floor(L_j·r), 1)`` real tokens, ``left`` the first n,
        ``random`` each real token independently with probability r (a block, or a whole batch, may get no label;
        that is the spec's independence, and :func:`sparse_mlm_loss` returns 0 then). ``r = 1`` masks every token.
        ``no`` turns the MLM task off: no labels and no response token shown, so every block is all id tokens, the
        same input the model gets at validation and test time (showing responses would leak them).
        """
        if mask_type not in MASK_TYPES:
            raise unknown_name("mask type", str(mask_type), MASK_TYPES)
        if not 0.0 <= mask_rate <= 1.0:
            raise LookaheadError(f"mask rate must be in [0, 1], got {mask_rate}")
        responses = batch["responses"]
        size, n_cand, m = responses.shape
        device = responses.device
        lengths = (responses >= 0).sum(dim=-1)
        masked = self._block_mask(lengths, mask_rate, mask_type, generator)
        visible = (torch.arange(m, device=device) < lengths.unsqueeze(-1)) & ~masked
        if mask_type == "no":
            visible = torch.zeros_like(visible)
        id_tokens = torch.tensor(self.model_id_tokens, dtype=torch.long, device=device).view(1, n_cand, 1)
        slots = torch.where(visible, responses, id_tokens.expand_as(responses))
        slot_labels = torch.where(masked, responses, torch.full_like(responses, IGNORE_INDEX))
        offsets = torch.arange(n_cand, device=device).view(1, n_cand, 1) * self.block_length
        where = (batch["block_start"].view(size, 1, 1) + offsets + torch.arange(m, device=device)).flatten(1)
        input_ids = batch["input_ids"].clone()
        input_ids.scatter_(1, where, slots.flatten(1))
        labels = torch.full_like(input_ids, IGNORE_INDEX)
        labels.scatter_(1, where, slot_labels.flatten(1))
        return {
            **batch,
            "input_ids": input_ids,
            "mlm_labels": labels,
            "masked_positions": (labels.flatten() != IGNORE_INDEX).nonzero().squeeze(1),
        }

    def build_batch(
        self,
        encoded_list: Sequence[EncodedExample],
        mask_rate: float,
        mask_type: MaskType = "right",
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """:meth:`collate` then :meth:`mask`: a training batch in one call (tests and benchmarks)."""
        return self.mask(self.collate(encoded_list), mask_rate, mask_type, generator)


def sparse_mlm_loss(
    hidden: torch.Tensor, labels: torch.Tensor, lm_head: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """Mean cross-entropy over the labelled positions only, projecting just those K states to the vocabulary.

    With r < 1 few positions carry labels, and a (B, T, V) logits tensor (e.g. 32 × 2300 × 50k) would dominate
    memory; gathering first makes it (K, V). Returns a graph-connected 0 when no position is labelled.
    """
    if hidden.shape[:-1] != labels.shape:
        raise LookaheadError(f"hidden {tuple(hidden.shape)} and labels {tuple(labels.shape)} do not line up")
    flat_labels = labels.reshape(-1)
    index = (flat_labels != IGNORE_INDEX).nonzero().squeeze(1)
    if index.numel() == 0:
        return hidden.sum() * 0.0
    states = hidden.reshape(-1, hidden.shape[-1]).index_select(0, index)
    logits = lm_head(states)
    return F.cross_entropy(logits.float(), flat_labels.index_select(0, index))
