"""A tiny saved BERT masked LM and examples for the predictor tests.

Everything is built from configs (no download): 2 layers, hidden 32, a ~40-token vocabulary with [unused0..4],
dropout off so that losses are reproducible to the last digit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from routers_testkit import PROMPT_WORDS, RESPONSE_WORDS, SPECIALS, UNUSED, make_examples


@pytest.fixture(scope="session")
def tiny_mlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny BertForMaskedLM + BertTokenizerFast (with [unused0..4]) that ``load_masked_lm`` can read."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    out = tmp_path_factory.mktemp("tiny-bert-mlm")
    vocab = out / "vocab.txt"
    vocab.write_text("\n".join(SPECIALS + UNUSED + PROMPT_WORDS + RESPONSE_WORDS) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(vocab))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    BertForMaskedLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def examples() -> list[dict[str, Any]]:
    return make_examples()


@pytest.fixture
def mlm_config(tiny_mlm_dir: Path) -> Callable[..., dict[str, Any]]:
    """``model:`` settings of a tiny LookaheadMLM; keyword arguments override."""

    def build(**overrides: Any) -> dict[str, Any]:
        cfg = {"kind": "mlm", "backbone": str(tiny_mlm_dir), "max_length": 64, "mask_length": 4}
        cfg.update(overrides)
        return cfg

    return build


@pytest.fixture(autouse=True, scope="session")
def _quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
