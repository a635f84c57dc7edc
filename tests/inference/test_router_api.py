"""The serving API: train (shrunk) → export → ``TrainedRouter.from_checkpoint`` → the scores the recipe saved."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from tiny_models import save_tiny_bert

from lightning_lookahead.config.compose import compose, compose_data
from lightning_lookahead.costs.rules import DecisionRule
from lightning_lookahead.data.splits import make_splits
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference import TrainedRouter, export_router
from lightning_lookahead.models.registry import build_predictor
from lightning_lookahead.training.recipe import run_experiment

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from recipe_testkit import shrink

FIXTURE_DATA = Path(__file__).resolve().parents[1] / "fixtures" / "data"
WORDS = "def return import class for in if else while print list sort sum count write function number value".split()
#: Interleaved short and long prompts, so sorting by length really permutes them.
PROMPTS = [
    "sort",
    "write a function that returns the sum of every number in a list and print it " * 3,
    "count",
    "def sort list",
    "for value in list if value else print value while count " * 5,
    "write a function",
    "import list class return",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A shrunk cpu/mlm_code and cpu/mlc_code run on the fixture data, each in its own run directory."""
    root = tmp_path_factory.mktemp("inference-runs")
    (root / "backbone").mkdir()
    backbone = save_tiny_bert(root / "backbone", WORDS, dropout=0.0)
    out = {}
    for kind in ("mlm", "mlc"):
        name = f"cpu/{kind}_code"
        tmp = root / kind
        run_experiment(compose(name, [*shrink(name, backbone, FIXTURE_DATA, tmp), "trainer.max_epochs=2"]))
        out[kind] = tmp / "run"
    return out


def _test_examples(run_dir: Path) -> dict:
    """The run's test items, rebuilt from its config.yaml exactly as the recipe split them."""
    data = compose_data(yaml.safe_load((run_dir / "config.yaml").read_text())["data"])
    return make_splits(data, Path(data.data_dir)).test


@pytest.mark.parametrize("kind", ["mlm", "mlc"])
def test_from_checkpoint_reproduces_the_trained_modules_test_scores(runs, kind):
    run_dir = runs[kind]
    router = TrainedRouter.from_checkpoint(run_dir)
    assert router.kind == kind and router.name == f"cpu_{kind}_code"
    assert router.source == run_dir / "export"
    saved = np.load(run_dir / "scores.npz")
    fresh = build_predictor(router.predictor.config, router.candidates)
    fresh_router = TrainedRouter(fresh)
    for bench, examples in _test_examples(run_dir).items():
        assert [e.prompt_id for e in examples] == saved[f"test/{bench}/prompt_ids"].tolist()
        expected = saved[f"test/{bench}/scores"]
        got = router.score_matrix(examples, router.candidates)
        np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-5)
        assert (got.argmax(axis=1) == expected.argmax(axis=1)).all()
        # Not vacuous: an untrained predictor of the same settings scores these items differently.
        assert np.abs(fresh_router.score_matrix(examples, router.candidates) - expected).max() > 1e-3


def test_export_holds_safetensors_metadata_and_tokenizer(runs):
    export = runs["mlm"] / "export"
    meta = json.loads((export / "router.json").read_text())
    assert meta["kind"] == "mlm" and meta["predictor"] == "lightning_lookahead.models.mlm.config.MLMConfig"
    assert meta["candidates"] == list(compose("cpu/mlm_code").data.candidates)
    assert meta["source_checkpoint"] == "checkpoints/best.ckpt"
    assert meta["needs_responses"] is False
    # Mean response length per candidate on the training split: positive, and not all equal on real-ish text.
    lengths = meta["response_tokens"]
    assert set(lengths) == set(meta["candidates"]) and all(v > 0 for v in lengths.values())
    assert len(set(lengths.values())) > 1
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    tensors = load_file(export / "model.safetensors")
    assert "head.output.weight" in tensors
    tokenizer = AutoTokenizer.from_pretrained(export / "tokenizer")
    assert len(tokenizer) == meta["tokenizer"]["size"]


