"""Compose an experiment: schema defaults ← experiment YAML (and what it ``extends``) ← command-line overrides.

An experiment file holds only what differs from the defaults in :mod:`lightning_lookahead.config.schema`. After
each layer the merged settings are parsed against the schema, so a mistake (unknown key, wrong type, value outside
its set or range, bad YAML) is one :class:`LookaheadError` line naming the layer and key. Cross-field checks and the
backbone name follow on the whole. ``lookahead validate`` and ``lookahead train`` both go through :func:`compose`,
so they refuse the same configs, before any model or data loads; nothing here imports torch or Lightning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lightning_lookahead.config.cross_field import validate_data, validate_optim, validate_trainer
from lightning_lookahead.config.experiments import (
    EXPERIMENTS_DIR,
    FILE_ONLY_KEYS,
    experiment_layers,
    experiment_name,
    experiment_path,
    list_experiments,
    resolve_experiment,
)
from lightning_lookahead.config.layers import dotlist, merge_layer, parse_layer
from lightning_lookahead.config.schema import DataConfig, ExperimentConfig
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.backbone_names import check_backbone
from lightning_lookahead.typed import config_to_dict

__all__ = [
    "EXPERIMENTS_DIR",
    "FILE_ONLY_KEYS",
    "compose",
    "compose_data",
    "dataset_run_name",
    "experiment_name",
    "experiment_path",
    "list_experiments",
    "to_dict",
    "to_yaml",
]

#: The source named in errors from ``key=value`` arguments.
COMMAND_LINE = "command-line override"
#: ``family=math`` on the command line is short for ``data.family=math``.
FAMILY_SHORTHAND = "family"
NAME_KEY, RUN_DIR_KEY = "name", "run_dir"
#: How an experiment file's name refers to the family (``name: mlm_${data.family}``).
FAMILY_INTERPOLATION = "${data.family}"
#: Suffixes a dataset file's stem drops for the run name (docs/own-models.md, the dataset format).
DATASET_SUFFIXES = ("jsonl", "json", "gz", "parquet")


def _raw(cfg: DictConfig, key: str) -> Any:
    """``cfg[key]`` as written, interpolations unresolved (``mlm_${data.family}``)."""
    return OmegaConf.to_container(cfg, resolve=False)[key]  # type: ignore[index]


def dataset_stem(dataset: str | Path) -> str:
    """A dataset file's name without its format suffixes: ``scored.jsonl.gz`` → ``scored``, ``mine/`` → ``mine``."""
    name = Path(str(dataset).rstrip("/")).name
    while True:
        stem, dot, suffix = name.rpartition(".")
        if not dot or not stem or suffix.lower() not in DATASET_SUFFIXES:
            return name or "dataset"
        name = stem


def dataset_run_name(name: Any, default: str, named_by_file: bool, dataset: str | Path) -> Any:
    """The run name of an experiment trained on ``data.dataset`` (docs/own-models.md, "Training").

    The default name (the experiment file's path) gets the dataset's stem appended: ``cpu/mlm_code`` on
    ``mine.jsonl`` is ``cpu_mlm_code_mine``. A name the experiment file builds from the family
    (``mlm_${data.family}``) takes the dataset's stem in the family's place (``mlm_mine``): the family is not used
    with a dataset. Any other name an experiment file writes is kept as it is.
    """
    stem = dataset_stem(dataset)
    if not named_by_file:
        return f"{default}_{stem}"
    if isinstance(name, str) and FAMILY_INTERPOLATION in name:
        return name.replace(FAMILY_INTERPOLATION, stem)
    return name


def _override_layer(overrides: Sequence[str]) -> DictConfig:
    items = [
        f"data.family{item[len(FAMILY_SHORTHAND) :]}" if item.startswith(f"{FAMILY_SHORTHAND}=") else item
        for item in overrides
    ]
    return dotlist(items, COMMAND_LINE, "trainer.max_epochs=1")


