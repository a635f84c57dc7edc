"""The serving API: load a trained router from its run directory and route new prompts.

    router = TrainedRouter.from_checkpoint("runs/cpu_mlm_code")
    decisions = router.route(["Write a function that reverses a list."])
    decisions[0].model, decisions[0].probabilities

Generic over predictors: the registry rebuilds the network and input builder of the saved ``model.kind`` (no
Lightning involved), and every score comes from :func:`~lightning_lookahead.models.scoring.score_features`, the
same path the training recipe's test stage uses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lightning_lookahead.bundle.decisions import RouteDecision, decide
from lightning_lookahead.costs.rules import ARGMAX, DecisionRule
from lightning_lookahead.data.inputs import example_row, prompt_row
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.engine_names import EXACT_ENGINE
from lightning_lookahead.inference.export import EXPORT_DIR, META_FILE, load_checkpoint_file, load_export
from lightning_lookahead.models.predictor import Predictor
from lightning_lookahead.models.scoring import network_device, score_features
from lightning_lookahead.routers.base import Router

if TYPE_CHECKING:
    from lightning_lookahead.bundle.router import BundleRouter

log = logging.getLogger(__name__)

CHECKPOINTS: tuple[str, ...] = ("best", "last")


@dataclass(frozen=True)
class _Source:
    """Where a router's weights come from: an export folder or a checkpoint file, and the run they belong to."""

    kind: str  # "export" | "ckpt"
    path: Path
    run_dir: Path | None


def _resolve(path: str | Path, checkpoint: str) -> _Source:
    """Run directory, export directory or ``.ckpt`` file → what to load (export first, then best/last ckpt)."""
    p = Path(path).expanduser()
    if checkpoint not in CHECKPOINTS:
        raise LookaheadError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, got {checkpoint!r}")
    if not p.exists():
        raise LookaheadError(f"router checkpoint path {p} does not exist")
    if p.is_file():
        if p.suffix != ".ckpt":
            raise LookaheadError(f"{p} is not a run directory, a router export directory or a .ckpt file")
        run_dir = p.parent.parent if p.parent.name == "checkpoints" else None
        return _Source("ckpt", p, run_dir)
    if (p / META_FILE).is_file():
        run_dir = p.parent if p.name == EXPORT_DIR else None
        return _Source("export", p, run_dir)
    ckpts = p / "checkpoints"
    if checkpoint == "best":
        if (p / EXPORT_DIR / META_FILE).is_file():
            return _Source("export", p / EXPORT_DIR, p)
        if (ckpts / "best.ckpt").is_file():
            return _Source("ckpt", ckpts / "best.ckpt", p)
        if (ckpts / "last.ckpt").is_file():
            log.warning("%s has no export and no best.ckpt; using checkpoints/last.ckpt", p)
            return _Source("ckpt", ckpts / "last.ckpt", p)
        raise LookaheadError(
            f"{p} holds no router: no {EXPORT_DIR}/{META_FILE} and no checkpoints/best.ckpt or last.ckpt "
            "(is it a run directory of `lookahead train`?)"
        )
    if (ckpts / "last.ckpt").is_file():
        return _Source("ckpt", ckpts / "last.ckpt", p)
    raise LookaheadError(f"{p} has no checkpoints/last.ckpt")


def _run_config(run_dir: Path | None) -> dict[str, Any]:
    """The run's ``config.yaml`` as a plain dict ({} when absent)."""
    if run_dir is None or not (run_dir / "config.yaml").is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise LookaheadError(f"{run_dir / 'config.yaml'}: not valid YAML ({exc})") from exc
    return data if isinstance(data, dict) else {}


def _check_run_config(config: dict[str, Any], predictor: Predictor, where: Path | None) -> None:
    """The weights must belong to the run whose directory they sit in: same predictor kind and candidate pool."""
    cfg_candidates = (config.get("data") or {}).get("candidates")
    if cfg_candidates is not None and [str(c) for c in cfg_candidates] != list(predictor.candidates):
        raise LookaheadError(
            f"{where}/config.yaml lists candidates {list(cfg_candidates)}, but the saved router scores "
            f"{predictor.candidates}; the weights do not belong to this run"
        )
    cfg_kind = (config.get("model") or {}).get("kind")
    if cfg_kind is not None and cfg_kind != predictor.config.kind:
        raise LookaheadError(
            f"{where}/config.yaml trains a {cfg_kind!r} router, but the saved weights are a "
            f"{predictor.config.kind!r} router"
        )


