"""Experiment files: finding one by name, the ``extends`` chain, and the benchmark family as a choice.

The family is one setting (``data.family``), so it is not a file per family: ``lookahead train mlm family=math``
picks it, and a name ``<experiment>_<family>`` (``mlm_math``) with no file of its own means the same, so
``make train EXP=mlm_math`` keeps working. Names resolve against ``./experiments`` first, then the shipped ones.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lightning_lookahead.config.schema import FAMILIES
from lightning_lookahead.errors import LookaheadError

#: Experiments shipped with the project: ``<repo>/experiments``.
EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "experiments"
#: ``experiments/tune/``: search spaces of ``lookahead tune``, not experiments.
SEARCH_SPACES_DIR = "tune"
#: Keys an experiment file may use beyond the config schema.
FILE_ONLY_KEYS = ("extends",)


@dataclass(frozen=True)
class Experiment:
    """A resolved experiment name: its file and, for ``<experiment>_<family>`` names, the family it picks."""

    path: Path
    family: str | None = None


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-5`` as a string (it wants ``1.0e-5``); experiment files mean the number."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def search_dirs() -> tuple[Path, ...]:
    return (Path.cwd() / "experiments", EXPERIMENTS_DIR)


def _experiment_file(name: str | Path) -> Path | None:
    path = Path(name)
    if path.suffix in {".yaml", ".yml"} and path.exists():
        return path
    for base in search_dirs():
        candidate = base / f"{name}.yaml"
        if candidate.exists():
            return candidate
    return None


def resolve_experiment(name: str | Path) -> Experiment:
    """``cpu/mlm_code`` → its file; ``mlm_math`` (no such file) → ``mlm`` with family ``math``; or a YAML path."""
    path = _experiment_file(name)
    if path is not None:
        return Experiment(path)
    base, sep, family = str(name).rpartition("_")
    if sep and family in FAMILIES:
        path = _experiment_file(base)
        if path is not None:
            return Experiment(path, family)
    known = list_experiments()
    named = [*known, *(f"{exp}_{fam}" for exp in known for fam in FAMILIES)]
    hint = difflib.get_close_matches(str(name), named, n=1, cutoff=0.4)
    suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
    raise LookaheadError(f"unknown experiment {str(name)!r}{suggestion} (see `lookahead validate --list`)")


def experiment_path(name: str | Path) -> Path:
    """The file an experiment name stands for (``mlm_math`` → ``experiments/mlm.yaml``)."""
    return resolve_experiment(name).path


def experiment_name(path: Path) -> str:
    """A run name from the file: ``experiments/cpu/mlm_code.yaml`` → ``cpu_mlm_code``."""
    for base in search_dirs():
        try:
            return str(path.resolve().relative_to(base.resolve()).with_suffix("")).replace("/", "_")
        except ValueError:
            continue
    return path.stem


def list_experiments() -> list[str]:
    """Names of the shipped experiment files, e.g. ``mlm`` and ``cpu/mlm_code`` (any takes ``family=...``)."""
    if not EXPERIMENTS_DIR.is_dir():
        return []
    names = (str(p.relative_to(EXPERIMENTS_DIR).with_suffix("")) for p in EXPERIMENTS_DIR.rglob("*.yaml"))
    return sorted(name for name in names if not name.startswith(f"{SEARCH_SPACES_DIR}/"))


def load_yaml(path: Path) -> dict[str, Any]:
    """An experiment file as a dict; bad YAML names the file and line."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise LookaheadError(f"{path}{line}: invalid YAML ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LookaheadError(f"{path}: an experiment file must be a mapping of config sections")
    return data


def family_layer(family: str) -> dict[str, Any]:
    """The layer a family choice adds: just ``data.family``."""
    return {"data": {"family": family}}


def experiment_layers(experiment: Experiment, seen: tuple[Path, ...] = ()) -> list[tuple[str, dict[str, Any]]]:
    """``(source, settings)`` from the most basic file of the ``extends`` chain to the experiment's own family."""
    path = experiment.path
    if path.resolve() in seen:
        raise LookaheadError(f"{path}: 'extends' forms a cycle")
    data = load_yaml(path)
    parent = data.pop("extends", None)
    layers: list[tuple[str, dict[str, Any]]] = []
    if parent is not None:
        if not isinstance(parent, str):
            raise LookaheadError(f"{path}: extends: expected an experiment name, got {parent!r}")
        layers = experiment_layers(resolve_experiment(parent), (*seen, path.resolve()))
    layers.append((str(path), data))
    if experiment.family is not None:
        layers.append((f"{path} (family {experiment.family})", family_layer(experiment.family)))
    return layers
