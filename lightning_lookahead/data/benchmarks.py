"""One entry point per data source: load a test benchmark or a training set by name.

Callers name sources (``"GSM8k"``, ``"SelfOSSInstructSC2_filtered2"``) and get :class:`RoutingExample`
lists; which reader and which files that takes is decided here only. :func:`required_files` lets the
CLI say which experiments a missing file blocks without loading anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from lightning_lookahead.data.readers import alpacaeval, arenahard, mtbench, opencompass, trainsets
from lightning_lookahead.data.schema import BENCHMARKS, PAPER_CANDIDATES, TRAIN_SETS, RoutingExample, check_candidates
from lightning_lookahead.errors import DataError, unknown_name

FETCH_HINT = "run `lookahead data fetch` to get the benchmark data"


@dataclass(frozen=True)
class _Source:
    """How to read one benchmark or training set."""

    folder: str
    known_models: tuple[str, ...]
    on_disk: Callable[[Path], list[str]]
    files: Callable[[Sequence[str]], list[str]]
    read: Callable[[Path, Sequence[str]], list[RoutingExample]]


def _opencompass(name: str) -> _Source:
    return _Source(
        folder=f"test/{name}",
        known_models=opencompass.KNOWN_MODELS,
        on_disk=lambda root: opencompass.available_models(root, name),
        files=lambda cands: opencompass.required_files(name, cands),
        read=lambda root, cands: opencompass.load(root, name, cands),
    )


def _trainset(name: str) -> _Source:
    return _Source(
        folder=f"train/{name}",
        known_models=trainsets.KNOWN_MODELS,
        on_disk=lambda root: trainsets.available_models(root, name),
        files=lambda cands: trainsets.required_files(name, cands),
        read=lambda root, cands: trainsets.load(root, name, cands),
    )


def _module_source(module: ModuleType) -> _Source:
    return _Source(module.FOLDER, module.KNOWN_MODELS, module.available_models, module.required_files, module.load)


_BENCHMARK_SOURCES: dict[str, _Source] = {
    "AlpacaEval": _module_source(alpacaeval),
    "ArenaHard": _module_source(arenahard),
    "MT-Bench": _module_source(mtbench),
    **{name: _opencompass(name) for name in opencompass.BENCHMARKS},
}
_TRAIN_SOURCES: dict[str, _Source] = {name: _trainset(name) for name in TRAIN_SETS}


def _source(name: str) -> _Source:
    """A benchmark or training set by name, with a did-you-mean hint for typos."""
    if name in _BENCHMARK_SOURCES:
        return _BENCHMARK_SOURCES[name]
    if name in _TRAIN_SOURCES:
        return _TRAIN_SOURCES[name]
    raise unknown_name("benchmark or training set", name, [*BENCHMARKS, *TRAIN_SETS])


def _check_root(root: Path) -> None:
    if not Path(root).is_dir():
        raise DataError(root, f"data directory not found ({FETCH_HINT})")


def load_benchmark(name: str, root: Path, candidates: Sequence[str] = PAPER_CANDIDATES) -> list[RoutingExample]:
    """A test benchmark's items, with responses and raw scores in ``candidates`` order."""
    if name not in _BENCHMARK_SOURCES:
        raise unknown_name("benchmark", name, BENCHMARKS)
    _check_root(root)
    return _BENCHMARK_SOURCES[name].read(Path(root), tuple(candidates))


def load_train_set(name: str, root: Path, candidates: Sequence[str] = PAPER_CANDIDATES) -> list[RoutingExample]:
    """All prompts of a training set (train and validation together; see :func:`split_train_val`)."""
    if name not in _TRAIN_SOURCES:
        raise unknown_name("training set", name, TRAIN_SETS)
    _check_root(root)
    return _TRAIN_SOURCES[name].read(Path(root), tuple(candidates))


def load_eval_ids(name: str, root: Path) -> list[str]:
    """The prompt ids of a training set that form its validation split."""
    if name not in _TRAIN_SOURCES:
        raise unknown_name("training set", name, TRAIN_SETS)
    _check_root(root)
    return trainsets.load_eval_ids(Path(root), name)


def benchmark_models(name: str, root: Path) -> list[str]:
    """Models whose files for ``name`` (a benchmark or training set) are on disk, sorted."""
    return _source(name).on_disk(Path(root))


def known_models(name: str) -> list[str]:
    """Models the public data ships for ``name``, whether or not they are on disk."""
    return list(_source(name).known_models)


def required_files(name: str, candidates: Sequence[str] = PAPER_CANDIDATES, *, root_relative: bool = True) -> list[str]:
    """The files (without ``.gz``) loading ``name`` for ``candidates`` reads.

    Paths are relative to the data root (``test/GSM8k/Yi-1.5-34B-Chat.json``), or to the source's
    own folder when ``root_relative`` is false. Training sets include ``eval_ids.json``.
    Model names are checked against the models the source is known to ship.
    """
    source = _source(name)
    check_candidates(candidates, source.known_models, name)
    files = source.files(tuple(candidates))
    return [f"{source.folder}/{f}" for f in files] if root_relative else files


def missing_files(name: str, root: Path, candidates: Sequence[str] = PAPER_CANDIDATES) -> list[str]:
    """The :func:`required_files` that are absent under ``root`` (neither plain nor ``.gz``)."""
    root = Path(root)
    return [f for f in required_files(name, candidates) if not _exists(root / f)]


def _exists(path: Path) -> bool:
    return path.exists() or path.with_name(path.name + ".gz").exists()


def split_train_val(
    examples: Iterable[RoutingExample], eval_ids: Iterable[str]
) -> tuple[list[RoutingExample], list[RoutingExample]]:
    """Split by held-out ids: validation = ids in ``eval_ids`` (kept as they are); the rest is training.

    Training prompts where any candidate's response is empty are dropped: an empty response is a failed
    generation, not an answer to learn to predict (the original drops them too). Order is preserved.
    """
    held_out = set(eval_ids)
    train: list[RoutingExample] = []
    val: list[RoutingExample] = []
    for ex in examples:
        if ex.prompt_id in held_out:
            val.append(ex)
        elif all(r != "" for r in ex.responses):
            train.append(ex)
    return train, val
