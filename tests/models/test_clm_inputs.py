"""Lookahead-CLM sequences on plain token ids: truncation sides, labels, and the two batch layouts."""

from __future__ import annotations

import pytest
import torch

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.clm.layout import (
    IGNORE_INDEX,
    CLMLayout,
    additive_mask,
    max_prompt_tokens_for,
    shifted_targets,
)

IDS = (90, 91, 92)  # <Model_0..2>
EOS, PAD = 2, 0


def _layout(max_length: int = 16, max_response_tokens: int | None = 4) -> CLMLayout:
    return CLMLayout(IDS, eos_id=EOS, pad_id=PAD, max_length=max_length, max_response_tokens=max_response_tokens)


def test_prompt_budget_follows_the_paper_or_the_response_cut() -> None:
    assert max_prompt_tokens_for(2048, None) == 2038  # the original keeps max_length − 10 prompt tokens
    assert max_prompt_tokens_for(320, 32) == 287  # room for <Model_j> + 32 response tokens
    with pytest.raises(LookaheadError, match="no room for the prompt"):
        max_prompt_tokens_for(33, 32)
    with pytest.raises(LookaheadError, match="no room for the prompt"):
        _layout(max_length=5, max_response_tokens=4)


def test_prompt_is_cut_from_the_left_and_responses_from_the_right() -> None:
    layout = _layout(max_length=16, max_response_tokens=4)  # prompt budget 16 − 1 − 4 = 11
    prompt = list(range(100, 120))  # 20 tokens
    responses = [[10, 11, 12, 13, 14, 15], [20], [30, 31, 32]]
    ex = layout.encode(prompt, responses)
    assert ex.prompt_ids == tuple(range(109, 120))  # the last 11 tokens
    # response + EOS, then its first 4 tokens: a cut response loses its EOS, a short one keeps it
    assert ex.response_ids == ((10, 11, 12, 13), (20, EOS), (30, 31, 32, EOS))
    for j in range(3):
        ids, labels = layout.sequence(ex, j)
        assert len(ids) <= layout.max_length
        assert ids[: len(ex.prompt_ids)] == list(ex.prompt_ids) and ids[len(ex.prompt_ids)] == IDS[j]
        assert labels[: len(ex.prompt_ids) + 1] == [IGNORE_INDEX] * (len(ex.prompt_ids) + 1)
        assert labels[len(ex.prompt_ids) + 1 :] == list(ex.response_ids[j])


def test_without_a_response_cut_the_sequence_fills_max_length() -> None:
    layout = _layout(max_length=16, max_response_tokens=None)  # prompt ≤ 6, response takes what is left
    ex = layout.encode(list(range(100, 104)), [list(range(10, 30)), [5], []])
    assert len(ex.response_ids[0]) == 16 - 4 - 1  # cut so that prompt + id + response = max_length
    assert ex.response_ids[1:] == ((5, EOS), (EOS,))  # an empty response is just EOS
    long = layout.encode(list(range(100, 130)), [[1]] * 3)
    assert len(long.prompt_ids) == 6 and long.prompt_ids[-1] == 129
    assert all(len(layout.sequence(long, j)[0]) <= 16 for j in range(3))


def test_examples_without_responses_encode_and_route_but_cannot_train() -> None:
    layout = _layout()
    ex = layout.encode([100, 101], None)
    assert ex.response_ids == ()
    routed = layout.shared_prefix_batch([ex], with_responses=False)
    assert routed["input_ids"].tolist() == [[100, 101, *IDS]]
    with pytest.raises(LookaheadError, match="training needs 3 responses"):
        layout.shared_prefix_batch([ex], with_responses=True)
    with pytest.raises(LookaheadError, match="2 responses for 3 candidates"):
        layout.encode([100], [[1], [2]])


