"""The serving API: load a trained router from its run directory and route new prompts.

    router = Router.from_checkpoint("runs/cpu_mlm_code")
    decisions = router.route(["Write a function that reverses a list."])
    decisions[0].model, decisions[0].probabilities

Generic over predictors: a router is whatever :class:`RouterModule` subclass the registry builds from the saved
``model.kind``, driven only through its ``featurize`` / ``collate`` / ``predict_scores`` hooks. Prompts are
featurised, sorted by feature length (longest first) and batched, so a batch holds similar lengths and little
padding; the scores go back to input order before anything is returned.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightning_lookahead.costs.rules import choose, top_choice_probabilities
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.export import EXPORT_DIR, META_FILE, load_checkpoint_file, load_export
from lightning_lookahead.routers.base import RouterModule
from lightning_lookahead.routers.baselines import ScoreRouter

log = logging.getLogger(__name__)

CHECKPOINTS: tuple[str, ...] = ("best", "last")


@dataclass(frozen=True)
class RouteDecision:
    """One prompt's routing decision with every candidate's raw score and top-choice probability."""

    model: str
    index: int
    scores: dict[str, float]
    probabilities: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "index": self.index,
            "scores": dict(self.scores),
            "probabilities": dict(self.probabilities),
        }


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


def _check_run_config(config: dict[str, Any], module: RouterModule, where: Path | None) -> None:
    """The weights must belong to the run whose directory they sit in: same predictor kind and candidate pool."""
    cfg_candidates = (config.get("data") or {}).get("candidates")
    if cfg_candidates is not None and [str(c) for c in cfg_candidates] != list(module.candidates):
        raise LookaheadError(
            f"{where}/config.yaml lists candidates {list(cfg_candidates)}, but the saved router scores "
            f"{module.candidates}; the weights do not belong to this run"
        )
    cfg_kind = (config.get("model") or {}).get("kind")
    if cfg_kind is not None and cfg_kind != module.hparams["model"]["kind"]:
        raise LookaheadError(
            f"{where}/config.yaml trains a {cfg_kind!r} router, but the saved weights are a "
            f"{module.hparams['model']['kind']!r} router"
        )


def feature_length(features: dict[str, Any]) -> int:
    """Token count of a featurised prompt: every integer inside its list-valued features (scores excluded)."""

    def count(value: Any) -> int:
        if isinstance(value, list | tuple):
            return sum(count(v) for v in value)
        return 1 if isinstance(value, int) and not isinstance(value, bool) else 0

    total = sum(count(v) for k, v in features.items() if k != "scores" and isinstance(v, list | tuple))
    return total or len(str(features.get("prompt", "")))


class Router(ScoreRouter):
    """A trained router ready to serve: ``score`` / ``route`` new prompts, or ``score_matrix`` benchmark items."""

    def __init__(
        self,
        module: RouterModule,
        *,
        name: str | None = None,
        source: Path | None = None,
        response_tokens: Mapping[str, float] | None = None,
    ) -> None:
        self.module = module.eval()
        #: Mean response length per candidate on the training split (from the export), for cost-aware rules.
        self.response_tokens: dict[str, float] | None = None if response_tokens is None else dict(response_tokens)
        self.candidates: list[str] = list(module.candidates)
        self.kind: str = str(module.hparams["model"]["kind"])
        self.name: str = name or self.kind
        self.source = source
        #: Defaults of ``score_matrix`` (the ScoreRouter interface has no batching or progress arguments).
        self.batch_size = 32
        self.progress = False

    def __repr__(self) -> str:
        return f"Router(kind={self.kind!r}, name={self.name!r}, candidates={self.candidates}, device={self.device})"

    @property
    def device(self) -> torch.device:
        return self.module.device

    @property
    def needs_responses(self) -> bool:
        """True for oracle-style predictors that read the candidates' real responses (they cannot route new prompts)."""
        return bool(getattr(self.module, "needs_responses", False))

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        *,
        device: str | torch.device = "cpu",
        checkpoint: str = "best",
        backbone: str | None = None,
    ) -> Router:
        """Load from a run directory (its ``export/``, else ``checkpoints/<checkpoint>.ckpt``), an export directory or a
        ``.ckpt`` file. No pickled code runs: safetensors, or ``torch.load(weights_only=True)`` for checkpoints.

        ``backbone`` replaces the saved ``model.backbone`` (e.g. the run was trained on another machine where the
        backbone lived elsewhere); its tokenizer must match the one the router was trained with.
        """
        source = _resolve(path, checkpoint)
        if source.kind == "export":
            module, meta = load_export(source.path, device=device, backbone=backbone)
            saved_name = meta.get("name")
            response_tokens = meta.get("response_tokens")
        else:
            module = load_checkpoint_file(source.path, device=device, backbone=backbone)
            saved_name, response_tokens = None, None
        config = _run_config(source.run_dir)
        _check_run_config(config, module, source.run_dir)
        name = config.get("name") or saved_name or (source.run_dir or source.path).name
        return cls(module, name=str(name), source=source.path, response_tokens=response_tokens)

    # --- scoring ----------------------------------------------------------------------------------------------

    def _score_rows(
        self, rows: list[dict[str, Any]], *, batch_size: int, progress: bool, sort_by_length: bool = True
    ) -> np.ndarray:
        """Scores (n, C) of example dicts in input order, batched by feature length."""
        if batch_size < 1:
            raise LookaheadError(f"batch size must be ≥ 1, got {batch_size}")
        from tqdm.auto import tqdm

        n = len(rows)
        out = np.zeros((n, len(self.candidates)), dtype=np.float32)
        if n == 0:
            return out
        module = self.module
        features = [{**row, **module.featurize(row)} for row in rows]
        order = list(range(n))
        if sort_by_length:  # longest first: the slowest batch (and any out-of-memory) shows up at once
            order.sort(key=lambda i: -feature_length(features[i]))
        with (
            torch.inference_mode(),
            tqdm(total=n, unit="prompt", desc=f"routing ({self.name})", disable=not progress) as bar,
        ):
            for start in range(0, n, batch_size):
                index = order[start : start + batch_size]
                batch = module.collate([features[i] for i in index])
                logits = module.predict_scores(batch).float().cpu().numpy()
                out[index] = logits
                bar.update(len(index))
        return out

    def _refuse_without_responses(self) -> None:
        if self.needs_responses:
            raise LookaheadError(
                f"router {self.name!r} (kind {self.kind!r}) is an oracle-style bound that reads the candidates' real "
                "responses; it cannot route new prompts (use `lookahead evaluate --checkpoint` on benchmark items)"
            )

    def score(
        self,
        prompts: Sequence[str],
        *,
        batch_size: int = 32,
        progress: bool = False,
        sort_by_length: bool = True,
    ) -> np.ndarray:
        """Raw routing scores (logits), shape (len(prompts), C), in input order."""
        self._refuse_without_responses()
        if isinstance(prompts, str):
            prompts = [prompts]
        for i, prompt in enumerate(prompts):
            if not isinstance(prompt, str):
                raise LookaheadError(f"prompt {i} is a {type(prompt).__name__}, not a string")
        rows = [
            {"prompt_id": f"prompt-{i}", "prompt": p, "responses": [], "scores": [], "benchmark": ""}
            for i, p in enumerate(prompts)
        ]
        return self._score_rows(rows, batch_size=batch_size, progress=progress, sort_by_length=sort_by_length)

    def route(
        self,
        prompts: Sequence[str],
        *,
        batch_size: int = 32,
        rule: str = "argmax",
        lam: float = 0.0,
        tau: float = 0.5,
        costs: np.ndarray | None = None,
        progress: bool = False,
    ) -> list[RouteDecision]:
        """One decision per prompt: ``costs.rules.choose`` on the scores (``costs``: (C,) or (n, C) expected cost)."""
        scores = self.score(prompts, batch_size=batch_size, progress=progress)
        if costs is not None and np.asarray(costs).shape[-1:] != (len(self.candidates),):
            raise LookaheadError(
                f"costs must have one entry per candidate ({len(self.candidates)}), got shape {np.asarray(costs).shape}"
            )
        chosen = choose(scores, costs, rule=rule, lam=lam, tau=tau)  # type: ignore[arg-type]
        probs = top_choice_probabilities(scores)
        return [
            RouteDecision(
                model=self.candidates[int(j)],
                index=int(j),
                scores={c: _finite(s) for c, s in zip(self.candidates, row, strict=True)},
                probabilities={c: _finite(p) for c, p in zip(self.candidates, prob, strict=True)},
            )
            for j, row, prob in zip(chosen, scores, probs, strict=True)
        ]

    def score_matrix(self, examples: Sequence[Any], candidates: Sequence[str]) -> np.ndarray:
        """ScoreRouter interface (``evaluate_router``): full examples, responses included, columns in ``candidates``
        order. Only a permutation of the trained pool is accepted: a Lookahead router scores its whole pool jointly."""
        from lightning_lookahead.data.datamodule import example_dict

        wanted = [str(c) for c in candidates]
        if sorted(wanted) != sorted(self.candidates):
            raise LookaheadError(
                f"router {self.name!r} was trained on candidates {self.candidates}; it cannot score {wanted}"
            )
        rows = [example_dict(ex) for ex in examples]
        progress = self.progress and len(rows) > self.batch_size
        scores = self._score_rows(rows, batch_size=self.batch_size, progress=progress)
        return scores[:, [self.candidates.index(c) for c in wanted]]


def _finite(value: Any) -> float:
    x = float(value)
    if not math.isfinite(x):
        raise LookaheadError(f"the router produced a non-finite score ({x}); the weights may be corrupt")
    return x
