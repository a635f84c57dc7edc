"""Compose an experiment: structured defaults ← experiment YAML (and what it ``extends``) ← command-line overrides.

An experiment file holds only what differs from the defaults in :mod:`lightning_lookahead.config.schema`.
Mistakes (unknown key, wrong type, bad YAML) become one-line :class:`LookaheadError` messages naming the
file and key, with the closest valid key.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from lightning_lookahead.config.schema import ExperimentConfig
from lightning_lookahead.errors import LookaheadError

#: Experiments shipped with the project: ``<repo>/experiments``.
EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "experiments"
#: Keys an experiment file may use beyond the config schema.
FILE_ONLY_KEYS = ("extends",)


def experiment_path(name: str | Path) -> Path:
    """``mlm_math`` → ``experiments/mlm_math.yaml``; ``cpu/mlm_code`` → ``experiments/cpu/mlm_code.yaml``; or a path."""
    path = Path(name)
    if path.suffix in {".yaml", ".yml"} and path.exists():
        return path
    for base in (Path.cwd() / "experiments", EXPERIMENTS_DIR):
        candidate = base / f"{name}.yaml"
        if candidate.exists():
            return candidate
    known = list_experiments()
    hint = difflib.get_close_matches(str(name), known, n=1, cutoff=0.4)
    suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
    raise LookaheadError(f"unknown experiment {str(name)!r}{suggestion} (see `lookahead validate --list`)")


def experiment_name(path: Path) -> str:
    """A run name from the file: ``experiments/cpu/mlm_code.yaml`` → ``cpu_mlm_code``."""
    for base in (Path.cwd() / "experiments", EXPERIMENTS_DIR):
        try:
            return str(path.resolve().relative_to(base.resolve()).with_suffix("")).replace("/", "_")
        except ValueError:
            continue
    return path.stem


def list_experiments() -> list[str]:
    """Names of the shipped experiments, e.g. ``mlm_code`` and ``cpu/mlm_code``."""
    if not EXPERIMENTS_DIR.is_dir():
        return []
    return sorted(str(p.relative_to(EXPERIMENTS_DIR).with_suffix("")) for p in EXPERIMENTS_DIR.rglob("*.yaml"))


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
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


def _layers(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[Path, dict[str, Any]]]:
    """The experiment file and, first, the files it extends (recursively)."""
    if path.resolve() in seen:
        raise LookaheadError(f"{path}: 'extends' forms a cycle")
    data = _load_yaml(path)
    parent = data.pop("extends", None)
    layers: list[tuple[Path, dict[str, Any]]] = []
    if parent is not None:
        if not isinstance(parent, str):
            raise LookaheadError(f"{path} [extends]: expected an experiment name, got {parent!r}")
        layers = _layers(experiment_path(parent), (*seen, path.resolve()))
    return [*layers, (path, data)]


def _valid_keys(node: Any, prefix: str = "") -> list[str]:
    keys = []
    if is_dataclass(node):
        for f in fields(node):
            full = f"{prefix}{f.name}"
            keys.append(full)
            keys += _valid_keys(getattr(node, f.name), full + ".")
    return keys


def _explain(exc: OmegaConfBaseException, source: str) -> LookaheadError:
    """Turn an OmegaConf error into one line naming the source, the key and the closest valid key."""
    key = getattr(exc, "full_key", None) or ""
    if isinstance(exc, ConfigKeyError) or "not in" in str(exc):
        hint = difflib.get_close_matches(key, _valid_keys(ExperimentConfig()), n=1, cutoff=0.6)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        return LookaheadError(f"{source}: unknown config key {key!r}{suggestion}")
    if isinstance(exc, ValidationError):
        message = str(exc).splitlines()[0]
        return LookaheadError(f"{source}: wrong type for {key!r}: {message}")
    return LookaheadError(f"{source}: {str(exc).splitlines()[0]}")


def compose(experiment: str | Path, overrides: Sequence[str] = ()) -> DictConfig:
    """The resolved, validated experiment config (the predictor's ``model`` section is checked too)."""
    path = experiment_path(experiment)
    cfg = OmegaConf.structured(ExperimentConfig(name=experiment_name(path)))
    for source, data in _layers(path):
        model = data.get("model")
        if isinstance(model, dict) and model.get("kind") not in (None, cfg.model.get("kind")):
            cfg.model = {}  # another predictor: its settings replace, not extend, the inherited ones
        try:
            cfg = OmegaConf.merge(cfg, data)
        except OmegaConfBaseException as exc:
            raise _explain(exc, str(source)) from None
    for item in overrides:
        if "=" not in item:
            raise LookaheadError(f"override {item!r}: expected key=value, e.g. trainer.max_epochs=1")
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as exc:
        raise _explain(exc, "command-line override") from None
    _check_model(cfg)
    return cfg


def _check_model(cfg: DictConfig) -> None:
    from lightning_lookahead.routers.registry import validate_model_config

    model = OmegaConf.to_container(cfg.model, resolve=True)
    assert isinstance(model, dict)
    cfg.model = validate_model_config(model)


def to_yaml(cfg: DictConfig) -> str:
    """The config as YAML, for printing at start and saving in the run directory."""
    return OmegaConf.to_yaml(cfg, resolve=True)