def test_separate_batch_has_one_right_padded_row_per_prompt_and_candidate() -> None:
    layout = _layout()
    a = layout.encode([100, 101, 102], [[10], [20, 21], [30]])
    b = layout.encode([200], [[40, 41, 42], [50], [60]])
    batch = layout.separate_batch([a, b], with_responses=True)
    assert batch["input_ids"].shape == (6, 7)  # longest row: prompt 3 + <M1> + 20 21 EOS
    assert batch["input_ids"][4].tolist() == [200, IDS[1], 50, EOS, PAD, PAD, PAD]
    assert batch["attention_mask"][4].tolist() == [1, 1, 1, 1, 0, 0, 0]
    assert batch["labels"][4].tolist() == [IGNORE_INDEX, IGNORE_INDEX, 50, EOS] + [IGNORE_INDEX] * 3
    assert batch["id_index"].tolist() == [3, 3, 3, 1, 1, 1]
    rows = batch["input_ids"][torch.arange(6), batch["id_index"]]
    assert rows.tolist() == [*IDS, *IDS]


def test_shared_prefix_blocks_see_the_prompt_and_themselves_only() -> None:
    layout = _layout()
    a = layout.encode([100, 101, 102], [[10], [20, 21], [30]])
    b = layout.encode([200], [[40], [50], [60]])
    batch = layout.shared_prefix_batch([a, b], with_responses=True)
    # row a: prompt(3) | <M0> 10 EOS | <M1> 20 21 EOS | <M2> 30 EOS  = 13 tokens
    assert batch["input_ids"][0].tolist() == [100, 101, 102, 90, 10, EOS, 91, 20, 21, EOS, 92, 30, EOS]
    assert batch["id_index"].tolist() == [[3, 6, 10], [1, 4, 7]]
    assert batch["position_ids"][0].tolist() == [0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 3, 4, 5]
    assert batch["labels"][0].tolist() == [IGNORE_INDEX] * 4 + [
        10,
        EOS,
        IGNORE_INDEX,
        20,
        21,
        EOS,
        IGNORE_INDEX,
        30,
        EOS,
    ]
    allowed = batch["allowed"][0]
    assert allowed[:3, :3].tolist() == torch.ones(3, 3, dtype=torch.bool).tril().tolist()  # causal prompt
    assert not allowed[:3, 3:].any()  # the prompt never sees a block
    for start, end in ((3, 6), (6, 10), (10, 13)):
        block = allowed[start:end]
        assert block[:, :3].all()  # every block token sees the whole prompt
        assert block[:, start:end].tolist() == torch.ones(end - start, end - start, dtype=torch.bool).tril().tolist()
        others = torch.ones(13, dtype=torch.bool)
        others[:3] = others[start:end] = False
        assert not block[:, others].any()  # ... and nothing of the other candidates
    # the shorter row is right-padded; padding attends to itself only (no empty softmax row)
    padded = batch["allowed"][1]
    assert batch["input_ids"][1, 10:].tolist() == [PAD] * 3
    assert padded[10:].sum(dim=1).tolist() == [1, 1, 1] and padded[10:, 10:].diagonal().all()
    assert not padded[:10, 10:].any()


def test_routing_rows_are_prompt_plus_every_id_token() -> None:
    layout = _layout()
    batch = layout.shared_prefix_batch(
        [layout.encode([100, 101], [[10], [20], [30]]), layout.encode([200], None)], with_responses=False
    )
    assert batch["input_ids"].tolist() == [[100, 101, *IDS], [200, *IDS, PAD]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 2, 2], [0, 1, 1, 1, 0]]
    assert (batch["labels"] == IGNORE_INDEX).all()
    ids = batch["allowed"][0, 2:]  # the three id tokens: prompt + themselves, not each other
    assert ids.tolist() == [
        [True, True, True, False, False],
        [True, True, False, True, False],
        [True, True, False, False, True],
    ]


def test_shifted_targets_and_additive_mask() -> None:
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 7, 8], [IGNORE_INDEX, 5, IGNORE_INDEX, IGNORE_INDEX]])
    where, targets = shifted_targets(labels)
    assert where.tolist() == [[False, True, True], [True, False, False]]
    assert targets.tolist() == [7, 8, 5]
    allowed = torch.tensor([[[True, False], [True, True]]])
    mask = additive_mask(allowed, torch.float32)
    assert mask.shape == (1, 1, 2, 2)
    assert mask[0, 0, 1].tolist() == [0.0, 0.0] and mask[0, 0, 0, 1] == torch.finfo(torch.float32).min
