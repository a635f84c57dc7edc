"""A search space file: typed ranges over config keys, checked against the experiment's typed config up front.

    # experiments/tune/mlc.yaml
    fixed:                       # overrides every trial takes (e.g. a smaller training set)
      data.max_train_prompts: 2048
    params:
      optim.lr: {type: float, low: 1.0e-5, high: 3.0e-4, log: true}
      trainer.max_epochs: {type: int, low: 1, high: 3}
      model.pooling: {type: categorical, choices: [cls, mean]}

A parameter that is not a config key, or an end of a range (a choice) the schema refuses, is one line naming the
space file and the key, before any trial runs (:func:`check_space`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lightning_lookahead.errors import LookaheadError

ParamType = Literal["float", "int", "categorical"]


@dataclass(frozen=True)
class Param:
    """One searched config key."""

    key: str
    type: ParamType
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """The trial's value (an ``optuna.Trial``)."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.type == "int":
            step = int(self.step) if self.step else 1
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=step, log=self.log)  # type: ignore[arg-type]
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)  # type: ignore[arg-type]

    def extremes(self) -> list[Any]:
        """The values whose acceptance by the config schema proves every value of the range acceptable."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int":
            return [int(self.low), int(self.high)]  # type: ignore[arg-type]
        return [float(self.low), float(self.high)]  # type: ignore[arg-type]

    def contains(self, value: Any) -> bool:
        """Whether ``value`` lies in the space (for enqueuing the experiment's own setting as the first trial)."""
        if self.type == "categorical":
            return value in self.choices
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.type == "int" and (not float(value).is_integer()):
            return False
        return float(self.low) <= float(value) <= float(self.high)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SearchSpace:
    """The searched parameters and the fixed overrides of a study."""

    source: str
    params: tuple[Param, ...]
    fixed: dict[str, Any]

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.params]

    def fixed_overrides(self) -> list[str]:
        return [override(key, value) for key, value in self.fixed.items()]

    def pinned_by(self, overrides: Sequence[str]) -> tuple[SearchSpace, list[str]]:
        """The space without the keys the command line sets (``model.mlm_weight=0`` is not searched), and those keys.

        The command line also wins over ``fixed``.
        """
        given = {item.partition("=")[0] for item in overrides}
        given |= {"data.family"} if "family" in given else set()
        pinned = [p.key for p in self.params if p.key in given]
        space = SearchSpace(
            self.source,
            tuple(p for p in self.params if p.key not in given),
            {k: v for k, v in self.fixed.items() if k not in given},
        )
        if not space.params:
            raise LookaheadError(f"{self.source}: the command line sets every searched key; nothing is left to tune")
        return space, pinned


