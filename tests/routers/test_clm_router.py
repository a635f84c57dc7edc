"""Lookahead-CLM on a tiny random Llama: shared-prefix routing equals N full forwards, training, no leaks, reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from routers_testkit import (
    PROMPT_WORDS,
    RESPONSE_WORDS,
    make_batch,
    make_features,
    make_loader,
    make_module,
    make_trainer,
    score,
)
from tiny_models import save_tiny_llama

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.export import load_checkpoint_file
from lightning_lookahead.models.scoring import batch_logits
from lightning_lookahead.training.modules.predictor import PredictorModule


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved 2-layer LlamaForCausalLM with a byte-level BPE where every test word is one token; no pad token."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), PROMPT_WORDS + RESPONSE_WORDS)


def _module(backbone: Path, **model: Any) -> PredictorModule:
    return make_module({"kind": "clm", "backbone": str(backbone), "max_length": 64, "dropout": 0.0, **model}, lr=1e-3)


def _varied(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Prompts of clearly different lengths (1 to 19 tokens), so shared-prefix rows are right-padded."""
    out = []
    for i, ex in enumerate(examples):
        words = (ex["prompt"].split() * 3)[: 1 + (5 * i) % 19]
        out.append({**ex, "prompt": " ".join(words)})
    return out


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_shared_prefix_logits_equal_n_separate_full_forwards(tiny_llama_dir, examples, attn) -> None:
    torch.manual_seed(0)
    module = _module(tiny_llama_dir, attn_implementation=attn).eval()
    net = module.network
    features = make_features(module.inputs, _varied(examples)[:6])
    assert len({len(f["prompt_ids"]) for f in features}) == 6  # six different prompt lengths
    with torch.no_grad():
        shared = batch_logits(net, module.inputs.collate(features))
        expected = torch.zeros(6, 5)
        for b, f in enumerate(features):
            for j, token in enumerate(module.inputs.layout.model_id_tokens):
                ids = torch.tensor([[*f["prompt_ids"], token]])
                # the full causal LM, unpadded, one (prompt, candidate) at a time: what the paper's layout computes
                state = net.backbone(input_ids=ids, output_hidden_states=True).hidden_states[-1][0, -1]
                expected[b, j] = net.head(state)[0]
    torch.testing.assert_close(shared, expected, atol=1e-5, rtol=0)
    # and the logits differ between candidates and prompts (the comparison is not trivially between constants)
    assert shared.std(dim=1).min() > 1e-3 and shared.std(dim=0).min() > 1e-4


def test_training_layouts_agree_and_aux_loss_is_the_models_own_lm_loss(tiny_llama_dir, examples) -> None:
    torch.manual_seed(0)
    module = _module(tiny_llama_dir, max_response_tokens=6).eval()  # eval: same numbers, no dropout
    net, inputs, varied = module.network, module.inputs, _varied(examples)[:4]
    with torch.no_grad():
        built = make_batch(inputs, varied, train=True)
        separate = net(built)
        inputs.train_layout = "shared_prefix"
        shared = net(make_batch(inputs, varied, train=True))
        reference = net.backbone(
            input_ids=built["input_ids"], attention_mask=built["attention_mask"], labels=built["labels"]
        ).loss  # Hugging Face's shifted causal-LM loss: token mean over every response token incl. EOS
        routing_batch = make_batch(inputs, varied)
        routed = net(routing_batch).logits
    assert separate.aux_loss is not None and shared.aux_loss is not None
    assert float(separate.aux_loss) == pytest.approx(float(reference), abs=1e-5)
    assert float(shared.aux_loss) == pytest.approx(float(reference), abs=1e-5)
    torch.testing.assert_close(shared.logits, separate.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(routed, separate.logits, atol=1e-5, rtol=0)  # training reads z_j where routing does
    assert "labels" not in routing_batch and net(routing_batch).aux_loss is None  # validation is pure routing


@pytest.mark.parametrize("layout", ["separate", "shared_prefix"])
def test_training_step_updates_head_backbone_and_id_embeddings(tiny_llama_dir, examples, layout) -> None:
    L.seed_everything(0)
    module = _module(tiny_llama_dir, dropout=0.1, layout=layout)
    net = module.network
    batch = make_batch(module.inputs, examples[:4], train=True)
    out = net(batch)
    assert out.logits.shape == (4, 5) and out.aux_loss is not None
    total = module.total_loss(batch)
    assert torch.isfinite(total) and torch.isfinite(out.aux_loss)
    assert module.config.aux_loss_weight() == 0.5
    total.backward()
    assert net.head.output.weight.grad.abs().sum() > 0
    assert net.backbone.base_model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0
    embed_grad = net.backbone.get_input_embeddings().weight.grad
    ids = list(module.inputs.layout.model_id_tokens)
    assert (embed_grad[ids].abs().sum(dim=1) > 0).all()  # every <Model_j> row learns

    trainer = make_trainer(max_steps=3)
    train = make_loader(module.inputs, examples, batch_size=4, train=True)
    trainer.fit(module, train, make_loader(module.inputs, examples, batch_size=5))
    logged = set(trainer.callback_metrics)
    assert {"train/loss", "train/routing_loss", "train/aux_loss", "train/lm_loss", "val/reward", "val/loss"} <= logged
    assert "val/aux_loss" not in logged  # routing-only validation
    assert score(module, examples, batch_size=5).shape == (12, 5)


def test_model_id_tokens_resize_to_a_multiple_of_64_with_mean_rows(tiny_llama_dir) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    old = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).get_input_embeddings().weight.detach()
    old_len = len(AutoTokenizer.from_pretrained(tiny_llama_dir))
    module = _module(tiny_llama_dir, id_noise_std=0.0)
    backbone = module.network.backbone
    weight = backbone.get_input_embeddings().weight.detach()
    assert weight.shape[0] % 64 == 0 and weight.shape[0] >= old_len + 5
    assert backbone.get_output_embeddings().weight is backbone.get_input_embeddings().weight  # tied
    assert module.inputs.tokenizer.convert_ids_to_tokens(list(module.inputs.layout.model_id_tokens)) == [
        f"<Model_{j}>" for j in range(5)
    ]
    torch.testing.assert_close(weight[:old_len], old[:old_len])
    torch.testing.assert_close(weight[old_len:], old[:old_len].mean(0).expand(weight.shape[0] - old_len, -1))
    # the default adds N(0, hidden^-0.5) noise so that the five id tokens start apart (§7)
    torch.manual_seed(0)
    noisy = _module(tiny_llama_dir).network.backbone.get_input_embeddings().weight.detach()
    spread = noisy[list(module.inputs.layout.model_id_tokens)] - old[:old_len].mean(0)
    assert spread.std().item() == pytest.approx(32**-0.5, rel=0.3)