class TrainedRouter(Router):
    """A trained predictor ready to serve: ``score`` / ``route`` new prompts, or ``score_matrix`` benchmark items."""

    def __init__(
        self,
        predictor: Predictor,
        *,
        name: str | None = None,
        source: Path | None = None,
        run_dir: Path | None = None,
        response_tokens: Mapping[str, float] | None = None,
    ) -> None:
        self.predictor = predictor
        self.network = predictor.network.eval()
        #: The routing forward path ``network`` runs on (see ``use_engine``).
        self.engine = EXACT_ENGINE
        #: Mean response length per candidate on the training split (from the export), for cost-aware rules.
        self.response_tokens: dict[str, float] | None = None if response_tokens is None else dict(response_tokens)
        self.candidates: list[str] = list(predictor.candidates)
        self.kind: str = str(predictor.config.kind)
        self.name: str = name or self.kind
        self.source = source
        #: The run directory the weights came from (None for a bare export or ``.ckpt``); calibrations live there.
        self.run_dir = run_dir
        #: Defaults of ``score_matrix`` (the Router interface has no batching or progress arguments).
        self.batch_size = 32
        self.progress = False

    def __repr__(self) -> str:
        where = f"candidates={self.candidates}, device={self.device}"
        return f"TrainedRouter(kind={self.kind!r}, name={self.name!r}, {where})"

    @property
    def device(self) -> torch.device:
        return network_device(self.network)

    @property
    def needs_responses(self) -> bool:
        """True for oracle-style predictors that read the candidates' real responses (they cannot route new prompts)."""
        return bool(self.predictor.config.needs_responses)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        *,
        device: str | torch.device = "cpu",
        checkpoint: str = "best",
        backbone: str | None = None,
        engine: str = EXACT_ENGINE,
    ) -> TrainedRouter:
        """Load from a run directory (its ``export/``, else ``checkpoints/<checkpoint>.ckpt``), an export directory or a
        ``.ckpt`` file. No pickled code runs: safetensors, or ``torch.load(weights_only=True)`` for checkpoints.
        The router keeps only what routing runs: an MLM router's MLM head (a training loss) is dropped once loaded,
        and the backbone's pretrained weights are never reported as "freshly initialised" (every weight is saved).

        ``backbone`` replaces the saved ``model.backbone`` (e.g. the run was trained on another machine where the
        backbone lived elsewhere); its tokenizer must match the one the router was trained with.
        ``engine`` is the routing forward path (``inference.engine_names.ENGINES``; docs/inference.md). The default
        is fp32, the training recipe's numerics; the ``route``/``serve``/``calibrate`` commands default to ``auto``.
        """
        source = _resolve(path, checkpoint)
        if source.kind == "export":
            predictor, meta = load_export(source.path, device=device, backbone=backbone)
            saved_name = meta.get("name")
            response_tokens = meta.get("response_tokens")
        else:
            predictor = load_checkpoint_file(source.path, device=device, backbone=backbone)
            saved_name, response_tokens = None, None
        routing_only = getattr(predictor.network, "routing_only", None)
        if callable(routing_only):  # keep only what routing runs (an MLM router drops its MLM head)
            routing_only()
        config = _run_config(source.run_dir)
        _check_run_config(config, predictor, source.run_dir)
        name = config.get("name") or saved_name or (source.run_dir or source.path).name
        router = cls(
            predictor, name=str(name), source=source.path, run_dir=source.run_dir, response_tokens=response_tokens
        )
        router.use_engine(engine)
        return router

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, **kwargs: Any) -> TrainedRouter | BundleRouter:
        """A router folder or a Hugging Face Hub id of one (``huggingface_hub.snapshot_download``, which honours
        ``HF_HUB_OFFLINE`` and the cache). An ONNX bundle loads as the light
        :class:`~lightning_lookahead.bundle.router.BundleRouter` (same ``score`` / ``route`` / ``decide``); anything
        else as :meth:`from_checkpoint` with ``kwargs``."""
        from lightning_lookahead.bundle.hub import resolve_router_path
        from lightning_lookahead.bundle.layout import is_bundle
        from lightning_lookahead.bundle.router import BundleRouter

        path = resolve_router_path(name_or_path)
        if is_bundle(path):
            return BundleRouter(path)
        return cls.from_checkpoint(path, **kwargs)

    def use_engine(self, engine: str) -> None:
        """Score through ``engine`` from now on (the predictor's own network is kept, untouched); ``self.engine``
        names what it resolved to (``auto`` → bf16 or fp32)."""
        from lightning_lookahead.inference.engines import apply_engine

        self.network, self.engine = apply_engine(self.predictor, engine)

    @property
    def home(self) -> Path | None:
        """Where this router's calibrations are kept: its run directory, else its export folder or .ckpt's folder."""
        if self.run_dir is not None:
            return self.run_dir
        if self.source is None:
            return None
        return self.source if self.source.is_dir() else self.source.parent

    # --- scoring ----------------------------------------------------------------------------------------------

    def score_rows(
        self, rows: Sequence[Mapping[str, Any]], *, batch_size: int, progress: bool, sort_by_length: bool = True
    ) -> np.ndarray:
        """Scores (n, C) of example rows in input order (featurised here, then the one scoring path)."""
        inputs = self.predictor.inputs
        features = [{**row, **inputs.featurize(dict(row))} for row in rows]
        return self.score_featurized(features, batch_size=batch_size, progress=progress, sort_by_length=sort_by_length)

    def score_featurized(
        self,
        features: Sequence[Mapping[str, Any]],
        *,
        batch_size: int | None = None,
        progress: bool = False,
        sort_by_length: bool = True,
    ) -> np.ndarray:
        """Scores (n, C) of items already featurised by this router's input builder (e.g. a DataModule's cache)."""
        return score_features(
            self.network,
            self.predictor.inputs,
            list(features),
            len(self.candidates),
            batch_size=self.batch_size if batch_size is None else batch_size,
            sort_by_length=sort_by_length,
            progress=progress,
            desc=f"routing ({self.name})",
        )

    def _refuse_without_responses(self) -> None:
        if self.needs_responses:
            raise LookaheadError(
                f"router {self.name!r} (kind {self.kind!r}) is an oracle-style bound that reads the candidates' real "
                "responses; it cannot route new prompts (use `lookahead evaluate --checkpoint` on benchmark items)"
            )

    def featurize_prompts(self, prompts: Sequence[str]) -> list[dict[str, Any]]:
        """New prompts as this router's input builder features (what :meth:`score_featurized` takes)."""
        self._refuse_without_responses()
        if isinstance(prompts, str):
            prompts = [prompts]
        for i, prompt in enumerate(prompts):
            if not isinstance(prompt, str):
                raise LookaheadError(f"prompt {i} is a {type(prompt).__name__}, not a string")
        inputs = self.predictor.inputs
        return [{**row, **inputs.featurize(dict(row))} for row in (prompt_row(p, i) for i, p in enumerate(prompts))]

    def score(
        self,
        prompts: Sequence[str],
        *,
        batch_size: int = 32,
        progress: bool = False,
        sort_by_length: bool = True,
    ) -> np.ndarray:
        """Raw routing scores (logits), shape (len(prompts), C), in input order."""
        features = self.featurize_prompts(prompts)
        return self.score_featurized(features, batch_size=batch_size, progress=progress, sort_by_length=sort_by_length)

    def route(
        self,
        prompts: Sequence[str],
        *,
        batch_size: int = 32,
        rule: DecisionRule = ARGMAX,
        costs: np.ndarray | None = None,
        progress: bool = False,
    ) -> list[RouteDecision]:
        """One decision per prompt by ``rule`` (``costs``: (C,) or (n, C) expected cost, replacing the rule's own)."""
        scores = self.score(prompts, batch_size=batch_size, progress=progress)
        return self.decide(scores, rule=rule, costs=costs)

    def decide(
        self, scores: np.ndarray, *, rule: DecisionRule = ARGMAX, costs: np.ndarray | None = None
    ) -> list[RouteDecision]:
        """Scores (n, C) of this router → one :class:`RouteDecision` per row (the rule as in :meth:`route`)."""
        return decide(self.candidates, scores, rule=rule, costs=costs)

    def score_matrix(self, examples: Sequence[Any], candidates: Sequence[str]) -> np.ndarray:
        """Router interface (``evaluate_router``): full examples, responses included, columns in ``candidates``
        order. Only a permutation of the trained pool is accepted: a Lookahead router scores its whole pool jointly."""
        wanted = [str(c) for c in candidates]
        if sorted(wanted) != sorted(self.candidates):
            raise LookaheadError(
                f"router {self.name!r} was trained on candidates {self.candidates}; it cannot score {wanted}"
            )
        rows = [example_row(ex) for ex in examples]
        progress = self.progress and len(rows) > self.batch_size
        scores = self.score_rows(rows, batch_size=self.batch_size, progress=progress)
        return scores[:, [self.candidates.index(c) for c in wanted]]
