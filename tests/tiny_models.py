"""Tiny randomly initialised BERT masked LMs, saved like hub checkpoints, for tests that must not download."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
UNUSED = [f"[unused{j}]" for j in range(5)]


def save_tiny_bert(out: Path, words: Sequence[str], *, dropout: float = 0.1) -> Path:
    """A 2-layer, hidden-32 BertForMaskedLM + BertTokenizerFast over ``words`` (plus [unused0..4]) in ``out``."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    (out / "vocab.txt").write_text("\n".join([*SPECIALS, *UNUSED, *words]) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(out / "vocab.txt"))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    BertForMaskedLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