def test_routing_never_reads_responses(tiny_llama_dir, examples) -> None:
    L.seed_everything(0)
    module = _module(tiny_llama_dir)
    seen: list[tuple[str, torch.Tensor]] = []
    stage = {"now": "train"}
    module.network.decoder.register_forward_pre_hook(
        lambda _m, _a, kwargs: seen.append((stage["now"], kwargs["input_ids"].clone())), with_kwargs=True
    )
    tok = module.inputs.tokenizer
    response_tokens = torch.tensor(sorted(set(tok.convert_tokens_to_ids([f"Ġ{w}" for w in RESPONSE_WORDS]))))
    assert tok.unk_token_id not in response_tokens.tolist()
    trainer = make_trainer(max_steps=1)
    trainer.fit(module, make_loader(module.inputs, examples, batch_size=4, train=True))
    assert all(torch.isin(ids, response_tokens).any() for s, ids in seen if s == "train")  # training reads them
    stage["now"] = "eval"
    trainer.validate(module, make_loader(module.inputs, examples, batch_size=4), verbose=False)
    features = make_features(module.inputs, examples)
    module.eval()
    scores = batch_logits(module.network, module.inputs.collate(features))
    evaluated = [ids for s, ids in seen if s == "eval"]
    assert len(evaluated) == 3 + 1
    assert not any(torch.isin(ids, response_tokens).any() for ids in evaluated)
    longest = max(len(f["prompt_ids"]) for f in features)
    assert evaluated[-1].shape == (12, longest + 5)  # prompt + the five id tokens, nothing else
    # the same prompts without any responses (or scores) route identically
    bare = [module.inputs.featurize({"prompt_id": ex["prompt_id"], "prompt": ex["prompt"]}) for ex in examples]
    assert all(f["response_ids"] == [] for f in bare)
    batch = module.inputs.collate(bare)
    assert torch.isnan(batch["scores"]).all()
    torch.testing.assert_close(batch_logits(module.network, batch), scores, atol=0, rtol=0)


def test_checkpoint_round_trip_restores_tokens_and_logits(tiny_llama_dir, examples, tmp_path) -> None:
    L.seed_everything(0)
    module = _module(tiny_llama_dir, dropout=0.1, max_response_tokens=4)
    trainer = make_trainer(max_steps=2)
    trainer.fit(module, make_loader(module.inputs, examples, batch_size=4, train=True))
    path = tmp_path / "clm.ckpt"
    trainer.save_checkpoint(path)
    torch.manual_seed(123)  # a different noise draw for the fresh id rows: the checkpoint must overwrite it
    loaded = load_checkpoint_file(path)
    assert loaded.config == module.config and loaded.inputs.layout == module.inputs.layout
    assert loaded.inputs.fingerprint == module.inputs.fingerprint
    np.testing.assert_array_equal(score(loaded, examples), score(module, examples))
    # a plain state_dict round trip into a freshly built module as well
    fresh = _module(tiny_llama_dir, dropout=0.1, max_response_tokens=4)
    fresh.load_state_dict(module.state_dict())
    np.testing.assert_array_equal(score(fresh, examples), score(module, examples))


def test_featurize_fingerprint_and_bad_settings(tiny_llama_dir, examples) -> None:
    inputs = _module(tiny_llama_dir, max_response_tokens=4).inputs
    features = inputs.featurize(examples[0])
    assert all(len(r) <= 4 for r in features["response_ids"])
    assert inputs.fingerprint == _module(tiny_llama_dir, max_response_tokens=4, aux_weight=1.0).inputs.fingerprint
    assert inputs.fingerprint != _module(tiny_llama_dir, max_response_tokens=5).inputs.fingerprint
    assert inputs.tokenizer.pad_token_id == inputs.tokenizer.eos_token_id  # no pad token: EOS pads
    with pytest.raises(LookaheadError, match="3 responses"):
        inputs.featurize({**examples[0], "responses": ["a", "b", "c"]})
    with pytest.raises(LookaheadError, match="exceeds the backbone's limit of 256 tokens"):
        _module(tiny_llama_dir, max_length=512)
    with pytest.raises(LookaheadError, match="no room for the prompt"):
        _module(tiny_llama_dir, max_length=8, max_response_tokens=8)
    with pytest.raises(LookaheadError, match=r"model\.layout"):
        _module(tiny_llama_dir, layout="packed")
    with pytest.raises(LookaheadError, match="does not exist"):
        _module(tiny_llama_dir.parent / "no-such-model")
    with pytest.raises(LookaheadError, match=r"GGUF file .* does not exist"):
        _module(tiny_llama_dir.parent / "missing.gguf")
