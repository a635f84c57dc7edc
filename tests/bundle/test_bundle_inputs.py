"""The numpy input builders give exactly the torch input builders' ids, masks and positions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from lightning_lookahead.bundle.inputs import array_inputs
from lightning_lookahead.bundle.router import BundleRouter
from lightning_lookahead.data.schema import PAPER_CANDIDATES
from lightning_lookahead.inference import TrainedRouter
from lightning_lookahead.inference.bundle_export import input_builder_settings

FIXTURE_PROMPTS = (
    Path(__file__).resolve().parents[1] / "fixtures" / "data" / "test" / "AlpacaEval" / "instructions.jsonl"
)
#: Edge cases: empty, special-token text, model-id token text, unicode, a prompt longer than every window.
EDGE_PROMPTS = [
    "",
    "[CLS] sort [SEP] the [MASK] list [PAD]",
    "[unused0] write [unused3] a function",
    "Écris une fonction — 排序 列表 🙂 naïve café",
    "write a function that returns the sum of every number in a list " * 12,
    "def f(x):\n    return x * 2\n\nprint(f(3))",
]


def real_prompts() -> list[str]:
    lines = FIXTURE_PROMPTS.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["instruction"] for line in lines if line.strip()] + EDGE_PROMPTS


def _torch_batch(router: TrainedRouter, prompts: list[str]) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in router.predictor.inputs.collate(router.featurize_prompts(prompts)).items()}


@pytest.mark.parametrize("kind", ["mlm", "mlc", "routerdc"])
def test_bundle_inputs_equal_the_torch_inputs(tiny_runs, bundles, kind):
    router = TrainedRouter.from_checkpoint(tiny_runs[kind])
    bundle = BundleRouter(bundles[kind])
    prompts = real_prompts()
    expected = _torch_batch(router, prompts)
    got = bundle.inputs.collate(bundle.featurize_prompts(prompts))
    assert list(got) == bundle.keys  # exactly the graph's inputs
    for key in bundle.keys:
        assert got[key].dtype == np.int64
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    # the long prompt really was cut (from the left), so the window is exercised
    window = bundle.meta["input_builder"]["window"]
    assert max(len(r) for r in bundle.featurize_prompts(prompts)) == window


def _minilm_router(kind: str) -> TrainedRouter:
    from lightning_lookahead.errors import LookaheadError
    from lightning_lookahead.models.registry import build_predictor

    model = {"kind": kind, "backbone": "minilm", "max_length": 128 if kind == "mlm" else 64}
    if kind == "mlm":
        model["mask_length"] = 8
    try:
        return TrainedRouter(build_predictor(model, PAPER_CANDIDATES), name=f"minilm_{kind}")
    except (LookaheadError, OSError) as exc:
        pytest.skip(f"the minilm backbone is not available here ({exc})")


@pytest.mark.parametrize("kind", ["mlm", "mlc"])
def test_numpy_inputs_match_on_a_real_wordpiece_vocabulary(tmp_path, kind, request):
    """The shipped MiniLM tokenizer (30k WordPiece, model-id tokens): real benchmark prompts where present."""
    router = _minilm_router(kind)
    router.predictor.tokenizer.backend_tokenizer.save(str(tmp_path / "tokenizer.json"))
    inputs = array_inputs(input_builder_settings(router), Tokenizer.from_file(str(tmp_path / "tokenizer.json")))
    prompts = real_prompts()
    try:
        from lightning_lookahead.data.benchmarks import load_benchmark

        root = request.getfixturevalue("real_data")
        for name in ("AlpacaEval", "MBPP", "MATH"):
            prompts += [ex.prompt for ex in load_benchmark(name, root)[:40]]
    except pytest.skip.Exception:
        pass
    expected = _torch_batch(router, prompts)
    got = inputs.collate([inputs.featurize(p) for p in prompts])
    for key in got:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
