"""Lookahead-MLM end to end on a tiny BERT: Lightning loop, pinned first loss, curriculum, no leaks, checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from routers_testkit import CANDIDATES, RESPONSE_WORDS, make_batch, make_loader, make_module, make_trainer, score

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.export import load_checkpoint_file
from lightning_lookahead.models.mlm.layout import IGNORE_INDEX
from lightning_lookahead.models.mlm.network import _check_head, find_mlm_head, subsample_labels
from lightning_lookahead.training.modules.mlm import MLMModule

#: First training-step loss (routing BCE + 0.2 · MLM) of the tiny model under seed_everything(0); see the test.
PINNED_MLM_FIRST_LOSS = 1.5467153


def _module(config: dict[str, Any], **optim: Any) -> MLMModule:
    module = make_module(config, lr=1e-3, **optim)
    assert isinstance(module, MLMModule)
    return module


def _response_ids(module: MLMModule) -> set[int]:
    return set(module.inputs.tokenizer.convert_tokens_to_ids(RESPONSE_WORDS))


def test_fit_validate_and_score_log_metrics(mlm_config, examples) -> None:
    L.seed_everything(0)
    module = _module(mlm_config())
    train = make_loader(module.inputs, examples, batch_size=4, train=True)
    trainer = make_trainer(max_steps=3)
    trainer.fit(module, train, make_loader(module.inputs, examples, batch_size=5))
    logged = set(trainer.callback_metrics)
    expected = {"train/loss", "train/routing_loss", "train/aux_loss", "train/mlm_loss", "train/mask_rate"}
    expected |= {"val/loss", "val/reward", "val/normalized_reward", "val/routing_accuracy", "val/mlm_loss"}
    assert expected <= logged
    assert {f"val/pick_share/{c}" for c in CANDIDATES} <= logged

    metrics = trainer.validate(module, make_loader(module.inputs, examples), verbose=False)[0]
    assert 0.0 <= metrics["val/reward"] <= 1.0
    assert 0.0 <= metrics["val/routing_accuracy"] <= 100.0

    module.train()
    scores = score(module, examples, batch_size=5)
    assert scores.shape == (12, 5) and scores.dtype == np.float32
    assert module.training  # the scoring path restores the mode
    # the same prompts get the same logits whatever the batch they come in
    np.testing.assert_allclose(score(module, examples[:7], batch_size=3), scores[:7], atol=1e-5)


def test_first_training_loss_is_pinned_and_equals_hand_computation(mlm_config, examples) -> None:
    # Hand computation on a fresh module: HF's own full MLM forward (not our head split), BCE by hand.
    L.seed_everything(0)
    fresh = _module(mlm_config())
    first = next(iter(make_loader(fresh.inputs, examples, batch_size=4, train=True)))
    built = fresh.inputs.layout.mask(first, 0.3, "right")  # curriculum rate at step 0 is r0 = 0.3
    with torch.no_grad():
        out = fresh.network.backbone(
            input_ids=built["input_ids"],
            attention_mask=built["attention_mask"],
            position_ids=built["position_ids"],
            output_hidden_states=True,
        )
        logits = fresh.network.head(out.hidden_states[-1][:, 0])
    scores = first["scores"]
    lo, hi = scores.amin(1, keepdim=True), scores.amax(1, keepdim=True)
    targets = ((scores - lo) / (hi - lo) >= 0.8).float()
    routing = F.binary_cross_entropy_with_logits(logits, targets)
    mlm = F.cross_entropy(out.logits.flatten(0, 1), built["mlm_labels"].flatten(), ignore_index=IGNORE_INDEX)
    hand = float(routing + 0.2 * mlm)

    L.seed_everything(0)
    module = _module(mlm_config())
    seen: list[dict[str, float]] = []

    class Grab(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            seen.append({k: float(v) for k, v in outputs.items()})

    trainer = make_trainer(max_steps=1, callbacks=[Grab()])
    trainer.fit(module, make_loader(module.inputs, examples, batch_size=4, train=True))
    logged = float(trainer.callback_metrics["train/loss"])
    assert logged == pytest.approx(seen[0]["loss"], abs=1e-6)
    assert seen[0]["routing_loss"] + 0.2 * seen[0]["aux_loss"] == pytest.approx(logged, abs=1e-6)
    assert seen[0]["routing_loss"] == pytest.approx(float(routing), abs=1e-5)
    assert seen[0]["aux_loss"] == pytest.approx(float(mlm), abs=1e-5)
    assert logged == pytest.approx(hand, abs=1e-5)
    assert logged == pytest.approx(PINNED_MLM_FIRST_LOSS, abs=1e-4)


def test_curriculum_counts_global_optimiser_steps(mlm_config, examples) -> None:
    """max_steps 8, warm-up 0.5 → W = 4 steps; with accumulation 2 both micro-batches of a step share the rate."""
    L.seed_everything(0)
    module = _module(mlm_config(start_mask_rate=0.3, mask_warmup_ratio=0.5))
    seen: list[tuple[str, int, float]] = []
    original = module.current_mask_rate

    def spy(stage: str) -> float:
        rate = original(stage)
        seen.append((stage, module.trainer.global_step, rate))
        return rate

    module.current_mask_rate = spy  # type: ignore[method-assign]
    trainer = make_trainer(max_steps=8, accumulate_grad_batches=2, val_check_interval=4, limit_val_batches=1)
    trainer.fit(
        module,
        make_loader(module.inputs, examples, batch_size=2, train=True),
        make_loader(module.inputs, examples, batch_size=4),
    )
    assert trainer.estimated_stepping_batches == 8

    train = [(step, rate) for stage, step, rate in seen if stage == "train"]
    assert len(train) == 16  # 8 optimiser steps × 2 micro-batches
    steps = [step for step, _ in train]
    assert steps == [s for s in range(8) for _ in range(2)]
    for step, rate in train:
        assert rate == pytest.approx(min(0.3 + 0.7 * step / 4, 1.0))
    by_step = dict(train)
    assert by_step[0] == pytest.approx(0.3)  # start
    assert by_step[2] == pytest.approx(0.65)  # mid-warm-up
    assert by_step[4] == by_step[7] == 1.0  # after warm-up
    assert {rate for stage, _, rate in seen if stage == "val"} == {1.0}


def test_validation_and_scoring_never_show_responses(mlm_config, examples) -> None:
    L.seed_everything(0)
    module = _module(mlm_config(mask_warmup_ratio=1.0))
    captured: list[tuple[str, torch.Tensor]] = []
    stage = {"now": "train"}

    def hook(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        captured.append((stage["now"], kwargs["input_ids"].clone()))

    module.network.encoder.register_forward_pre_hook(hook, with_kwargs=True)
    responses = torch.tensor(sorted(_response_ids(module)))
    trainer = make_trainer(max_steps=2)
    trainer.fit(module, make_loader(module.inputs, examples, batch_size=4, train=True))
    assert any(torch.isin(ids, responses).any() for s, ids in captured if s == "train")  # teacher forcing is on
    stage["now"] = "eval"
    trainer.validate(module, make_loader(module.inputs, examples), verbose=False)
    score(module, examples, batch_size=4)
    evaluated = [ids for s, ids in captured if s == "eval"]
    assert len(evaluated) == 3 + 3  # validate and score, batches of 4
    assert not any(torch.isin(ids, responses).any() for ids in evaluated)


def test_sparse_and_dense_mlm_loss_agree(mlm_config, examples) -> None:
    L.seed_everything(0)
    module = _module(mlm_config())
    module.current_mask_rate = lambda stage: 0.5  # type: ignore[method-assign]
    batch = make_batch(module.inputs, examples[:6], train=True)
    results = {}
    for sparse in (True, False):
        module.zero_grad()
        module.network.sparse_mlm = sparse
        out = module.network(module.prepare_batch(batch, "train"))
        assert out.aux_loss is not None
        out.aux_loss.backward()
        grad = module.network.backbone.get_input_embeddings().weight.grad.clone()
        results[sparse] = (out.aux_loss.item(), grad)
    assert results[True][0] == pytest.approx(results[False][0], abs=1e-6)
    torch.testing.assert_close(results[True][1], results[False][1], atol=1e-6, rtol=1e-5)


def test_checkpoint_round_trip_gives_identical_logits(mlm_config, examples, tmp_path: Path) -> None:
    L.seed_everything(0)
    module = _module(mlm_config(dropout=0.1))
    trainer = make_trainer(max_steps=2)
    trainer.fit(module, make_loader(module.inputs, examples, batch_size=4, train=True))
    path = tmp_path / "mlm.ckpt"
    trainer.save_checkpoint(path)
    hparams = torch.load(path, weights_only=False)["hyper_parameters"]
    assert type(hparams["model"]) is dict and hparams["model"]["mask_length"] == 4
    assert hparams["candidates"] == CANDIDATES

    loaded = load_checkpoint_file(path)
    assert loaded.config == module.config and loaded.inputs.layout == module.inputs.layout
    np.testing.assert_array_equal(score(loaded, examples), score(module, examples))


def test_featurize_keeps_prompt_whole_and_collate_cuts_it(mlm_config, examples) -> None:
    inputs = _module(mlm_config(max_length=34)).inputs  # prompt budget 34 − 2 − 5·5 = 7 tokens
    long = {**examples[0], "prompt": " ".join(["write", "a", "function"] * 5)}
    features = inputs.featurize(long)
    assert len(features["prompt_ids"]) == 15
    assert all(len(r) <= 4 for r in features["response_ids"])
    batch = inputs.collate([features])
    assert all(isinstance(v, torch.Tensor) for v in batch.values())  # collate returns tensors only
    assert batch["input_ids"][0, 1:8].tolist() == features["prompt_ids"][-7:]
    without = inputs.featurize({k: v for k, v in long.items() if k not in ("responses", "scores")})
    assert without["response_ids"] == [[]] * 5
    assert torch.isnan(inputs.collate([without])["scores"]).all()
    with pytest.raises(LookaheadError, match="3 responses"):
        inputs.featurize({**long, "responses": ["a", "b", "c"]})


def test_fingerprint_tracks_settings_that_change_features(mlm_config) -> None:
    a = _module(mlm_config()).inputs.fingerprint
    assert a == _module(mlm_config(mlm_weight=0.5)).inputs.fingerprint
    assert a != _module(mlm_config(mask_length=3)).inputs.fingerprint


def test_bad_settings_fail_before_loading(mlm_config) -> None:
    with pytest.raises(LookaheadError, match="exceeds the backbone's limit of 64 tokens"):
        _module(mlm_config(max_length=128))
    with pytest.raises(LookaheadError, match=r"model\.pooling: unknown config key"):
        _module(mlm_config(pooling="cls"))  # an MLC key
    with pytest.raises(LookaheadError, match="no room for the prompt"):
        _module(mlm_config(max_length=20))


def _tiny(kind: str, vocab_size: int):
    import transformers as tf

    common = {"vocab_size": vocab_size, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    if kind == "modernbert":
        ids = {"pad_token_id": 0, "cls_token_id": 2, "sep_token_id": 3, "bos_token_id": 2, "eos_token_id": 3}
        return tf.ModernBertForMaskedLM(
            tf.ModernBertConfig(hidden_size=32, max_position_embeddings=64, **common, **ids)
        )
    if kind == "roberta":
        return tf.RobertaForMaskedLM(tf.RobertaConfig(hidden_size=32, max_position_embeddings=66, **common))
    if kind == "electra":
        return tf.ElectraForMaskedLM(tf.ElectraConfig(embedding_size=16, hidden_size=32, **common))
    return tf.DistilBertForMaskedLM(tf.DistilBertConfig(vocab_size=vocab_size, dim=32, n_layers=2, n_heads=2))


@pytest.mark.parametrize(
    ("kind", "names"),
    [
        ("modernbert", ("head", "decoder")),
        ("roberta", ("lm_head",)),
        ("electra", ("generator_predictions", "generator_lm_head")),
    ],
)
def test_mlm_head_is_found_without_bert_names(kind: str, names: tuple[str, ...]) -> None:
    torch.manual_seed(0)
    model = _tiny(kind, 40)
    assert find_mlm_head(model) == names
    _check_head(model, names, 2, 3)  # base model + head reproduce the model's own logits


def test_a_head_that_is_not_a_plain_chain_is_rejected() -> None:
    model = _tiny("distilbert", 40)  # its activation is registered before the dense layer it follows
    with pytest.raises(LookaheadError, match="not supported by Lookahead-MLM"):
        _check_head(model, find_mlm_head(model), 2, 3)


def test_modernbert_backbone_trains_and_routes(tiny_mlm_dir: Path, tmp_path: Path, mlm_config, examples) -> None:
    import shutil

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_mlm_dir)
    torch.manual_seed(0)
    out = tmp_path / "tiny-modernbert"
    _tiny("modernbert", len(tokenizer)).save_pretrained(out)
    for name in tiny_mlm_dir.iterdir():
        if "token" in name.name or name.name == "vocab.txt":
            shutil.copy(name, out / name.name)
    L.seed_everything(0)
    module = _module(mlm_config(backbone=str(out)))
    assert module.network.lm_head_names == ("head", "decoder")
    trainer = make_trainer(max_steps=2)
    # 2 steps = 1 epoch
    trainer.fit(module, make_loader(module.inputs, examples, 6, train=True), make_loader(module.inputs, examples))
    assert np.isfinite(float(trainer.callback_metrics["val/mlm_loss"]))
    assert score(module, examples).shape == (12, 5)


def test_mlm_max_predictions_keeps_a_random_subset_of_labels():
    labels = torch.full((2, 10), -100)
    labels[0, :6] = torch.arange(6)
    labels[1, 3:9] = torch.arange(6)
    torch.manual_seed(0)
    kept = subsample_labels(labels, 5)
    mask = kept != -100
    assert int(mask.sum()) == 5 and bool((kept[mask] == labels[mask]).all())
    assert subsample_labels(labels, 50) is labels


def test_without_response_modeling_training_skips_the_mlm_loss_but_validation_reports_it(mlm_config, examples):
    L.seed_everything(0)
    plain, ablated = _module(mlm_config()), _module(mlm_config(mlm_weight=0.0))
    ablated.load_state_dict(plain.state_dict())
    batch = make_batch(ablated.inputs, examples[:4], train=True)
    assert "mlm_labels" not in ablated.prepare_batch(batch, "train")
    assert ablated.network(ablated.prepare_batch(batch, "train")).aux_loss is None
    assert ablated.network(ablated.prepare_batch(batch, "val")).aux_loss is not None
    # the curriculum still shows the same response prefixes: only the zero-weight loss is skipped
    torch.testing.assert_close(
        ablated.prepare_batch(batch, "train")["input_ids"], plain.prepare_batch(batch, "train")["input_ids"]
    )
    # the skipped term had weight 0: the training loss is the routing loss of the same weights
    plain.eval(), ablated.eval()
    with torch.no_grad():
        routing = plain.compute_routing_loss(plain.network(batch).logits, batch["scores"])
        assert float(ablated.total_loss(batch, "val")) == pytest.approx(float(routing), abs=1e-6)
