"""Routing engines on tiny untrained routers: same scores and decisions as fp32, input order kept, ONNX built once."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import save_tiny_bert, save_tiny_llama

from lightning_lookahead.data.schema import PAPER_CANDIDATES
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference import TrainedRouter, export_router, onnx_engine
from lightning_lookahead.inference.engine_names import ENGINES
from lightning_lookahead.models.model_cache import CACHE_ENV
from lightning_lookahead.models.registry import build_predictor

WORDS = "def return import class for in if else while print list sort sum count write function number value".split()
#: Very different lengths, given long and short interleaved, so length-sorted batches really permute them.
PROMPTS = [
    "count",
    "write a function that returns the sum of every number in a list and print it " * 2,
    "sort",
    "for value in list if value else print value",
    "def sort list",
    "import list class return while count number " * 3,
    "write a function",
    "print the number",
]
#: Max |score − fp32 score| each engine may show on these routers (logits of unit scale; onnx-int8 quantises
#: activations per batch, so a prompt's scores also move with its batch-mates by up to this much).
TOLERANCE = {"fp32": 1e-5, "onnx": 1e-4, "bf16": 0.05, "onnx-int8": 0.15}
#: The engines that name one forward path (``auto`` names one of them; its own test is below).
CONCRETE = [e for e in ENGINES if e != "auto"]
#: Std of the sharpened random weights: at BERT's 0.02 every prompt of a random tiny model gets nearly the same scores
#: (rows 1e-3 apart, one pick for all), which would let a permutation or a wrong decision pass unseen.
SHARP_STD = 0.3


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One model cache for the module (exports are shared between tests), never the user's."""
    root = tmp_path_factory.mktemp("model-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(root))
        yield root


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Exports of freshly initialised MLM and MLC routers on a tiny BERT (no training needed)."""
    root = tmp_path_factory.mktemp("engines")
    (root / "backbone").mkdir()
    backbone = save_tiny_bert(root / "backbone", WORDS, dropout=0.0)
    settings = {
        "mlm": {"kind": "mlm", "backbone": str(backbone), "max_length": 64, "mask_length": 4},
        "mlc": {"kind": "mlc", "backbone": str(backbone), "max_length": 64},
    }
    out = {}
    for kind, model in settings.items():
        torch.manual_seed(0)
        predictor = build_predictor(model, PAPER_CANDIDATES)
        with torch.no_grad():
            for weight in predictor.network.backbone.parameters():
                if weight.ndim == 2:
                    weight.normal_(0.0, SHARP_STD)
            predictor.network.head.dense.weight.normal_(0.0, 1.0)
        export_router(predictor, root / kind, name=f"tiny_{kind}")
        out[kind] = root / kind
    return out


@pytest.fixture(scope="module")
def reference(exports) -> dict[str, np.ndarray]:
    return {kind: TrainedRouter.from_checkpoint(path).score(PROMPTS) for kind, path in exports.items()}


@pytest.mark.parametrize("kind", ["mlm", "mlc"])
@pytest.mark.parametrize("engine", CONCRETE)
def test_engine_scores_and_decisions_match_fp32_in_input_order(exports, reference, cache, engine, kind):
    router = TrainedRouter.from_checkpoint(exports[kind], engine=engine)
    assert router.engine == engine
    tol = TOLERANCE[engine]
    expected = reference[kind]
    got = router.score(PROMPTS, batch_size=3)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=tol, rtol=0)
    # Decisions: identical wherever fp32's top-2 margin exceeds what this row's score error can overturn (twice
    # its largest deviation); most prompts must qualify, so the check is not vacuous.
    top2 = np.sort(expected, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * np.abs(got - expected).max(axis=1)
    assert clear.mean() >= 0.75
    assert (got.argmax(axis=1) == expected.argmax(axis=1))[clear].all()
    # Order restoration: one batch of all prompts, length-sorted or not, holds the same padded rows (so the same
    # numerics, even onnx-int8's per-batch scales); only the order differs; rows are far apart, so a swap shows.
    whole = len(PROMPTS)
    gaps = [np.abs(expected[i] - expected[j]).max() for i in range(whole) for j in range(i)]
    assert min(gaps) > 0.05
    sorted_rows = router.score(PROMPTS, batch_size=whole)
    np.testing.assert_allclose(sorted_rows, router.score(PROMPTS, batch_size=whole, sort_by_length=False), atol=1e-5)
    # ... and each row is the prompt scored alone through the same engine (exactly, up to batch-dependent numerics).
    alone = np.stack([router.score([p], batch_size=1)[0] for p in PROMPTS])
    np.testing.assert_allclose(got, alone, atol=tol, rtol=0)
    np.testing.assert_allclose(sorted_rows, alone, atol=tol, rtol=0)
    assert [d.index for d in router.route(PROMPTS, batch_size=4)] == got.argmax(axis=1).tolist()


def test_engines_leave_the_predictors_network_untouched(exports, reference, cache):
    router = TrainedRouter.from_checkpoint(exports["mlm"], engine="bf16")
    assert router.network is not router.predictor.network
    assert all(p.dtype == torch.float32 for p in router.predictor.network.parameters())
    router.use_engine("onnx-int8")
    assert all(p.dtype == torch.float32 for p in router.predictor.network.parameters())
    router.use_engine("fp32")
    assert router.network is router.predictor.network
    np.testing.assert_array_equal(router.score(PROMPTS), reference["mlm"])


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_is_bf16_only_where_the_hardware_computes_it_natively(exports, reference, monkeypatch, native, expected):
    from lightning_lookahead.inference import engines

    monkeypatch.setattr(engines, "native_bf16", lambda device: native)
    router = TrainedRouter.from_checkpoint(exports["mlc"], engine="auto")
    assert router.engine == expected
    np.testing.assert_allclose(router.score(PROMPTS), reference["mlc"], atol=TOLERANCE[expected], rtol=0)


def test_the_python_api_defaults_to_the_exact_engine(exports, reference):
    router = TrainedRouter.from_checkpoint(exports["mlc"])
    assert router.engine == "fp32" and router.network is router.predictor.network


def test_onnx_export_is_built_once_and_reused(exports, reference, cache, monkeypatch):
    first = TrainedRouter.from_checkpoint(exports["mlc"], engine="onnx-int8")
    fp32_file = next((cache / "onnx").glob("mlc-onnx-[0-9a-f]*/model.onnx"))
    int8_file = first.network.path
    assert int8_file.is_file() and int8_file != fp32_file
    stamps = {p: p.stat().st_mtime_ns for p in (fp32_file, int8_file)}

    def refuse(*args, **kwargs):
        raise AssertionError("the cached export was rebuilt")

    monkeypatch.setattr(onnx_engine, "export_onnx", refuse)
    monkeypatch.setattr(onnx_engine, "quantize_onnx", refuse)
    for engine in ("onnx", "onnx-int8"):
        again = TrainedRouter.from_checkpoint(exports["mlc"], engine=engine)
        assert again.network.path == (fp32_file if engine == "onnx" else int8_file)
        np.testing.assert_allclose(again.score(PROMPTS), reference["mlc"], atol=TOLERANCE[engine], rtol=0)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    # Keyed by the weights: other weights of the same architecture are not served the cached graph.
    other = TrainedRouter.from_checkpoint(exports["mlc"])
    with torch.no_grad():
        other.predictor.network.head.output.bias.add_(1.0)
    with pytest.raises(AssertionError, match="rebuilt"):
        other.use_engine("onnx")


def test_an_export_that_drifts_from_torch_is_refused(exports, cache, tmp_path, monkeypatch):
    exported = TrainedRouter.from_checkpoint(exports["mlm"], engine="onnx").network.path
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))  # an empty cache: the export is "built" (a copy) and checked
    monkeypatch.setattr(onnx_engine, "export_onnx", lambda network, keys, batch, out: shutil.copy(exported, out))
    real_run = onnx_engine.run_session
    monkeypatch.setattr(onnx_engine, "run_session", lambda *a: real_run(*a) + 1.0)
    with pytest.raises(LookaheadError, match=r"drifts from the torch forward by 1\.00e") as info:
        TrainedRouter.from_checkpoint(exports["mlm"], engine="onnx")
    assert "\n" not in str(info.value)
    assert [p.name for p in (tmp_path / "onnx").iterdir() if not p.name.endswith(".lock")] == []  # nothing half-built


def test_unknown_engine_is_one_line_with_a_suggestion(exports):
    with pytest.raises(LookaheadError, match=r"unknown engine 'bf61'; did you mean 'bf16'\?") as info:
        TrainedRouter.from_checkpoint(exports["mlc"], engine="bf61")
    assert "\n" not in str(info.value) and "onnx-int8" in str(info.value)
    router = TrainedRouter.from_checkpoint(exports["mlc"])
    with pytest.raises(LookaheadError, match="unknown engine 'int4'"):
        router.use_engine("int4")
    assert router.engine == "fp32"


def test_onnx_refuses_the_clms_attention_masks_and_names_the_engines_that_work(tmp_path, cache):
    backbone = save_tiny_llama(tmp_path / "llama", WORDS)
    torch.manual_seed(0)
    router = TrainedRouter(
        build_predictor({"kind": "clm", "backbone": str(backbone), "max_length": 256}, PAPER_CANDIDATES)
    )
    for engine in ("onnx", "onnx-int8"):
        with pytest.raises(LookaheadError, match=rf"engine '{engine}' cannot run a 'clm' router") as info:
            router.use_engine(engine)
        message = str(info.value)
        assert "'allowed'" in message and "engines that can: fp32, bf16" in message
        assert "\n" not in message
    expected = router.score(PROMPTS[:3])
    router.use_engine("bf16")  # the torch engines run it
    np.testing.assert_allclose(router.score(PROMPTS[:3]), expected, atol=TOLERANCE["bf16"], rtol=0)
