"""LookaheadCLM on a tiny random Llama: shared-prefix routing equals N full forwards, training, no leaks, reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from routers_testkit import CANDIDATES, PROMPT_WORDS, RESPONSE_WORDS, make_loader, make_trainer
from tiny_models import save_tiny_llama

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.routers.clm import LookaheadCLM


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved 2-layer LlamaForCausalLM with a byte-level BPE where every test word is one token; no pad token."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), PROMPT_WORDS + RESPONSE_WORDS)


def _module(backbone: Path, **model: Any) -> LookaheadCLM:
    cfg = {"backbone": str(backbone), "max_length": 64, "dropout": 0.0, **model}
    return LookaheadCLM(model=cfg, loss={"name": "bce"}, optim={"lr": 1e-3}, candidates=CANDIDATES)


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
    batch_examples = _varied(examples)[:6]
    features = [module.featurize(ex) for ex in batch_examples]
    assert len({len(f["prompt_ids"]) for f in features}) == 6  # six different prompt lengths
    with torch.no_grad():
        shared = module.predict_scores(module.collate(features))
        expected = torch.zeros(6, 5)
        for b, f in enumerate(features):
            for j, token in enumerate(module.layout.model_id_tokens):
                ids = torch.tensor([[*f["prompt_ids"], token]])
                # the full causal LM, unpadded, one (prompt, candidate) at a time: what the paper's layout computes
                state = module.backbone(input_ids=ids, output_hidden_states=True).hidden_states[-1][0, -1]
                expected[b, j] = module.head(state)[0]
    torch.testing.assert_close(shared, expected, atol=1e-5, rtol=0)
    # and the logits differ between candidates and prompts (the comparison is not trivially between constants)
    assert shared.std(dim=1).min() > 1e-3 and shared.std(dim=0).min() > 1e-4


def test_training_layouts_agree_and_aux_loss_is_the_models_own_lm_loss(tiny_llama_dir, examples) -> None:
    torch.manual_seed(0)
    module = _module(tiny_llama_dir, max_response_tokens=6).eval()  # eval: same numbers, no dropout
    batch = module.collate([module.featurize(ex) for ex in _varied(examples)[:4]])
    with torch.no_grad():
        separate = module.forward_batch(batch, "train")
        module.config.layout = "shared_prefix"
        shared = module.forward_batch(batch, "train")
        built = module.layout.separate_batch(list(batch["encoded"]), with_responses=True)
        reference = module.backbone(
            input_ids=built["input_ids"], attention_mask=built["attention_mask"], labels=built["labels"]
        ).loss  # Hugging Face's shifted causal-LM loss: token mean over every response token incl. EOS
        routed = module.forward_batch(batch, "val").logits
    assert separate.aux_loss is not None and shared.aux_loss is not None
    assert float(separate.aux_loss) == pytest.approx(float(reference), abs=1e-5)
    assert float(shared.aux_loss) == pytest.approx(float(reference), abs=1e-5)
    torch.testing.assert_close(shared.logits, separate.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(routed, separate.logits, atol=1e-5, rtol=0)  # training reads z_j where routing does
    assert module.forward_batch(batch, "val").aux_loss is None  # validation is pure routing


@pytest.mark.parametrize("layout", ["separate", "shared_prefix"])
def test_training_step_updates_head_backbone_and_id_embeddings(tiny_llama_dir, examples, layout) -> None:
    L.seed_everything(0)
    module = _module(tiny_llama_dir, dropout=0.1, layout=layout)
    batch = module.collate([module.featurize(ex) for ex in examples[:4]])
    out = module.forward_batch(batch, "train")
    assert out.logits.shape == (4, 5) and out.aux_loss is not None
    total = module.total_loss(batch)
    assert torch.isfinite(total) and torch.isfinite(out.aux_loss)
    assert module.aux_loss_weight() == 0.5
    total.backward()
    assert module.head.output.weight.grad.abs().sum() > 0
    assert module.backbone.base_model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0
    embed_grad = module.backbone.get_input_embeddings().weight.grad
    ids = list(module.layout.model_id_tokens)
    assert (embed_grad[ids].abs().sum(dim=1) > 0).all()  # every <Model_j> row learns

    trainer = make_trainer(max_steps=3)
    trainer.fit(module, make_loader(module, examples, batch_size=4), make_loader(module, examples, batch_size=5))
    logged = set(trainer.callback_metrics)
    assert {"train/loss", "train/routing_loss", "train/aux_loss", "train/lm_loss", "val/reward", "val/loss"} <= logged
    assert "val/aux_loss" not in logged  # routing-only validation
    trainer.test(module, make_loader(module, examples, batch_size=5), verbose=False)
    assert module.test_logits[0].shape == (12, 5)


def test_model_id_tokens_resize_to_a_multiple_of_64_with_mean_rows(tiny_llama_dir) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    old = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).get_input_embeddings().weight.detach()
    old_len = len(AutoTokenizer.from_pretrained(tiny_llama_dir))
    module = _module(tiny_llama_dir, id_noise_std=0.0)
    weight = module.backbone.get_input_embeddings().weight.detach()
    assert weight.shape[0] % 64 == 0 and weight.shape[0] >= old_len + 5
    assert module.backbone.get_output_embeddings().weight is module.backbone.get_input_embeddings().weight  # tied
    assert module.tokenizer.convert_ids_to_tokens(list(module.layout.model_id_tokens)) == [
        f"<Model_{j}>" for j in range(5)
    ]
    torch.testing.assert_close(weight[:old_len], old[:old_len])
    torch.testing.assert_close(weight[old_len:], old[:old_len].mean(0).expand(weight.shape[0] - old_len, -1))
    # the default adds N(0, hidden^-0.5) noise so that the five id tokens start apart (§7)
    torch.manual_seed(0)
    noisy = _module(tiny_llama_dir).backbone.get_input_embeddings().weight.detach()
    spread = noisy[list(module.layout.model_id_tokens)] - old[:old_len].mean(0)
    assert spread.std().item() == pytest.approx(32**-0.5, rel=0.3)


def test_routing_never_reads_responses(tiny_llama_dir, examples) -> None:
    L.seed_everything(0)
    module = _module(tiny_llama_dir)
    seen: list[tuple[str, torch.Tensor]] = []
    stage = {"now": "train"}
    module.decoder.register_forward_pre_hook(
        lambda _m, _a, kwargs: seen.append((stage["now"], kwargs["input_ids"].clone())), with_kwargs=True
    )
    response_tokens = torch.tensor(
        sorted(set(module.tokenizer.convert_tokens_to_ids([f"Ġ{w}" for w in RESPONSE_WORDS])))
    )
    assert module.tokenizer.unk_token_id not in response_tokens.tolist()
    trainer = make_trainer(max_steps=1)
    trainer.fit(module, make_loader(module, examples, batch_size=4))
    assert all(torch.isin(ids, response_tokens).any() for s, ids in seen if s == "train")  # training reads them
    stage["now"] = "eval"
    trainer.validate(module, make_loader(module, examples, batch_size=4), verbose=False)
    trainer.test(module, make_loader(module, examples, batch_size=4), verbose=False)
    features = [module.featurize(ex) for ex in examples]
    scores = module.predict_scores(module.collate(features))
    evaluated = [ids for s, ids in seen if s == "eval"]
    assert len(evaluated) == 3 + 3 + 1
    assert not any(torch.isin(ids, response_tokens).any() for ids in evaluated)
    longest = max(len(f["prompt_ids"]) for f in features)
    assert evaluated[-1].shape == (12, longest + 5)  # prompt + the five id tokens, nothing else
    # the same prompts without any responses (or scores) route identically
    bare = [module.featurize({"prompt_id": ex["prompt_id"], "prompt": ex["prompt"]}) for ex in examples]
    assert all(f["response_ids"] == [] for f in bare)
    batch = module.collate(bare)
    assert torch.isnan(batch["scores"]).all()
    torch.testing.assert_close(module.predict_scores(batch), scores, atol=0, rtol=0)


def test_checkpoint_round_trip_restores_tokens_and_logits(tiny_llama_dir, examples, tmp_path) -> None:
    L.seed_everything(0)
    module = _module(tiny_llama_dir, dropout=0.1, max_response_tokens=4)
    trainer = make_trainer(max_steps=2)
    trainer.fit(module, make_loader(module, examples, batch_size=4))
    path = tmp_path / "clm.ckpt"
    trainer.save_checkpoint(path)
    torch.manual_seed(123)  # a different noise draw for the fresh id rows: the checkpoint must overwrite it
    loaded = LookaheadCLM.load_from_checkpoint(path)
    assert loaded.config == module.config and loaded.layout == module.layout
    assert loaded.featurize_fingerprint() == module.featurize_fingerprint()
    batch = module.collate([module.featurize(ex) for ex in examples])
    torch.testing.assert_close(loaded.predict_scores(batch), module.predict_scores(batch), atol=0, rtol=0)
    # a plain state_dict round trip into a freshly built module as well
    fresh = _module(tiny_llama_dir, dropout=0.1, max_response_tokens=4)
    fresh.load_state_dict(module.state_dict())
    torch.testing.assert_close(fresh.predict_scores(batch), module.predict_scores(batch), atol=0, rtol=0)


def test_featurize_fingerprint_and_bad_settings(tiny_llama_dir, examples) -> None:
    module = _module(tiny_llama_dir, max_response_tokens=4)
    features = module.featurize(examples[0])
    assert all(len(r) <= 4 for r in features["response_ids"])
    assert (
        module.featurize_fingerprint()
        == _module(tiny_llama_dir, max_response_tokens=4, aux_weight=1.0).featurize_fingerprint()
    )
    assert module.featurize_fingerprint() != _module(tiny_llama_dir, max_response_tokens=5).featurize_fingerprint()
    assert module.tokenizer.pad_token_id == module.tokenizer.eos_token_id  # no pad token: EOS pads
    with pytest.raises(LookaheadError, match="3 responses"):
        module.featurize({**examples[0], "responses": ["a", "b", "c"]})
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
