"""Routing losses against hand computations (METHOD §6), including ties and all-equal scores."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.training.losses import LOSS_NAMES, _normalize, bce_targets, routing_loss


def _bce(z: list[float], y: list[float]) -> float:
    terms = [
        -(t * math.log(1 / (1 + math.exp(-v))) + (1 - t) * math.log(1 - 1 / (1 + math.exp(-v))))
        for v, t in zip(z, y, strict=True)
    ]
    return sum(terms) / len(terms)


def _log_softmax(v: list[float]) -> list[float]:
    m = max(v)
    lse = m + math.log(sum(math.exp(x - m) for x in v))
    return [x - lse for x in v]


LOGITS = torch.tensor([[0.5, -1.0, 2.0, 0.0, 1.0], [1.5, 0.2, -0.3, 0.7, -2.0]])
# row 0: min-max → [0, .9, 1, .1, 1] (tie at the max); row 1: → [0, .25, .5, .75, 1]
SCORES = torch.tensor([[0.0, 9.0, 10.0, 1.0, 10.0], [1.0, 2.0, 3.0, 4.0, 5.0]])
NORMED = [[0.0, 0.9, 1.0, 0.1, 1.0], [0.0, 0.25, 0.5, 0.75, 1.0]]


def test_bce_threshold_targets_and_value() -> None:
    y = [[0.0, 1.0, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 1.0]]
    loss = routing_loss("bce", threshold=0.8)(LOGITS, SCORES)
    expected = (_bce(LOGITS[0].tolist(), y[0]) + _bce(LOGITS[1].tolist(), y[1])) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_bce_soft_targets_when_threshold_not_positive() -> None:
    loss = routing_loss("bce", threshold=0.0)(LOGITS, SCORES)
    expected = (_bce(LOGITS[0].tolist(), NORMED[0]) + _bce(LOGITS[1].tolist(), NORMED[1])) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_bce_all_equal_scores_give_all_positive_labels() -> None:
    normed = torch.zeros(1, 5)  # min-max of all-equal scores
    assert bce_targets(normed, 0.8).tolist() == [[1.0] * 5]
    z = torch.tensor([[0.3, -0.2, 0.0, 1.0, -1.0]])
    loss = routing_loss("bce")(z, torch.full((1, 5), 7.0))
    assert loss.item() == pytest.approx(_bce(z[0].tolist(), [1.0] * 5), abs=1e-6)


def test_bce_best_candidate_positive_even_for_negative_raw_scores() -> None:
    # score_norm "none" keeps raw scores; a negative best must still be a positive label
    targets = bce_targets(torch.tensor([[-3.0, -1.0, -2.0]]), 0.8)
    assert targets.tolist() == [[0.0, 1.0, 0.0]]


def test_ce_uses_first_argmax_on_ties() -> None:
    loss = routing_loss("ce")(LOGITS, SCORES)
    labels = [2, 4]  # row 0 ties between 2 and 4 → first
    expected = -sum(_log_softmax(LOGITS[b].tolist())[labels[b]] for b in range(2)) / 2
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    # all-equal scores → label 0
    z = torch.tensor([[0.1, 0.2, 0.3]])
    assert routing_loss("ce")(z, torch.ones(1, 3)).item() == pytest.approx(-_log_softmax([0.1, 0.2, 0.3])[0], abs=1e-6)


def test_mse() -> None:
    loss = routing_loss("mse")(LOGITS, SCORES)
    diffs = [(LOGITS[b, j].item() - NORMED[b][j]) ** 2 for b in range(2) for j in range(5)]
    assert loss.item() == pytest.approx(sum(diffs) / 10, abs=1e-6)


@pytest.mark.parametrize("temperature", [0.1, 1.0])
def test_forward_and_reverse_kl(temperature: float) -> None:
    fwd = routing_loss("forward_kl", temperature=temperature)(LOGITS, SCORES).item()
    rev = routing_loss("reverse_kl", temperature=temperature)(LOGITS, SCORES).item()
    exp_fwd = exp_rev = 0.0
    for b in range(2):
        log_p = _log_softmax([s / temperature for s in NORMED[b]])
        log_q = _log_softmax(LOGITS[b].tolist())
        exp_fwd += sum(math.exp(lp) * (lp - lq) for lp, lq in zip(log_p, log_q, strict=True))
        exp_rev += sum(math.exp(lq) * (lq - lp) for lp, lq in zip(log_p, log_q, strict=True))
    assert fwd == pytest.approx(exp_fwd / 2, abs=1e-5)
    assert rev == pytest.approx(exp_rev / 2, abs=1e-5)
    # cross-check with torch's batchmean KL
    log_p = F.log_softmax(torch.tensor(NORMED) / temperature, dim=-1)
    ref = F.kl_div(F.log_softmax(LOGITS, dim=-1), log_p, reduction="batchmean", log_target=True)
    assert fwd == pytest.approx(ref.item(), abs=1e-5)


def test_kl_all_equal_scores_and_uniform_logits_is_zero() -> None:
    for name in ("forward_kl", "reverse_kl"):
        assert routing_loss(name)(torch.zeros(3, 5), torch.full((3, 5), 2.0)).item() == pytest.approx(0.0, abs=1e-7)


def test_score_norm_option_changes_targets() -> None:
    z = torch.zeros(1, 3)
    raw = torch.tensor([[1.0, 2.0, 4.0]])
    mse_none = routing_loss("mse", score_norm="none")(z, raw).item()
    assert mse_none == pytest.approx((1 + 4 + 16) / 3)
    mse_std = routing_loss("mse", score_norm="standardization")(z, raw).item()
    assert mse_std == pytest.approx(1.0, abs=1e-6)  # standardised values have mean 0 and variance 1


def test_names_are_forgiving_and_unknown_names_suggest() -> None:
    assert routing_loss("BCE")(LOGITS, SCORES).item() == routing_loss("bce")(LOGITS, SCORES).item()
    assert routing_loss("ForwardKL")(LOGITS, SCORES).item() == routing_loss("forward_kl")(LOGITS, SCORES).item()
    with pytest.raises(LookaheadError, match="did you mean 'reverse_kl'"):
        routing_loss("reverse_k")
    with pytest.raises(LookaheadError, match="unknown routing-loss option"):
        routing_loss("bce", treshold=0.5)
    with pytest.raises(LookaheadError):
        routing_loss("bce", threshold=1.5)
    with pytest.raises(LookaheadError):
        routing_loss("forward_kl", temperature=0.0)
    with pytest.raises(LookaheadError, match="same shape"):
        routing_loss("mse")(torch.zeros(2, 5), torch.zeros(2, 4))


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_half_precision_logits_give_float32_loss_with_gradients(name: str) -> None:
    z = LOGITS.clone().half().requires_grad_()
    loss = routing_loss(name)(z, SCORES)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert z.grad is not None and torch.isfinite(z.grad.float()).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bce_cut_keeps_a_score_that_normalises_to_exactly_the_threshold(dtype):
    # raw 4/9 beside a best of 5/9 (min 0) normalises to 0.8 exactly: at τ = 0.8 it is a positive label
    scores = torch.tensor([[0.0, 4 / 9, 5 / 9], [0.0, 3.9 / 9, 5 / 9]], dtype=dtype)
    targets = bce_targets(_normalize(scores, "min-max"), 0.8)
    assert targets.tolist() == [[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]]
    # and the loss uses those labels: logits that agree with them give a lower loss than the flipped label
    loss = routing_loss("bce", threshold=0.8)
    agree = loss(torch.tensor([[-9.0, 9.0, 9.0]]), scores[:1])
    flipped = loss(torch.tensor([[-9.0, -9.0, 9.0]]), scores[:1])
    assert agree < flipped


def test_label_prior_is_the_per_candidate_positive_rate_for_bce():
    from lightning_lookahead.training.losses import label_prior_logits, routing_loss_vs_prior

    loss = routing_loss("bce", threshold=0.8)
    # candidate 0 best in 3 of 4 prompts, candidate 1 in 1 of 4 → positive rates 0.75 and 0.25
    train = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    z = label_prior_logits(loss, train)
    assert torch.sigmoid(z).tolist() == pytest.approx([0.75, 0.25], abs=1e-4)
    informed = torch.tensor([[4.0, -4.0], [4.0, -4.0], [4.0, -4.0], [-4.0, 4.0]])
    report = routing_loss_vs_prior(loss, informed, train, train)
    assert report["routing_loss"] < report["label_prior_loss"]
    assert report["label_prior_loss"] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)), abs=1e-4)