def override(key: str, value: Any) -> str:
    """A dotlist override whose value OmegaConf reads back as the same type (``null``, lists, strings)."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    return f"{key}={text.removesuffix('...').strip()}"


def _number(source: str, key: str, field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LookaheadError(f"{source}: params.{key}.{field}: expected a number, got {value!r}")
    return float(value)


def _param(source: str, key: str, spec: Any) -> Param:
    where = f"{source}: params.{key}"
    if not isinstance(spec, Mapping):
        raise LookaheadError(f"{where}: expected a mapping like {{type: float, low: 1.0e-5, high: 1.0e-3}}")
    allowed = {"type", "low", "high", "log", "step", "choices"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise LookaheadError(f"{where}: unknown field {unknown[0]!r} (expected {', '.join(sorted(allowed))})")
    kind = spec.get("type")
    if kind not in ("float", "int", "categorical"):
        raise LookaheadError(f"{where}.type: {kind!r} is not one of float, int, categorical")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise LookaheadError(f"{where}.choices: expected a non-empty list")
        if any(isinstance(c, dict | list) for c in choices):
            raise LookaheadError(f"{where}.choices: each choice must be a plain value (number, string, bool, null)")
        return Param(key, "categorical", choices=tuple(choices))
    if "low" not in spec or "high" not in spec:
        raise LookaheadError(f"{where}: a {kind} range needs low and high")
    low, high = _number(source, key, "low", spec["low"]), _number(source, key, "high", spec["high"])
    if low > high:
        raise LookaheadError(f"{where}: low {spec['low']} is above high {spec['high']}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise LookaheadError(f"{where}.log: expected true or false, got {log!r}")
    if log and low <= 0:
        raise LookaheadError(f"{where}: a log range needs low > 0, got {spec['low']}")
    step = spec.get("step")
    if step is not None:
        step = _number(source, key, "step", step)
        if step <= 0 or (log and kind == "float"):
            raise LookaheadError(f"{where}.step: must be > 0 and not combined with a log float range")
    if kind == "int" and not (low.is_integer() and high.is_integer()):
        raise LookaheadError(f"{where}: an int range needs whole low and high, got {spec['low']}, {spec['high']}")
    return Param(key, kind, low=low, high=high, log=log, step=step)


def parse_space(data: Any, source: str) -> SearchSpace:
    """A space from its YAML mapping; every mistake is one line naming ``source`` and the key."""
    if not isinstance(data, Mapping):
        raise LookaheadError(f"{source}: a search space must be a mapping with 'params' (and optionally 'fixed')")
    unknown = sorted(set(data) - {"params", "fixed"})
    if unknown:
        raise LookaheadError(f"{source}: unknown section {unknown[0]!r} (expected params, fixed)")
    params = data.get("params")
    if not isinstance(params, Mapping) or not params:
        raise LookaheadError(f"{source}: params: expected a non-empty mapping of config keys to ranges")
    fixed = data.get("fixed") or {}
    if not isinstance(fixed, Mapping):
        raise LookaheadError(f"{source}: fixed: expected a mapping of config keys to values")
    both = sorted(set(params) & set(fixed))
    if both:
        raise LookaheadError(f"{source}: {both[0]} is both searched (params) and fixed")
    return SearchSpace(source, tuple(_param(source, str(k), v) for k, v in params.items()), dict(fixed))


def load_space(path: Path) -> SearchSpace:
    """Read and parse a space file (bad YAML names the file and line)."""
    from lightning_lookahead.config.experiments import load_yaml

    if not path.is_file():
        raise LookaheadError(f"--space {path}: file not found")
    try:  # name the file as the user would (no machine path in best.yaml or the tables)
        shown = str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        shown = str(path)
    return parse_space(load_yaml(path), shown)


def default_space_path(kind: str, loss: str | None = None) -> Path:
    """``experiments/tune/<kind>.yaml`` (ZOOTER is MLC with its loss: it takes mlc's space)."""
    from lightning_lookahead.config.experiments import SEARCH_SPACES_DIR as TUNE_DIR
    from lightning_lookahead.config.experiments import search_dirs

    for base in search_dirs():
        path = base / TUNE_DIR / f"{kind}.yaml"
        if path.is_file():
            return path
    raise LookaheadError(f"no search space {kind!r} (looked for experiments/tune/{kind}.yaml); pass --space FILE")


def resolve_space_path(value: str | None, kind: str) -> Path:
    """``--space``: a file, a name under ``experiments/tune/`` (``mlm``), or the default of the predictor kind."""
    if value is None:
        return default_space_path(kind)
    path = Path(value)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return default_space_path(value)


def check_space(space: SearchSpace, experiment: str, overrides: Sequence[str]) -> None:
    """Compose the experiment at each end of every range (and every choice) through the typed config.

    A key the schema does not know or a value it refuses fails here, naming the space file and the key, before
    any trial runs.
    """
    from lightning_lookahead.config.compose import compose

    base = [*overrides, *space.fixed_overrides()]
    try:
        compose(experiment, base)
    except LookaheadError as exc:
        raise LookaheadError(f"{space.source}: fixed: {exc}") from None
    for param in space.params:
        for value in param.extremes():
            try:
                compose(experiment, [*base, override(param.key, value)])
            except LookaheadError as exc:
                message = str(exc).removeprefix("command-line override: ")
                raise LookaheadError(f"{space.source}: params.{param.key}={value!r}: {message}") from None


def lookup(cfg: Mapping[str, Any], key: str) -> Any:
    """``cfg['a']['b']`` for ``a.b`` (None when absent)."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node