def test_checkpoint_fallback_gives_the_same_scores_as_the_export(runs, tmp_path):
    run_dir = runs["mlc"]
    from_export = TrainedRouter.from_checkpoint(run_dir).score(PROMPTS)
    copy = tmp_path / "old-run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("export"))
    for path in (copy, copy / "checkpoints" / "best.ckpt"):
        router = TrainedRouter.from_checkpoint(path)
        assert router.source == copy / "checkpoints" / "best.ckpt" and router.name == "cpu_mlc_code"
        np.testing.assert_allclose(router.score(PROMPTS), from_export, atol=1e-6)
    last = TrainedRouter.from_checkpoint(copy, checkpoint="last")
    assert last.source == copy / "checkpoints" / "last.ckpt"


def test_length_sorted_batches_return_scores_in_input_order(runs):
    router = TrainedRouter.from_checkpoint(runs["mlm"])
    one_by_one = np.stack([router.score([p], batch_size=1)[0] for p in PROMPTS])
    # Rows must be told apart, or a permutation could pass unnoticed.
    gaps = [np.abs(one_by_one[i] - one_by_one[j]).max() for i in range(len(PROMPTS)) for j in range(i)]
    assert min(gaps) > 1e-4
    lengths = [len(router.predictor.inputs.featurize({"prompt": p, "prompt_id": "x"})["prompt_ids"]) for p in PROMPTS]
    assert sorted(range(len(PROMPTS)), key=lambda i: -lengths[i]) != list(range(len(PROMPTS)))
    np.testing.assert_allclose(router.score(PROMPTS, batch_size=3), one_by_one, atol=1e-5)
    np.testing.assert_allclose(router.score(PROMPTS, batch_size=3, sort_by_length=False), one_by_one, atol=1e-5)
    assert router.score([]).shape == (0, len(router.candidates))


def test_route_decides_with_the_cost_rules(runs):
    router = TrainedRouter.from_checkpoint(runs["mlc"])
    scores = router.score(PROMPTS)
    decisions = router.route(PROMPTS, batch_size=4)
    assert [d.index for d in decisions] == scores.argmax(axis=1).tolist()
    first = decisions[0]
    assert first.model == router.candidates[first.index]
    assert list(first.scores) == router.candidates
    assert first.probabilities[first.model] == pytest.approx(1 / (1 + np.exp(-scores[0, first.index])))
    assert set(first.to_json()) == {"model", "index", "scores", "probabilities"}
    costs = np.arange(len(router.candidates), 0, -1, dtype=float)  # the last candidate is the cheapest
    cheap = router.route(PROMPTS, rule=DecisionRule("penalty", lam=100.0), costs=costs)
    assert {d.index for d in cheap} == {len(router.candidates) - 1}
    carried = router.route(PROMPTS, rule=DecisionRule("penalty", lam=100.0, costs=tuple(costs)))  # the rule's own
    assert [d.index for d in carried] == [d.index for d in cheap]
    with pytest.raises(LookaheadError, match="cost-aware rules need candidate costs"):
        router.route(PROMPTS, rule=DecisionRule("penalty", lam=1.0))
    with pytest.raises(LookaheadError, match="one entry per candidate"):
        router.route(PROMPTS, rule=DecisionRule("penalty", lam=1.0), costs=np.ones(2))


def test_response_reading_predictors_cannot_route_new_prompts(runs, monkeypatch):
    router = TrainedRouter.from_checkpoint(runs["mlc"])
    monkeypatch.setattr(type(router.predictor.config), "needs_responses", True, raising=False)
    with pytest.raises(LookaheadError, match="oracle-style bound that reads the candidates' real responses"):
        router.route(["sort a list"])
    examples = next(iter(_test_examples(runs["mlc"]).values()))
    assert router.score_matrix(examples, router.candidates).shape == (len(examples), len(router.candidates))


