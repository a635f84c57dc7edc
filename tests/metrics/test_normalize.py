"""Per-prompt score normalisation (METHOD §6), checked on hand-computed rows."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.metrics.normalize import NORM_METHODS, normalize_scores

SCORES = torch.tensor([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0], [0.0, -2.0, 2.0]])


def test_min_max_by_hand() -> None:
    expected = torch.tensor([[0.0, 0.5, 1.0], [0.0, 0.0, 0.0], [0.5, 0.0, 1.0]])
    assert torch.allclose(normalize_scores(SCORES, "min-max"), expected)


def test_min_max_is_the_default() -> None:
    assert torch.equal(normalize_scores(SCORES), normalize_scores(SCORES, "min-max"))


def test_none_returns_an_equal_copy() -> None:
    out = normalize_scores(SCORES, "none")
    assert torch.equal(out, SCORES)
    out[0, 0] = 100.0
    assert SCORES[0, 0] == 1.0


def test_softmax_by_hand() -> None:
    out = normalize_scores(SCORES, "softmax")
    e = [math.exp(1), math.exp(2), math.exp(3)]
    assert torch.allclose(out[0], torch.tensor([x / sum(e) for x in e]))
    assert torch.allclose(out[1], torch.full((3,), 1 / 3))
    assert torch.allclose(out.sum(dim=1), torch.ones(3))


def test_standardization_uses_population_std_and_guards_zero() -> None:
    out = normalize_scores(SCORES, "standardization")
    z = 1 / math.sqrt(2 / 3)  # (3 - 2) / population std of (1, 2, 3)
    assert torch.allclose(out[0], torch.tensor([-z, 0.0, z]))
    assert torch.equal(out[1], torch.zeros(3))  # σ = 0 → divisor 1
    assert torch.allclose(out[2], torch.tensor([0.0, -z, z]))


def test_integer_input_is_promoted_and_1d_works() -> None:
    out = normalize_scores(torch.tensor([0, 1, 1, 0]), "min-max")
    assert out.dtype == torch.get_default_dtype()
    assert torch.equal(out, torch.tensor([0.0, 1.0, 1.0, 0.0]))


@pytest.mark.parametrize("method", NORM_METHODS)
def test_float64_is_kept(method: str) -> None:
    assert normalize_scores(SCORES.double(), method).dtype == torch.float64


def test_unknown_method_suggests_the_closest() -> None:
    with pytest.raises(LookaheadError, match="min-max"):
        normalize_scores(SCORES, "minmax")  # type: ignore[arg-type]


def test_rejects_non_tensors_and_empty_rows() -> None:
    with pytest.raises(LookaheadError):
        normalize_scores([[1.0, 2.0]], "min-max")  # type: ignore[arg-type]
    with pytest.raises(LookaheadError):
        normalize_scores(torch.zeros(2, 0), "min-max")