def _switches_kind(cfg: DictConfig, layer: Any) -> bool:
    """True when ``layer`` names another predictor: its ``model:`` settings then replace the inherited ones."""
    plain = OmegaConf.to_container(layer, resolve=False) if OmegaConf.is_config(layer) else layer
    model = plain.get("model") if isinstance(plain, Mapping) else None
    if not isinstance(model, Mapping) or model.get("kind") is None:
        return False
    current = cfg.get("model")
    return not isinstance(current, Mapping | DictConfig) or model.get("kind") != current.get("kind")


def _apply(cfg: DictConfig, layer: Any, source: str) -> tuple[DictConfig, ExperimentConfig]:
    """Merge one layer and parse the result (``model:`` against its kind's config); errors are that layer's."""
    if _switches_kind(cfg, layer):
        cfg.model = {}
    cfg = merge_layer(cfg, layer, source)
    return cfg, parse_layer(ExperimentConfig, cfg, "", source)


def compose(experiment: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """The resolved, validated, typed experiment config; ``model`` is its kind's config, defaults completed.

    With ``data.dataset`` the run is named after the file (:func:`dataset_run_name`) unless the command line sets
    ``name`` or ``run_dir``. OmegaConf layers and resolves inside this module; nothing past it sees a DictConfig.
    """
    chosen = resolve_experiment(experiment)
    default_name = experiment_name(chosen.path)
    defaults = to_dict(ExperimentConfig(name=default_name))
    defaults["model"] = {"kind": defaults["model"]["kind"]}  # a file's model: completes from its own kind
    cfg = OmegaConf.create(defaults)
    named_by_file = False
    for source, data in experiment_layers(chosen):
        named_by_file = named_by_file or (isinstance(data, Mapping) and "name" in data)
        cfg, parsed = _apply(cfg, data, source)
    command_line = _override_layer(overrides)
    cfg, parsed = _apply(cfg, command_line, COMMAND_LINE)
    if parsed.data.dataset and not ({NAME_KEY, RUN_DIR_KEY} & set(command_line.keys())):
        name = dataset_run_name(_raw(cfg, NAME_KEY), default_name, named_by_file, parsed.data.dataset)
        cfg, parsed = _apply(cfg, {NAME_KEY: name}, f"data.dataset {parsed.data.dataset}")
    validate_optim(parsed.optim)
    validate_trainer(parsed.trainer)
    backbone = getattr(parsed.model, "backbone", None)
    if isinstance(backbone, str):
        check_backbone(backbone)
    return replace(parsed, data=compose_data(parsed.data))


def compose_data(
    base: DataConfig | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    *,
    source: str | None = None,
    overrides_source: str = COMMAND_LINE,
) -> DataConfig:
    """The typed ``data:`` section: schema defaults ← ``base`` ← ``key=value`` overrides, then the pair checks.

    The one composer of a data section: :func:`compose` passes the experiment's, fitted references
    (``routers.fitted``) and ``evaluate --dataset`` their flags'. Override keys may carry the ``data.`` prefix
    (``max_train_prompts=1024``, ``data.kfold.k=3``). Errors name ``source`` (``overrides_source`` for an override)
    and the key, as an experiment's would.
    """
    cfg = OmegaConf.create(to_dict(DataConfig()))
    if base is not None:
        settings = to_dict(base) if isinstance(base, DataConfig) else base
        cfg = merge_layer(cfg, settings, source)
        parse_layer(DataConfig, cfg, "data", source)
    if overrides:
        keys = [item.strip().removeprefix("data.") for item in overrides]
        cfg = merge_layer(cfg, dotlist(keys, overrides_source, "max_train_prompts=1024"), overrides_source)
        source = overrides_source
    data = parse_layer(DataConfig, cfg, "data", source)
    try:
        validate_data(data)
    except LookaheadError as exc:
        raise LookaheadError(f"{source}: {exc}" if source else str(exc)) from None
    return data


def to_dict(cfg: Any) -> dict[str, Any]:
    """A typed config (the experiment or a section) as plain YAML-safe data: the one conversion for what needs a
    dict (``config.yaml``, W&B's config, checkpoint hparams), so they all hold the same values."""
    return config_to_dict(cfg)


def to_yaml(cfg: ExperimentConfig) -> str:
    """The config as YAML, for printing at start and saving in the run directory."""
    return OmegaConf.to_yaml(OmegaConf.create(to_dict(cfg)), resolve=True)
