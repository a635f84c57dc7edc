"""Tiny randomly initialised BERT masked LMs, saved like hub checkpoints, for tests that must not download."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
UNUSED = [f"[unused{j}]" for j in range(5)]


def save_tiny_bert(
    out: Path, words: Sequence[str], *, dropout: float = 0.1, num_labels: int | None = None, mlm_head: bool = True
) -> Path:
    """A 2-layer, hidden-32 BertForMaskedLM + BertTokenizerFast over ``words`` (plus [unused0..4]) in ``out``;
    with ``num_labels``, a BertForSequenceClassification of that many outputs instead (a tiny reward model); with
    ``mlm_head=False``, a bare BertModel (an encoder without an MLM head, like the sentence-encoder MiniLM)."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel, BertTokenizerFast

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
        num_labels=num_labels or 2,
    )
    model_class = BertForSequenceClassification if num_labels else (BertForMaskedLM if mlm_head else BertModel)
    model_class(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


#: End-of-sequence token of the tiny causal LMs (as in SmolLM2's base tokenizer); they have no pad token.
LLAMA_EOS = "<|endoftext|>"


def tiny_bpe_tokenizer(words: Sequence[str]):
    """A byte-level BPE (the SmolLM2 / GPT-2 kind) trained on ``words`` until each ``Ġword`` is one token.

    ``<|endoftext|>`` is id 0 and the EOS token; there is deliberately no pad token (the router must fall back to
    EOS). Training is deterministic, so the vocabulary is the same in every test session.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=10_000,
        special_tokens=[LLAMA_EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator([" ".join(words)] * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=LLAMA_EOS)


def save_tiny_llama(
    out: Path,
    words: Sequence[str],
    *,
    max_positions: int = 256,
    kv_heads: int = 1,
    num_labels: int | None = None,
    chat_template: str | None = None,
) -> Path:
    """A 2-layer, hidden-32 LlamaForCausalLM (tied embeddings, grouped-query attention like SmolLM2) in ``out``;
    with ``num_labels``, a LlamaForSequenceClassification instead (a tiny reward model)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    tokenizer = tiny_bpe_tokenizer(words)
    tokenizer.chat_template = chat_template
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=kv_heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=None,
        num_labels=num_labels or 2,
    )
    (LlamaForSequenceClassification if num_labels else LlamaForCausalLM)(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
