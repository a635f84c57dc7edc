"""AlpacaEval 2.0: 805 instructions, each model judged against the gpt4_1106_preview reference.

Layout under ``test/AlpacaEval/``: ``instructions.jsonl`` and, per model, ``<m>/<ANNOTATOR>/annotations.json``
(a list aligned with the instructions) plus, for most models, that folder's ``leaderboard.csv``.
The score of model ``m`` on an instruction is the annotator's ``preference`` in [1, 2]
(1 = the reference wins, 2 = ``m`` wins), where ``output_2`` is ``m``'s answer.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_lookahead.data.io import iter_jsonl, read_json, read_text, require, resolve
from lightning_lookahead.data.readers._common import mapping, select_pool
from lightning_lookahead.data.schema import PAPER_CANDIDATES, RoutingExample, check_score
from lightning_lookahead.errors import DataError, unknown_name

BENCHMARK = "AlpacaEval"
FOLDER = "test/AlpacaEval"
ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
INSTRUCTIONS = "instructions.jsonl"
INSTRUCTION_FIELDS = ("instruction", "reference", "dataset")

#: Models the public data ships for AlpacaEval (the paper pool plus 11 extra).
KNOWN_MODELS: tuple[str, ...] = (
    *PAPER_CANDIDATES,
    "DeepSeek-Coder-V2-Instruct",
    "DeepSeek-V2-Chat-0628",
    "Llama-3.2-3B-Instruct",
    "Meta-Llama-3-70B-Instruct",
    "Meta-Llama-3-8B-Instruct",
    "Mistral-Large-Instruct-2407",
    "Qwen2.5-1.5B-Instruct",
    "Qwen2.5-72B-Instruct",
    "deepseek-coder-6.7b-instruct",
    "gemma-2-27b-it",
    "gemma-2-9b-it",
)


def annotations_file(model: str) -> str:
    """Path of a model's annotations, relative to the benchmark folder (without ``.gz``)."""
    return f"{model}/{ANNOTATOR}/annotations.json"


def leaderboard_file(model: str) -> str:
    """Path of a model's leaderboard, relative to the benchmark folder (without ``.gz``)."""
    return f"{model}/{ANNOTATOR}/leaderboard.csv"


def available_models(root: Path) -> list[str]:
    """Models with an annotations file on disk."""
    folder = root / FOLDER
    if not folder.is_dir():
        return []
    return sorted(d.name for d in folder.iterdir() if d.is_dir() and _has(d / ANNOTATOR / "annotations.json"))


def _has(path: Path) -> bool:
    """Whether ``path`` or ``path.gz`` exists."""
    return path.exists() or path.with_name(path.name + ".gz").exists()


def required_files(candidates: Sequence[str]) -> list[str]:
    """Files (relative to the benchmark folder, without ``.gz``) that loading ``candidates`` reads."""
    return [INSTRUCTIONS, *(annotations_file(m) for m in candidates)]


def read_instructions(root: Path) -> list[dict[str, str]]:
    """The 805 instructions in file order; their index is the item id."""
    path = resolve(root / FOLDER / INSTRUCTIONS)
    rows = []
    for line, obj in iter_jsonl(path):
        rows.append({key: require(obj, key, path, line=line, kind=str) for key in INSTRUCTION_FIELDS})
    return rows


def read_annotations(root: Path, model: str) -> tuple[Path, list[dict[str, Any]]]:
    """A model's annotation list (and the file it came from, for error messages)."""
    path = resolve(root / FOLDER / annotations_file(model))
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(path, f"expected a JSON list of annotations, got {type(data).__name__}")
    return path, data


def load(root: Path, candidates: Sequence[str] = PAPER_CANDIDATES) -> list[RoutingExample]:
    """One record per instruction with each candidate's answer and preference.

    Annotations are matched to instructions by position, so each annotation's ``instruction``
    must equal the instruction at the same index; a mismatch is a located error.
    """
    pool = select_pool(candidates, KNOWN_MODELS, available_models(root), BENCHMARK)
    instructions = read_instructions(root)
    responses: list[list[str]] = [[] for _ in instructions]
    scores: list[list[float]] = [[] for _ in instructions]
    reference: list[str] = []
    generator_1: list[str] = []
    for j, model in enumerate(pool):
        path, annotations = read_annotations(root, model)
        if len(annotations) != len(instructions):
            problem = f"has {len(annotations)} annotations, expected {len(instructions)} (one per instruction)"
            raise DataError(path, problem)
        for i, (inst, ann) in enumerate(zip(instructions, annotations, strict=True)):
            key = f"[{i}]"
            ann = mapping(ann, path, key)
            text = _field(ann, "instruction", path, key)
            if text != inst["instruction"]:
                raise DataError(path, f"instruction differs from {INSTRUCTIONS} line {i + 1}: {text[:60]!r}", key=key)
            responses[i].append(_field(ann, "output_2", path, key))
            if "preference" not in ann:
                raise DataError(path, "missing field 'preference'", key=f"{key}.preference")
            scores[i].append(check_score(ann["preference"], str(path), key=f"{key}.preference"))
            if j == 0:
                reference.append(_field(ann, "output_1", path, key))
                generator_1.append(_field(ann, "generator_1", path, key))
    return [
        RoutingExample(
            prompt_id=f"alpacaeval-{i}",
            prompt=inst["instruction"].strip(),
            responses=tuple(responses[i]),
            scores=tuple(scores[i]),
            benchmark=BENCHMARK,
            extras={
                "instruction": inst["instruction"],
                "reference": reference[i],
                "dataset": inst["dataset"],
                "generator_1": generator_1[i],
            },
        )
        for i, inst in enumerate(instructions)
    ]


def _field(obj: dict[str, Any], name: str, path: Path, key: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        problem = f"missing field {name!r}" if name not in obj else f"field {name!r} should be str"
        raise DataError(path, problem, key=f"{key}.{name}")
    return value


def read_leaderboard_row(root: Path, model: str) -> dict[str, float]:
    """The model's own numeric leaderboard values (``win_rate``, ``length_controlled_winrate``, ...).

    The row is named after the model folder, except where AlpacaEval used the generator's own
    name (``DeepSeek-V2-Chat-0628`` is ``deepseek-chat``); then the annotations' ``generator_2``
    names the row. Non-numeric (``mode``) and empty cells are left out.
    """
    if model not in KNOWN_MODELS and model not in available_models(root):
        raise unknown_name(f"model for {BENCHMARK}", model, sorted({*KNOWN_MODELS, *available_models(root)}))
    path = resolve(root / FOLDER / leaderboard_file(model))
    rows = list(csv.reader(io.StringIO(read_text(path))))
    if not rows:
        raise DataError(path, "empty leaderboard")
    header = rows[0]
    by_name = {row[0]: row for row in rows[1:] if row}
    row = by_name.get(model)
    if row is None:
        _, annotations = read_annotations(root, model)
        generator = annotations[0].get("generator_2") if annotations and isinstance(annotations[0], dict) else None
        row = by_name.get(generator) if isinstance(generator, str) else None
        if row is None:
            raise DataError(path, f"no row named {model!r} (nor its generator name {generator!r})")
    if len(row) != len(header):
        raise DataError(path, f"row {row[0]!r} has {len(row)} cells, header has {len(header)}")
    values: dict[str, float] = {}
    for column, cell in zip(header[1:], row[1:], strict=True):
        try:
            values[column] = float(cell)
        except ValueError:
            continue
    if "win_rate" not in values:
        raise DataError(path, f"row {row[0]!r} has no numeric win_rate", key="win_rate")
    return values
