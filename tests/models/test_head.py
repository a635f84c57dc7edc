"""RoutingHead: layer order, output shape, initialisation of the output layer, dropout."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.routing_head import RoutingHead


def test_layer_order_and_shapes() -> None:
    head = RoutingHead(16, 5, dropout=0.1)
    kinds = [type(m) for m in head.children()]
    assert kinds == [nn.Linear, nn.GELU, nn.LayerNorm, nn.Dropout, nn.Linear]
    assert head.dense.weight.shape == (16, 16)
    assert head.output.weight.shape == (5, 16)
    assert head(torch.randn(3, 16)).shape == (3, 5)
    # per-candidate scalars: one state per (prompt, candidate)
    assert RoutingHead(16, 1)(torch.randn(3, 5, 16)).shape == (3, 5, 1)


def test_forward_matches_manual_composition() -> None:
    torch.manual_seed(0)
    head = RoutingHead(8, 3).eval()
    x = torch.randn(4, 8)
    expected = head.output(head.norm(torch.nn.functional.gelu(head.dense(x))))
    torch.testing.assert_close(head(x), expected)


def test_output_init_truncated_normal_with_inverse_sqrt_std() -> None:
    torch.manual_seed(0)
    h = 256
    head = RoutingHead(h, 64)
    std = h**-0.5
    weight = head.output.weight
    assert torch.count_nonzero(head.output.bias) == 0
    assert weight.abs().max() <= 2 * std + 1e-7  # cut at ±2σ
    # a normal truncated at ±2σ has std ≈ 0.88σ
    assert 0.84 * std < weight.std().item() < 0.92 * std
    assert abs(weight.mean().item()) < 0.05 * std


def test_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    head = RoutingHead(32, 5, dropout=0.5)
    x = torch.randn(8, 32)
    head.eval()
    torch.testing.assert_close(head(x), head(x))
    head.train()
    assert not torch.allclose(head(x), head(x))


@pytest.mark.parametrize(("h", "n", "p"), [(0, 5, 0.0), (8, 0, 0.0), (8, 5, 1.0), (8, 5, -0.1)])
def test_bad_arguments(h: int, n: int, p: float) -> None:
    with pytest.raises(LookaheadError):
        RoutingHead(h, n, dropout=p)
