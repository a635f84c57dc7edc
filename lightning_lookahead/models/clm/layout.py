"""Lookahead-CLM inputs (METHOD §7): one causal sequence per (prompt, candidate), as token-id lists and tensors.

Sequence of candidate j, and its labels (−100 = no loss)::

    prompt (its LAST tokens)   <Model_j>   response_j + EOS (its FIRST tokens)
    −100 … −100                −100        r_0 … r_{L-1} EOS

The prompt keeps its last ``max_length − 10`` tokens (the question sits at the end), or ``max_length − 1 −
max_response_tokens`` when responses have their own cut; the response (EOS appended, so the model learns where it
stops) is cut from the right so that the whole sequence fits ``max_length``. A response cut before its end loses its
EOS, as in the original, where EOS is appended before the overall cut.

Two batch layouts give the same hidden states (up to float rounding):

- ``separate``: B·N right-padded rows, ``prompt <Model_j> response_j`` each (the paper's layout);
- ``shared_prefix``: one row per prompt, ``prompt`` then N blocks ``<Model_j> response_j``. A 4-D mask lets block j
  see the prompt and its own earlier tokens only, and its positions restart right after the prompt, so every block
  computes exactly what its separate row would; the prompt is encoded once instead of N times.

Routing (validation, test, inference) always uses ``shared_prefix`` **without responses**: the row is ``prompt
<Model_0> … <Model_{N-1}>``, each id token attending to the prompt and itself, so scoring N candidates costs one
prompt pass plus N tokens, and no response can reach the routing logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

import torch

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.clm.config import BatchLayout
from lightning_lookahead.models.layout import IGNORE_INDEX, EncodedExample

BATCH_LAYOUTS: tuple[str, ...] = get_args(BatchLayout)

#: Positions the original keeps free after the prompt when responses have no cut of their own (2048 → 2038).
PAPER_PROMPT_RESERVE = 10

__all__ = [
    "BATCH_LAYOUTS",
    "IGNORE_INDEX",
    "BatchLayout",
    "CLMLayout",
    "EncodedExample",
    "additive_mask",
    "max_prompt_tokens_for",
    "shifted_targets",
]


def max_prompt_tokens_for(max_length: int, max_response_tokens: int | None) -> int:
    """Prompt budget: ``max_length − 1 − max_response_tokens``, or ``max_length − 10`` without a response cut."""
    reserve = PAPER_PROMPT_RESERVE if max_response_tokens is None else 1 + max_response_tokens
    budget = max_length - reserve
    if budget < 1:
        raise LookaheadError(
            f"no room for the prompt: max_length {max_length} − {reserve} positions kept for the model-id token and "
            "the response leaves none; raise model.max_length or lower model.max_response_tokens"
        )
    return budget


@dataclass(frozen=True)
class CLMLayout:
    """Token ids and lengths that fix the CLM sequences; ``model_id_tokens[j]`` names candidate j."""

    model_id_tokens: tuple[int, ...]
    eos_id: int
    pad_id: int
    max_length: int
    max_response_tokens: int | None = None

    def __post_init__(self) -> None:
        if not self.model_id_tokens:
            raise LookaheadError("the CLM layout needs at least one model-id token")
        if self.max_response_tokens is not None and self.max_response_tokens < 1:
            raise LookaheadError(f"max_response_tokens must be ≥ 1 or null, got {self.max_response_tokens}")
        max_prompt_tokens_for(self.max_length, self.max_response_tokens)  # fail early when nothing fits

    @property
    def n_candidates(self) -> int:
        return len(self.model_id_tokens)

    @property
    def max_prompt_tokens(self) -> int:
        return max_prompt_tokens_for(self.max_length, self.max_response_tokens)

    # --- one example ------------------------------------------------------------------------------------------

    def cut_prompt(self, prompt_ids: Sequence[int]) -> tuple[int, ...]:
        """The prompt's last ``max_prompt_tokens`` tokens (cut from the LEFT)."""
        return tuple(int(t) for t in prompt_ids[-self.max_prompt_tokens :])

    def cut_response(self, response_ids: Sequence[int], prompt_len: int) -> tuple[int, ...]:
        """``response + EOS``, cut from the RIGHT to ``max_response_tokens`` and to what fits after the prompt."""
        room = self.max_length - prompt_len - 1
        if self.max_response_tokens is not None:
            room = min(room, self.max_response_tokens)
        return tuple(int(t) for t in [*response_ids, self.eos_id][:room])

    def encode(self, prompt_ids: Sequence[int], responses: Sequence[Sequence[int]] | None = None) -> EncodedExample:
        """Cut prompt and responses; ``responses`` may be None/empty (routing a prompt nobody has answered yet)."""
        prompt = self.cut_prompt(prompt_ids)
        if not responses:
            return EncodedExample(prompt_ids=prompt, response_ids=())
        if len(responses) != self.n_candidates:
            raise LookaheadError(f"got {len(responses)} responses for {self.n_candidates} candidates")
        return EncodedExample(prompt, tuple(self.cut_response(r, len(prompt)) for r in responses))

    def sequence(self, example: EncodedExample, j: int, *, with_response: bool = True) -> tuple[list[int], list[int]]:
        """``(input_ids, labels)`` of candidate j: ``prompt <Model_j> [response_j]``, labels only on the response."""
        response = list(self._responses(example, with_response)[j]) if with_response else []
        ids = [*example.prompt_ids, self.model_id_tokens[j], *response]
        labels = [IGNORE_INDEX] * (len(example.prompt_ids) + 1) + response
        return ids, labels

    def _responses(self, example: EncodedExample, with_responses: bool) -> tuple[tuple[int, ...], ...]:
        if not with_responses:
            return ((),) * self.n_candidates
        if len(example.response_ids) != self.n_candidates:
            raise LookaheadError(
                f"training needs {self.n_candidates} responses per prompt, got {len(example.response_ids)}"
            )
        return example.response_ids

    # --- batches ----------------------------------------------------------------------------------------------

    def separate_batch(self, examples: Sequence[EncodedExample], *, with_responses: bool) -> dict[str, torch.Tensor]:
        """B·N right-padded rows (row b·N + j = prompt b, candidate j).

        ``input_ids``/``labels``/``attention_mask`` (B·N, T) and ``id_index`` (B·N,): where ``<Model_j>`` sits.
        """
        rows = [self.sequence(ex, j, with_response=with_responses) for ex in examples for j in range(self.n_candidates)]
        width = max(len(ids) for ids, _ in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (ids, lab) in enumerate(rows):
            input_ids[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            labels[r, : len(lab)] = torch.tensor(lab, dtype=torch.long)
            attention[r, : len(ids)] = 1
        id_index = torch.tensor(
            [len(ex.prompt_ids) for ex in examples for _ in range(self.n_candidates)], dtype=torch.long
        )
        return {"input_ids": input_ids, "labels": labels, "attention_mask": attention, "id_index": id_index}

    def shared_prefix_batch(
        self, examples: Sequence[EncodedExample], *, with_responses: bool
    ) -> dict[str, torch.Tensor]:
        """One row per prompt: ``prompt`` then the N blocks ``<Model_j> [response_j]``, right-padded.

        ``input_ids``/``labels``/``position_ids`` (B, T); ``allowed`` (B, T, T) bool, True where query i may attend
        to key k; ``id_index`` (B, N): where each ``<Model_j>`` sits. Padding rows attend to themselves only, so
        every softmax row has a key and no NaN appears even in positions nobody reads.
        """
        n = self.n_candidates
        blocks = [
            [[self.model_id_tokens[j], *resp] for j, resp in enumerate(self._responses(ex, with_responses))]
            for ex in examples
        ]
        lengths = [len(ex.prompt_ids) + sum(len(b) for b in bl) for ex, bl in zip(examples, blocks, strict=True)]
        width = max(lengths)
        size = len(examples)
        input_ids = torch.full((size, width), self.pad_id, dtype=torch.long)
        labels = torch.full((size, width), IGNORE_INDEX, dtype=torch.long)
        positions = torch.zeros((size, width), dtype=torch.long)
        allowed = torch.zeros((size, width, width), dtype=torch.bool)
        id_index = torch.zeros((size, n), dtype=torch.long)
        causal = torch.ones((width, width), dtype=torch.bool).tril()
        for b, (ex, bl) in enumerate(zip(examples, blocks, strict=True)):
            p = len(ex.prompt_ids)
            input_ids[b, :p] = torch.tensor(ex.prompt_ids, dtype=torch.long)
            positions[b, :p] = torch.arange(p)
            allowed[b, :p, :p] = causal[:p, :p]
            start = p
            for j, block in enumerate(bl):
                end = start + len(block)
                input_ids[b, start:end] = torch.tensor(block, dtype=torch.long)
                labels[b, start + 1 : end] = torch.tensor(block[1:], dtype=torch.long)
                positions[b, start:end] = torch.arange(p, p + len(block))
                allowed[b, start:end, :p] = True
                allowed[b, start:end, start:end] = causal[: len(block), : len(block)]
                id_index[b, j] = start
                start = end
            pad = torch.arange(start, width)
            allowed[b, pad, pad] = True
        return {
            "input_ids": input_ids,
            "labels": labels,
            "position_ids": positions,
            "allowed": allowed,
            "id_index": id_index,
        }


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, T, T) bool → (B, 1, T, T) float: 0 where allowed, the dtype's minimum elsewhere (eager attention)."""
    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask.unsqueeze(1)


def shifted_targets(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token targets: ``(where, targets)`` with ``where`` (B, T−1) marking the positions whose hidden state
    predicts a labelled token (position i predicts token i+1) and ``targets`` those tokens, flattened.

    Works for both layouts: every labelled token directly follows its predecessor in the same row.
    """
    nxt = labels[:, 1:]
    where = nxt != IGNORE_INDEX
    return where, nxt[where]
