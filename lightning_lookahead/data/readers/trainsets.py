"""Training sets: ``train/<DS>/instructions.jsonl`` joined with ``train/<DS>/<SCOREDIR>/<m>.jsonl``.

The original zips the instruction and score files line by line. Here they are joined on
``prompt_id``, and every file must hold exactly the instructions' ids, once each: a silently
misaligned label file would train on the wrong scores without any other symptom.
``tags`` and ``cluster*`` fields are not required (the main methods do not use them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_lookahead.data.io import iter_jsonl, read_json, require, resolve
from lightning_lookahead.data.readers._common import check_same_ids, models_in, select_pool
from lightning_lookahead.data.schema import PAPER_CANDIDATES, TRAIN_SETS, RoutingExample, check_score
from lightning_lookahead.errors import DataError

INSTRUCTIONS = "instructions.jsonl"
EVAL_IDS = "eval_ids.json"

KNOWN_MODELS: tuple[str, ...] = PAPER_CANDIDATES


def _check_name(name: str) -> None:
    if name not in TRAIN_SETS:
        raise ValueError(f"not a training set: {name!r}")


def folder(root: Path, name: str) -> Path:
    """The training set's folder under the data root."""
    return root / "train" / name


def available_models(root: Path, name: str) -> list[str]:
    """Models with a score file on disk."""
    _check_name(name)
    return models_in(folder(root, name) / TRAIN_SETS[name], ".jsonl")


def required_files(name: str, candidates: Sequence[str]) -> list[str]:
    """Files (relative to the training set folder, without ``.gz``) that loading ``candidates`` reads."""
    _check_name(name)
    return [INSTRUCTIONS, EVAL_IDS, *(f"{TRAIN_SETS[name]}/{m}.jsonl" for m in candidates)]


def _by_id(path: Path, fields: tuple[str, ...]) -> dict[str, tuple[int, dict[str, Any]]]:
    """Lines keyed by ``prompt_id`` (file order kept), with the given string fields required."""
    rows: dict[str, tuple[int, dict[str, Any]]] = {}
    for line, obj in iter_jsonl(path):
        pid = require(obj, "prompt_id", path, line=line, kind=str)
        if pid in rows:
            raise DataError(path, f"duplicate prompt_id {pid!r} (first on line {rows[pid][0]})", line=line)
        for field in fields:
            require(obj, field, path, line=line, kind=str)
        rows[pid] = (line, obj)
    return rows


def load(root: Path, name: str, candidates: Sequence[str] = PAPER_CANDIDATES) -> list[RoutingExample]:
    """One record per instruction, in ``instructions.jsonl`` order, scores joined by ``prompt_id``."""
    _check_name(name)
    pool = select_pool(candidates, KNOWN_MODELS, available_models(root, name), name)
    base = folder(root, name)
    inst_path = resolve(base / INSTRUCTIONS)
    instructions = _by_id(inst_path, ("prompt",))
    ids = list(instructions)
    responses: dict[str, list[str]] = {pid: [] for pid in ids}
    scores: dict[str, list[float]] = {pid: [] for pid in ids}
    for model in pool:
        path = resolve(base / TRAIN_SETS[name] / f"{model}.jsonl")
        rows = _by_id(path, ("response",))
        check_same_ids(ids, rows, path, inst_path.name)
        for pid, (line, obj) in rows.items():
            responses[pid].append(obj["response"])
            scores[pid].append(check_score(require(obj, "score", path, line=line), str(path), line=line, key="score"))
    return [
        RoutingExample(
            prompt_id=pid,
            prompt=instructions[pid][1]["prompt"].strip(),
            responses=tuple(responses[pid]),
            scores=tuple(scores[pid]),
            benchmark=name,
            extras={},
        )
        for pid in ids
    ]


def load_eval_ids(root: Path, name: str) -> list[str]:
    """The prompt ids held out for validation (``eval_ids.json``: a JSON list of strings)."""
    _check_name(name)
    path = resolve(folder(root, name) / EVAL_IDS)
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(path, f"expected a JSON list of prompt ids, got {type(data).__name__}")
    seen: set[str] = set()
    for i, pid in enumerate(data):
        if not isinstance(pid, str):
            raise DataError(path, f"prompt id should be str, got {type(pid).__name__}", key=f"[{i}]")
        if pid in seen:
            raise DataError(path, f"duplicate prompt id {pid!r}", key=f"[{i}]")
        seen.add(pid)
    return data
