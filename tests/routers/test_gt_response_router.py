"""GTResponseRouter (response-aware upper bound) on the tiny BERT: inputs, truncation, training, reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from routers_testkit import CANDIDATES, PROMPT_WORDS, RESPONSE_WORDS, make_loader, make_trainer

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.routers.base import RouterModule
from lightning_lookahead.routers.gt_response import GTResponseRouter, split_budget
from lightning_lookahead.routers.mlc import MLCRouter
from lightning_lookahead.routers.registry import predictor_class


def _module(tiny_mlm_dir: Path, **model: Any) -> GTResponseRouter:
    cfg = {"kind": "gt_response", "backbone": str(tiny_mlm_dir), "max_length": 32, **model}
    return GTResponseRouter(model=cfg, loss={"name": "bce"}, optim={"lr": 1e-3}, candidates=CANDIDATES)


def test_registered_and_flagged_as_needing_responses() -> None:
    assert predictor_class("gt_response") is GTResponseRouter
    assert GTResponseRouter.needs_responses is True
    assert RouterModule.needs_responses is False and MLCRouter.needs_responses is False
    assert "UPPER BOUND" in (GTResponseRouter.__doc__ or "")


def test_pair_layout_with_token_types(tiny_mlm_dir: Path, examples) -> None:
    module = _module(tiny_mlm_dir)
    ex = {**examples[0], "prompt": "sort a list", "responses": ["alpha beta", "gamma", "delta", "eta", "zeta"]}
    feats = module.featurize(ex)
    tok = module.tokenizer
    assert len(feats["input_ids"]) == 5
    assert tok.convert_ids_to_tokens(feats["input_ids"][0]) == [
        "[CLS]",
        "sort",
        "a",
        "list",
        "[SEP]",
        "alpha",
        "beta",
        "[SEP]",
    ]
    assert feats["token_type_ids"][0] == [0, 0, 0, 0, 0, 1, 1, 1]
    # The same pair as the tokenizer's own pair encoding.
    assert feats["input_ids"][1] == tok("sort a list", "gamma")["input_ids"]


def test_split_budget_shares_fairly() -> None:
    assert split_budget(3, 4, 10, 5) == (3, 4)  # both fit: nothing cut
    assert split_budget(20, 20, 10, 5) == (5, 5)  # both long: each keeps its share
    assert split_budget(2, 20, 10, 5) == (2, 8)  # short prompt hands its slack to the response
    assert split_budget(20, 2, 10, 5) == (8, 2)  # and vice versa
    assert split_budget(20, 20, 10, 3) == (7, 3)  # max_response_tokens = 3


def test_prompt_cut_from_left_response_from_right(tiny_mlm_dir: Path, examples) -> None:
    module = _module(tiny_mlm_dir, max_length=11)  # 8 content tokens + [CLS] [SEP] [SEP]
    prompt = PROMPT_WORDS[:10]
    response = RESPONSE_WORDS[:10]
    ex = {**examples[0], "prompt": " ".join(prompt), "responses": [" ".join(response)] * 5}
    tokens = module.tokenizer.convert_ids_to_tokens(module.featurize(ex)["input_ids"][0])
    assert tokens == ["[CLS]", *prompt[-4:], "[SEP]", *response[:4], "[SEP]"]

    module = _module(tiny_mlm_dir, max_length=11, max_response_tokens=6)
    tokens = module.tokenizer.convert_ids_to_tokens(module.featurize(ex)["input_ids"][0])
    assert tokens == ["[CLS]", *prompt[-2:], "[SEP]", *response[:6], "[SEP]"]

    with pytest.raises(LookaheadError, match=r"max_response_tokens = 8 must be in \[1, 7\]"):
        _module(tiny_mlm_dir, max_length=11, max_response_tokens=8)


def test_changing_one_response_changes_only_its_logit(tiny_mlm_dir: Path, examples) -> None:
    L.seed_everything(0)
    module = _module(tiny_mlm_dir).eval()
    base = examples[:3]
    changed = [dict(ex) for ex in base]
    responses = list(changed[1]["responses"])
    responses[2] = "theta iota kappa kappa"
    changed[1]["responses"] = responses
    before = module.predict_scores(module.collate([module.featurize(ex) for ex in base]))
    after = module.predict_scores(module.collate([module.featurize(ex) for ex in changed]))
    assert before.shape == (3, 5)
    diff = (before - after).abs() > 1e-6
    assert diff.nonzero().tolist() == [[1, 2]]


def test_missing_responses_are_an_error(tiny_mlm_dir: Path, examples) -> None:
    module = _module(tiny_mlm_dir)
    with pytest.raises(LookaheadError, match="has no responses"):
        module.featurize({**examples[0], "responses": []})
    feats = module.featurize({**examples[0], "responses": examples[0]["responses"][:3]})
    with pytest.raises(LookaheadError, match="3 responses, expected one per candidate"):
        module.collate([feats])


def test_train_and_test_then_reload_gives_identical_logits(tiny_mlm_dir: Path, examples, tmp_path: Path) -> None:
    L.seed_everything(0)
    module = _module(tiny_mlm_dir)
    trainer = make_trainer(max_steps=3)
    first = next(iter(make_loader(module, examples)))
    start = module.predict_scores(first)
    trainer.fit(module, make_loader(module, examples, shuffle=True), make_loader(module, examples, 6))
    assert {"train/loss", "val/reward", "val/routing_accuracy"} <= set(trainer.callback_metrics)
    assert not torch.allclose(start, module.predict_scores(first))  # the steps changed the scorer
    trainer.test(module, [make_loader(module, examples[:5]), make_loader(module, examples)], verbose=False)
    assert {k: v.shape for k, v in module.test_logits.items()} == {0: (5, 5), 1: (12, 5)}

    path = tmp_path / "gt.ckpt"
    trainer.save_checkpoint(path)
    reloaded = GTResponseRouter.load_from_checkpoint(path, map_location="cpu")
    assert reloaded.config == module.config
    assert torch.equal(reloaded.predict_scores(first), module.predict_scores(first))
