"""The CLM response loss in chunks equals the one-shot loss (value and gradients) and keeps no chunk's logits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tiny_models import save_tiny_llama

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.clm.chunked_loss import chunked_cross_entropy
from lightning_lookahead.models.registry import build_predictor, parse_model_config

WORDS = ["write", "a", "function", "sort", "list", "solve", "x", "story", "cat", "alpha", "beta", "gamma", "delta"]
CANDIDATES = ["m0", "m1", "m2", "m3", "m4"]


@pytest.fixture(scope="module")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama-chunks"), WORDS)


def _examples() -> list[dict]:
    out = []
    for i in range(3):
        responses = [" ".join(WORDS[(i + j + k) % len(WORDS)] for k in range(3 + 2 * j)) for j in range(5)]
        out.append({"prompt_id": f"p{i}", "prompt": " ".join(WORDS[i : i + 4]), "responses": responses,
                    "scores": [0.1 * j for j in range(5)], "benchmark": "t"})  # fmt: skip
    return out


def _loss_and_grads(directory: Path, chunk: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    cfg = {"kind": "clm", "backbone": str(directory), "max_length": 64, "dropout": 0.0, "lm_loss_chunk": chunk}
    predictor = build_predictor(cfg, CANDIDATES)
    net = predictor.network.eval()
    features = [{**ex, **predictor.inputs.featurize(ex)} for ex in _examples()]
    out = net(predictor.inputs.collate(features, train=True))
    assert out.aux_loss is not None
    out.aux_loss.backward()
    grads = {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}
    return out.aux_loss.detach(), grads


@pytest.mark.parametrize("chunk", [1, 7, 32])
def test_chunked_lm_loss_equals_one_shot_loss_and_gradients(tiny_llama_dir: Path, chunk: int) -> None:
    whole, whole_grads = _loss_and_grads(tiny_llama_dir, 1_000_000)  # one chunk: the plain cross-entropy
    part, part_grads = _loss_and_grads(tiny_llama_dir, chunk)
    torch.testing.assert_close(part, whole, atol=1e-6, rtol=1e-6)
    assert whole_grads.keys() == part_grads.keys() and any("embed_tokens" in k for k in whole_grads)
    for name, grad in whole_grads.items():
        torch.testing.assert_close(part_grads[name], grad, atol=1e-6, rtol=1e-5, msg=name)


def test_chunked_cross_entropy_matches_f_cross_entropy_and_saves_no_logits() -> None:
    torch.manual_seed(0)
    m, h, v, chunk = 600, 16, 1000, 50
    head = torch.nn.Linear(h, v, bias=False)
    states = torch.randn(m, h, requires_grad=True)
    targets = torch.randint(0, v, (m,))
    saved: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = chunked_cross_entropy(head, states, targets, chunk)
    loss.backward()
    expected = F.cross_entropy(head(states.detach()).float(), targets)
    torch.testing.assert_close(loss.detach(), expected, atol=1e-6, rtol=1e-6)
    assert sum(saved) < m * v * 4 / 10  # what autograd keeps for the backward: far below the (M, V) fp32 logits
    (ref,) = torch.autograd.grad(F.cross_entropy(head(states).float(), targets), states)
    torch.testing.assert_close(states.grad, ref, atol=1e-7, rtol=1e-5)


def test_lm_loss_chunk_must_be_positive() -> None:
    with pytest.raises(LookaheadError, match="lm_loss_chunk"):
        parse_model_config({"kind": "clm", "lm_loss_chunk": 0})
