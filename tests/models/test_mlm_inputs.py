"""Lookahead-MLM concat inputs (METHOD §8) on hand-built examples, the curriculum, and the sparse MLM loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.mlm.layout import (
    IGNORE_INDEX,
    MLMLayout,
    curriculum_rate,
    max_prompt_tokens_for,
    sparse_mlm_loss,
)

CLS, SEP, PAD = 2, 3, 0
IDS = (5, 6, 7)  # model-id tokens of candidates 0, 1, 2
X = IGNORE_INDEX


def layout(scheme: str = "block_restart", n: int = 3, mask_length: int = 4, max_prompt: int = 3) -> MLMLayout:
    return MLMLayout(CLS, SEP, PAD, IDS[:n], mask_length, max_prompt, scheme)  # type: ignore[arg-type]


def hand_example(lay: MLMLayout):
    # prompt cut from the left to 3 tokens; r0 cut from the right to 4; r1 shorter; r2 empty
    return lay.encode_example([10, 11, 12, 13], [[20, 21, 22, 23, 24, 25], [30, 31], []])


def test_encode_truncation_sides() -> None:
    lay = layout()
    ex = hand_example(lay)
    assert ex.prompt_ids == (11, 12, 13)
    assert ex.response_ids == ((20, 21, 22, 23), (30, 31), ())
    empty_prompt = MLMLayout(CLS, SEP, PAD, IDS, 4, 0).encode_example([10, 11], [[1], [2], [3]])
    assert empty_prompt.prompt_ids == ()
    with pytest.raises(LookaheadError, match="expected 3 responses"):
        lay.encode_example([10], [[1], [2]])


def test_right_masking_layout_labels_and_block_restart_positions() -> None:
    lay = layout()
    batch = lay.build_batch([hand_example(lay)], mask_rate=0.5, mask_type="right")
    # r0: L=4, n=2 → 20 21 visible; r1: L=2, n=max(1,1)=1 → 30 visible; r2 empty → all id tokens, no labels
    assert batch["input_ids"].tolist() == [[CLS, 11, 12, 13, SEP, 20, 21, 5, 5, SEP, 30, 6, 6, 6, SEP, 7, 7, 7, 7, SEP]]
    assert batch["mlm_labels"].tolist() == [[X, X, X, X, X, X, X, 22, 23, X, X, 31, X, X, X, X, X, X, X, X]]
    assert batch["attention_mask"].tolist() == [[1] * 20]
    # [CLS] prompt [SEP] get 0..P+1 = 0..4; every block (4 slots + [SEP]) restarts at P+2 = 5
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4] + [5, 6, 7, 8, 9] * 3]
    assert batch["masked_positions"].tolist() == [7, 8, 11]


def test_sequential_positions_and_right_padding() -> None:
    lay = layout("sequential")
    short = lay.encode_example([14], [[40], [41, 42, 43, 44], [45, 46]])
    batch = lay.build_batch([hand_example(lay), short], mask_rate=1.0, mask_type="right")
    assert batch["input_ids"].shape == (2, 20)
    assert batch["position_ids"][0].tolist() == list(range(20))
    assert batch["position_ids"][1].tolist() == [*range(18), 0, 0]
    assert batch["input_ids"][1].tolist() == [CLS, 14, SEP, 5, 5, 5, 5, SEP, 6, 6, 6, 6, SEP, 7, 7, 7, 7, SEP, PAD, PAD]
    assert batch["attention_mask"][1].tolist() == [1] * 18 + [0, 0]
    assert batch["mlm_labels"][1].tolist() == [X, X, X, 40, X, X, X, X, 41, 42, 43, 44, X, 45, 46, X, X, X, X, X]
    # flat indices into the (B, T) grid
    row0 = [5, 6, 7, 8, 10, 11]
    row1 = [3, 8, 9, 10, 11, 13, 14]
    assert batch["masked_positions"].tolist() == row0 + [20 + i for i in row1]

    restart = layout("block_restart").build_batch([short], mask_rate=1.0)
    assert restart["position_ids"].tolist() == [[0, 1, 2] + [3, 4, 5, 6, 7] * 3]


def test_left_masking() -> None:
    lay = layout()
    batch = lay.build_batch([hand_example(lay)], mask_rate=0.5, mask_type="left")
    assert batch["input_ids"][0, 5:].tolist() == [5, 5, 22, 23, SEP, 6, 31, 6, 6, SEP, 7, 7, 7, 7, SEP]
    assert batch["mlm_labels"][0, 5:].tolist() == [20, 21, X, X, X, 30, X, X, X, X, X, X, X, X, X]


def test_right_masking_rate_zero_still_masks_one_token_and_floor_is_robust() -> None:
    lay = layout()
    batch = lay.build_batch([hand_example(lay)], mask_rate=0.0, mask_type="right")
    assert batch["input_ids"][0, 5:10].tolist() == [20, 21, 22, 5, SEP]
    assert batch["mlm_labels"][0, 5:10].tolist() == [X, X, X, 23, X]
    # floor(100 · 0.29) must be 29, although 100 * 0.29 == 28.999999999999996 in binary floating point
    wide = MLMLayout(CLS, SEP, PAD, (5,), 100, 0)
    labels = wide.build_batch([wide.encode_example([], [list(range(100, 200))])], 0.29)["mlm_labels"]
    assert int((labels != X).sum()) == 29


def test_random_masking_is_independent_seeded_and_consistent() -> None:
    lay = MLMLayout(CLS, SEP, PAD, IDS, 32, 3)
    resp = [list(range(100, 132)), list(range(200, 220)), list(range(300, 332))]
    enc = [lay.encode_example([10, 11], resp) for _ in range(4)]

    def run(seed: int) -> dict[str, torch.Tensor]:
        return lay.build_batch(enc, 0.5, "random", torch.Generator().manual_seed(seed))

    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["mlm_labels"], b["mlm_labels"])
    assert not torch.equal(a["mlm_labels"], c["mlm_labels"])
    labelled = a["mlm_labels"] != X
    frac = labelled.sum().item() / (4 * (32 + 20 + 32))
    assert 0.35 < frac < 0.65
    # every labelled slot shows its candidate's id token; no padding slot beyond L_j is ever labelled
    for j, (start, length) in enumerate([(4, 32), (37, 20), (70, 32)]):
        block_in = a["input_ids"][:, start : start + 32]
        block_lab = a["mlm_labels"][:, start : start + 32]
        assert (block_in[block_lab != X] == IDS[j]).all()
        assert (block_lab[:, length:] == X).all()
        visible = (block_lab == X)[:, :length]
        assert torch.equal(block_in[:, :length][visible], torch.tensor(resp[j]).expand(4, -1)[visible])
    # r = 0 hides and labels nothing (r = 1 is covered by test_full_rate_leaks_no_response_token)
    none = lay.build_batch(enc, 0.0, "random", torch.Generator().manual_seed(0))
    assert (none["mlm_labels"] == X).all() and none["masked_positions"].numel() == 0


@pytest.mark.parametrize("mask_type", ["right", "left", "random", "no"])
def test_full_rate_leaks_no_response_token(mask_type: str) -> None:
    lay = layout()
    batch = lay.build_batch([hand_example(lay)], 1.0, mask_type, torch.Generator().manual_seed(0))  # type: ignore[arg-type]
    expected = [CLS, 11, 12, 13, SEP, 5, 5, 5, 5, SEP, 6, 6, 6, 6, SEP, 7, 7, 7, 7, SEP]
    assert batch["input_ids"].tolist() == [expected]
    response_tokens = {20, 21, 22, 23, 30, 31}
    assert not response_tokens & set(batch["input_ids"].flatten().tolist())
    labels = batch["mlm_labels"][0].tolist()
    if mask_type == "no":  # MLM off: nothing labelled
        assert set(labels) == {X}
    else:
        assert labels == [X] * 5 + [20, 21, 22, 23, X, 30, 31, X, X, X] + [X] * 5


def test_mask_type_no_shows_no_response_at_any_rate() -> None:
    lay = layout()
    batch = lay.build_batch([hand_example(lay)], 0.3, "no")
    assert batch["input_ids"][0, 5:].tolist() == [5, 5, 5, 5, SEP, 6, 6, 6, 6, SEP, 7, 7, 7, 7, SEP]
    assert batch["masked_positions"].numel() == 0


def test_bad_arguments() -> None:
    lay = layout()
    ex = hand_example(lay)
    with pytest.raises(LookaheadError, match="did you mean 'right'"):
        lay.build_batch([ex], 0.5, "rigth")  # type: ignore[arg-type]
    with pytest.raises(LookaheadError):
        lay.build_batch([ex], 1.5)
    with pytest.raises(LookaheadError):
        lay.build_batch([], 1.0)
    with pytest.raises(LookaheadError, match="position scheme"):
        MLMLayout(CLS, SEP, PAD, IDS, 4, 3, "blockrestart")  # type: ignore[arg-type]
    with pytest.raises(LookaheadError):
        MLMLayout(CLS, SEP, PAD, (5, 5), 4, 3)
    with pytest.raises(LookaheadError):
        MLMLayout(CLS, SEP, PAD, IDS, 0, 3)


def test_curriculum_rate() -> None:
    # warm-up = 0.2 · 1000 = 200 optimiser steps, from 0.3 to 1.0
    assert curriculum_rate(0, 1000) == pytest.approx(0.3)
    assert curriculum_rate(50, 1000) == pytest.approx(0.475)
    assert curriculum_rate(100, 1000) == pytest.approx(0.65)
    assert curriculum_rate(199, 1000) == pytest.approx(0.3 + 0.7 * 199 / 200)
    assert curriculum_rate(200, 1000) == 1.0
    assert curriculum_rate(900, 1000) == 1.0
    assert curriculum_rate(10, 100, start_rate=0.0, warmup_ratio=0.5) == pytest.approx(0.2)
    assert curriculum_rate(0, 1000, warmup_ratio=0.0) == 1.0
    assert curriculum_rate(0, 0) == 1.0
    with pytest.raises(LookaheadError):
        curriculum_rate(0, 100, start_rate=1.5)


def test_max_prompt_tokens_for() -> None:
    assert max_prompt_tokens_for(512, 5, 32) == 345
    assert max_prompt_tokens_for(2048, 5, 64) == 2048 - 2 - 5 * 65
    with pytest.raises(LookaheadError, match="no room for the prompt"):
        max_prompt_tokens_for(100, 5, 32)


def test_sparse_mlm_loss_equals_dense() -> None:
    torch.manual_seed(0)
    batch, length, hidden_size, vocab = 3, 11, 16, 50
    hidden = torch.randn(batch, length, hidden_size, dtype=torch.float64, requires_grad=True)
    labels = torch.full((batch, length), X)
    labels[0, 3], labels[0, 7], labels[2, 10], labels[1, 0] = 4, 9, 49, 0
    head = torch.nn.Linear(hidden_size, vocab).double()
    rows_seen: list[int] = []

    def lm_head(states: torch.Tensor) -> torch.Tensor:
        rows_seen.append(states.shape[0])
        return head(states)

    sparse = sparse_mlm_loss(hidden, labels, lm_head)
    dense = F.cross_entropy(head(hidden).reshape(-1, vocab), labels.reshape(-1), ignore_index=X)
    assert abs(sparse.item() - dense.item()) < 1e-6
    assert rows_seen == [4]  # only the labelled positions reach the vocabulary projection
    (g_sparse,) = torch.autograd.grad(sparse, hidden)
    (g_dense,) = torch.autograd.grad(dense, hidden)
    torch.testing.assert_close(g_sparse, g_dense)

    empty = sparse_mlm_loss(hidden, torch.full((batch, length), X), lm_head)
    assert empty.item() == 0.0 and empty.requires_grad


@pytest.mark.parametrize("scheme", ["block_restart", "sequential"])
def test_tiny_bert_forward_on_built_batch(scheme: str, tiny_tokenizer, tiny_bert) -> None:
    tok = tiny_tokenizer
    model = tiny_bert(len(tok), max_position_embeddings=64)
    ids = tok.convert_tokens_to_ids([f"[unused{j}]" for j in range(3)])
    mask_length = 4
    lay = MLMLayout(
        tok.cls_token_id, tok.sep_token_id, tok.pad_token_id, ids, mask_length, max_prompt_tokens_for(64, 3, 4), scheme
    )

    def enc(text: str) -> list[int]:
        return tok(text, add_special_tokens=False).input_ids

    examples = [
        lay.encode_example(enc("hello world the cat"), [enc("the cat sat"), enc("on the mat"), enc("dog")]),
        lay.encode_example(enc("route math"), [enc("code"), [], enc("hello world the cat sat on")]),
    ]
    batch = lay.build_batch(examples, 0.5, "right")
    assert int(batch["position_ids"].max()) < 64
    out = model.bert(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], position_ids=batch["position_ids"]
    )
    hidden = out.last_hidden_state
    assert hidden.shape == (*batch["input_ids"].shape, 32)
    loss = sparse_mlm_loss(hidden, batch["mlm_labels"], model.cls)
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    # the positions matter: the same tokens with the other scheme give another [CLS] state
    other = "sequential" if scheme == "block_restart" else "block_restart"
    alt = MLMLayout(lay.cls_id, lay.sep_id, lay.pad_id, ids, mask_length, lay.max_prompt_tokens, other)  # type: ignore[arg-type]
    alt_batch = alt.build_batch(examples, 0.5, "right")
    assert torch.equal(alt_batch["input_ids"], batch["input_ids"])
    with torch.no_grad():
        alt_cls = model.bert(**{k: alt_batch[k] for k in ("input_ids", "attention_mask", "position_ids")})
    assert not torch.allclose(alt_cls.last_hidden_state[:, 0], hidden[:, 0].detach())
