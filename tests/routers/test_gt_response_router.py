"""The response-aware upper bound (gt_response) on the tiny BERT: inputs, truncation, training, reload."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
from routers_testkit import PROMPT_WORDS, RESPONSE_WORDS, make_features, make_loader, make_module, make_trainer, score

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.export import load_checkpoint_file
from lightning_lookahead.models.gt_response.config import GTResponseConfig
from lightning_lookahead.models.gt_response.inputs import split_budget
from lightning_lookahead.models.mlc.config import MLCConfig
from lightning_lookahead.models.predictor import PredictorConfig
from lightning_lookahead.models.registry import predictor_spec
from lightning_lookahead.training.modules.predictor import PredictorModule


def _module(tiny_mlm_dir: Path, **model: Any) -> PredictorModule:
    return make_module({"kind": "gt_response", "backbone": str(tiny_mlm_dir), "max_length": 32, **model}, lr=1e-3)


def test_registered_and_flagged_as_needing_responses() -> None:
    assert predictor_spec("gt_response").config is GTResponseConfig
    assert GTResponseConfig.needs_responses is True
    assert PredictorConfig.needs_responses is False and MLCConfig.needs_responses is False
    assert "UPPER BOUND" in (GTResponseConfig.__doc__ or "") + (sys.modules[GTResponseConfig.__module__].__doc__ or "")


def test_pair_layout_with_token_types(tiny_mlm_dir: Path, examples) -> None:
    inputs = _module(tiny_mlm_dir).inputs
    ex = {**examples[0], "prompt": "sort a list", "responses": ["alpha beta", "gamma", "delta", "eta", "zeta"]}
    feats = inputs.featurize(ex)
    tok = inputs.tokenizer
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
    inputs = _module(tiny_mlm_dir, max_length=11).inputs  # 8 content tokens + [CLS] [SEP] [SEP]
    prompt = PROMPT_WORDS[:10]
    response = RESPONSE_WORDS[:10]
    ex = {**examples[0], "prompt": " ".join(prompt), "responses": [" ".join(response)] * 5}
    tokens = inputs.tokenizer.convert_ids_to_tokens(inputs.featurize(ex)["input_ids"][0])
    assert tokens == ["[CLS]", *prompt[-4:], "[SEP]", *response[:4], "[SEP]"]

    inputs = _module(tiny_mlm_dir, max_length=11, max_response_tokens=6).inputs
    tokens = inputs.tokenizer.convert_ids_to_tokens(inputs.featurize(ex)["input_ids"][0])
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
    before, after = score(module, base), score(module, changed)
    assert before.shape == (3, 5)
    diff = np.abs(before - after) > 1e-6
    assert np.argwhere(diff).tolist() == [[1, 2]]


def test_missing_responses_are_an_error(tiny_mlm_dir: Path, examples) -> None:
    inputs = _module(tiny_mlm_dir).inputs
    with pytest.raises(LookaheadError, match="has no responses"):
        inputs.featurize({**examples[0], "responses": []})
    feats = inputs.featurize({**examples[0], "responses": examples[0]["responses"][:3]})
    with pytest.raises(LookaheadError, match="3 responses, expected one per candidate"):
        inputs.collate([feats])


def test_train_and_score_then_reload_gives_identical_logits(tiny_mlm_dir: Path, examples, tmp_path: Path) -> None:
    L.seed_everything(0)
    module = _module(tiny_mlm_dir)
    trainer = make_trainer(max_steps=3)
    start = score(module, examples[:4])
    train = make_loader(module.inputs, examples, shuffle=True, train=True)
    trainer.fit(module, train, make_loader(module.inputs, examples, 6))
    assert {"train/loss", "val/reward", "val/routing_accuracy"} <= set(trainer.callback_metrics)
    assert not np.allclose(start, score(module, examples[:4]))  # the steps changed the scorer
    assert len(make_features(module.inputs, examples)) == 12

    path = tmp_path / "gt.ckpt"
    trainer.save_checkpoint(path)
    reloaded = load_checkpoint_file(path)
    assert reloaded.config == module.config
    np.testing.assert_array_equal(score(reloaded, examples), score(module, examples))
