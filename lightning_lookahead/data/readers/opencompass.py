"""OpenCompass outputs: GSM8k and MATH (one file per model), HumanEval and MBPP (predictions + results).

- ``test/{GSM8k,MATH}/<m>.json``: ``{accuracy, details: {id: {prompt: [{role, prompt}], origin_prediction, correct}}}``.
- ``test/{HumanEval,MBPP}/predictions/<m>.json``: ``{id: {origin_prompt: [{role, prompt}], prediction, gold}}`` and
  ``results/<m>.json``: ``{..., details: {id: {..., is_correct}}}``; both keyed by the same ids.

The score is 1.0 for a correct answer (passing program) and 0.0 otherwise, so a model's mean score
times 100 is the file's own ``accuracy`` / ``humaneval_pass@1`` / ``score``. Every model must cover
the same ids with the same prompt text, because items are joined across models by id.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_lookahead.data.io import read_json, resolve
from lightning_lookahead.data.readers._common import check_same_ids, first_turn, mapping, models_in, select_pool
from lightning_lookahead.data.schema import PAPER_CANDIDATES, RoutingExample, check_score
from lightning_lookahead.errors import DataError

#: Benchmarks whose per-model output is a single file of ``details``.
SINGLE_FILE: tuple[str, ...] = ("GSM8k", "MATH")
#: Code benchmarks, with separate ``predictions/`` and ``results/`` files.
CODE: tuple[str, ...] = ("HumanEval", "MBPP")
BENCHMARKS: tuple[str, ...] = SINGLE_FILE + CODE

PREDICTIONS = "predictions"
RESULTS = "results"

KNOWN_MODELS: tuple[str, ...] = (*PAPER_CANDIDATES, "gemma-2-9b-it")


def _check_benchmark(benchmark: str) -> None:
    if benchmark not in BENCHMARKS:
        raise ValueError(f"not an OpenCompass benchmark: {benchmark!r}")


def available_models(root: Path, benchmark: str) -> list[str]:
    """Models with all their files for ``benchmark`` on disk."""
    _check_benchmark(benchmark)
    folder = root / "test" / benchmark
    if benchmark in SINGLE_FILE:
        return models_in(folder, ".json")
    results = set(models_in(folder / RESULTS, ".json"))
    return [m for m in models_in(folder / PREDICTIONS, ".json") if m in results]


def required_files(benchmark: str, candidates: Sequence[str]) -> list[str]:
    """Files (relative to the benchmark folder, without ``.gz``) that loading ``candidates`` reads."""
    _check_benchmark(benchmark)
    if benchmark in SINGLE_FILE:
        return [f"{m}.json" for m in candidates]
    return [f"{sub}/{m}.json" for m in candidates for sub in (PREDICTIONS, RESULTS)]


def _details(path: Path, data: Any) -> dict[str, Any]:
    data = mapping(data, path)
    if "details" not in data:
        raise DataError(path, "missing field 'details'", key="details")
    return mapping(data["details"], path, "details")


def _read_single(path: Path) -> dict[str, tuple[str, str, float]]:
    """``id -> (prompt, response, score)`` from a GSM8k/MATH file."""
    items = {}
    for item_id, detail in _details(path, read_json(path)).items():
        key = f"details.{item_id}"
        detail = mapping(detail, path, key)
        if "correct" not in detail:
            raise DataError(path, "missing field 'correct'", key=key)
        response = detail.get("origin_prediction", detail.get("prediction"))
        if not isinstance(response, str):
            raise DataError(path, "missing field 'origin_prediction' (or 'prediction')", key=key)
        prompt = first_turn(detail.get("prompt"), path, f"{key}.prompt")
        items[item_id] = (prompt, response, check_score(detail["correct"], str(path), key=f"{key}.correct"))
    return items


def _read_code(pred_path: Path, res_path: Path) -> dict[str, tuple[str, str, float]]:
    """``id -> (prompt, response, score)`` joining a predictions file with its results file by id."""
    predictions = mapping(read_json(pred_path), pred_path)
    results = _details(res_path, read_json(res_path))
    check_same_ids(list(predictions), results, res_path, pred_path.name)
    items = {}
    for item_id, pred in predictions.items():
        pred = mapping(pred, pred_path, item_id)
        result = mapping(results[item_id], res_path, f"details.{item_id}")
        response = pred.get("prediction")
        if not isinstance(response, str):
            raise DataError(pred_path, "missing field 'prediction'", key=item_id)
        if "is_correct" not in result:
            raise DataError(res_path, "missing field 'is_correct'", key=f"details.{item_id}")
        _check_aligned(pred, result, pred_path, res_path, item_id)
        prompt = first_turn(pred.get("origin_prompt"), pred_path, f"{item_id}.origin_prompt")
        score = check_score(result["is_correct"], str(res_path), key=f"details.{item_id}.is_correct")
        items[item_id] = (prompt, response, score)
    return items


def _check_aligned(pred: dict[str, Any], result: dict[str, Any], pred_path: Path, res_path: Path, item_id: str) -> None:
    """Where both files name the task (HumanEval ``gold``/``task_id``, MBPP ``prediction``/``origin``), they must agree.

    Catches a results file whose ids were renumbered relative to its predictions, which an id join alone would miss.
    """
    pairs = (("gold", "task_id"), ("prediction", "origin"))
    for pred_field, res_field in pairs:
        a, b = pred.get(pred_field), result.get(res_field)
        if isinstance(a, str) and isinstance(b, str) and a != b:
            problem = f"{res_field} does not match {pred_path.name}'s {pred_field} for this id"
            raise DataError(res_path, problem, key=f"details.{item_id}")


def load(root: Path, benchmark: str, candidates: Sequence[str] = PAPER_CANDIDATES) -> list[RoutingExample]:
    """One record per item id, in the first candidate's file order; prompt ids are ``<benchmark lower>-<id>``."""
    _check_benchmark(benchmark)
    pool = select_pool(candidates, KNOWN_MODELS, available_models(root, benchmark), benchmark)
    folder = root / "test" / benchmark
    per_model: list[dict[str, tuple[str, str, float]]] = []
    first_name = ""
    for model in pool:
        if benchmark in SINGLE_FILE:
            path = resolve(folder / f"{model}.json")
            items = _read_single(path)
        else:
            path = resolve(folder / PREDICTIONS / f"{model}.json")
            items = _read_code(path, resolve(folder / RESULTS / f"{model}.json"))
        if per_model:
            reference = per_model[0]
            check_same_ids(list(reference), items, path, first_name)
            for item_id, (prompt, _, _) in items.items():
                if prompt != reference[item_id][0]:
                    raise DataError(path, f"prompt differs from the one in {first_name}", key=item_id)
        else:
            first_name = str(path.relative_to(folder))
        per_model.append(items)
    prefix = benchmark.lower()
    return [
        RoutingExample(
            prompt_id=f"{prefix}-{item_id}",
            prompt=prompt.strip(),
            responses=tuple(items[item_id][1] for items in per_model),
            scores=tuple(items[item_id][2] for items in per_model),
            benchmark=benchmark,
            extras={},
        )
        for item_id, (prompt, _, _) in per_model[0].items()
    ]
