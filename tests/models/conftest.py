"""Tiny tokenizers and BERT models built from configs: the model tests never download anything."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
UNUSED = [f"[unused{j}]" for j in range(5)]
WORDS = ["hello", "world", "the", "a", "cat", "dog", "sat", "on", "mat", "code", "math", "route"]


def _tokenizer(directory: Path, tokens: list[str]):
    from transformers import BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab=str(vocab))


@pytest.fixture
def tiny_tokenizer(tmp_path: Path):
    """[PAD] [UNK] [CLS] [SEP] [MASK] [unused0..4] + words: ids 0-4 special, 5-9 unused, 10+ words."""
    return _tokenizer(tmp_path / "tok", SPECIALS + UNUSED + WORDS)


@pytest.fixture
def tiny_tokenizer_no_unused(tmp_path: Path):
    """A vocabulary without [unusedN] entries, so model-id tokens must be added."""
    return _tokenizer(tmp_path / "tok_plain", SPECIALS + WORDS)


@pytest.fixture
def tiny_bert() -> Callable[..., object]:
    """Factory for a 2-layer, 32-wide BertForMaskedLM with a given vocabulary size (random init, seeded)."""

    def build(vocab_size: int, max_position_embeddings: int = 64):
        import torch
        from transformers import BertConfig, BertForMaskedLM

        torch.manual_seed(0)
        config = BertConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=max_position_embeddings,
        )
        return BertForMaskedLM(config).eval()

    return build