def test_score_matrix_reorders_columns_and_rejects_another_pool(runs):
    router = TrainedRouter.from_checkpoint(runs["mlc"])
    examples = next(iter(_test_examples(runs["mlc"]).values()))
    straight = router.score_matrix(examples, router.candidates)
    reversed_pool = router.candidates[::-1]
    np.testing.assert_allclose(router.score_matrix(examples, reversed_pool), straight[:, ::-1], atol=1e-6)
    with pytest.raises(LookaheadError, match="was trained on candidates"):
        router.score_matrix(examples, router.candidates[:2])


def test_bad_paths_and_tampered_runs_give_one_line_errors(runs, tmp_path):
    cases = {}
    with pytest.raises(LookaheadError, match="does not exist") as cases["missing"]:
        TrainedRouter.from_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LookaheadError, match="holds no router") as cases["empty"]:
        TrainedRouter.from_checkpoint(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(LookaheadError, match="not a run directory") as cases["file"]:
        TrainedRouter.from_checkpoint(tmp_path / "notes.txt")
    with pytest.raises(LookaheadError, match="checkpoint must be one of") as cases["which"]:
        TrainedRouter.from_checkpoint(runs["mlc"], checkpoint="first")

    unknown = tmp_path / "unknown-kind"
    shutil.copytree(runs["mlc"] / "export", unknown)
    meta = json.loads((unknown / "router.json").read_text())
    edited = {**meta, "kind": "mlcc", "predictor": "elsewhere.Mod", "model": {**meta["model"], "kind": "mlcc"}}
    (unknown / "router.json").write_text(json.dumps(edited))
    with pytest.raises(LookaheadError, match=r"unknown predictor kind .*'mlcc'.*did you mean 'mlc'") as cases["kind"]:
        TrainedRouter.from_checkpoint(unknown)

    foreign = tmp_path / "foreign-run"
    shutil.copytree(runs["mlc"], foreign)
    config = yaml.safe_load((foreign / "config.yaml").read_text())
    config["data"]["candidates"] = config["data"]["candidates"][::-1]
    (foreign / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(LookaheadError, match="do not belong to this run") as cases["pool"]:
        TrainedRouter.from_checkpoint(foreign)

    mlm_weights = tmp_path / "swapped"
    shutil.copytree(runs["mlc"] / "export", mlm_weights)
    shutil.copy(runs["mlm"] / "export" / "model.safetensors", mlm_weights / "model.safetensors")
    with pytest.raises(LookaheadError, match="do not fit the rebuilt predictor") as cases["weights"]:
        TrainedRouter.from_checkpoint(mlm_weights)
    for name, info in cases.items():
        assert "\n" not in str(info.value), name


class _Payload:
    """Anything that is not a tensor or a plain container: a pickle that would run code on load."""


def test_checkpoints_are_read_with_weights_only(runs, tmp_path):
    state = torch.load(runs["mlc"] / "checkpoints" / "best.ckpt", weights_only=True)
    state["callbacks"] = {"evil": _Payload()}
    torch.save(state, tmp_path / "evil.ckpt")
    with pytest.raises(LookaheadError, match="refused by weights_only loading"):
        TrainedRouter.from_checkpoint(tmp_path / "evil.ckpt")


def test_export_replaces_an_existing_export_atomically(runs, tmp_path):
    router = TrainedRouter.from_checkpoint(runs["mlc"])
    out = tmp_path / "export"
    export_router(router.predictor, out, name="first")
    export_router(router.predictor, out, name="second")
    assert json.loads((out / "router.json").read_text())["name"] == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    np.testing.assert_allclose(
        TrainedRouter.from_checkpoint(out).score(PROMPTS[:2]), router.score(PROMPTS[:2]), atol=1e-6
    )
