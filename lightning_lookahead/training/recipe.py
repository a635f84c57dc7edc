"""The training recipe behind `lookahead train` / `make train EXP=...`.

fit (checkpoint the best model by the monitored validation metric: ``val/avg_mu_n`` on a mixed split, else
``val/reward``) → reload the best checkpoint → score the family's test benchmarks → write ``results.json`` /
``results.md`` with oracle, random and every single model beside the router on the same items.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_info

from lightning_lookahead.config.compose import to_yaml
from lightning_lookahead.config.schema import ExperimentConfig
from lightning_lookahead.costs.report import log_cost_curve
from lightning_lookahead.data.io import write_atomic
from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.evaluation import evaluate_router, evaluate_scores, runs_to_json
from lightning_lookahead.inference.export import EXPORT_DIR, export_router, load_checkpoint_file
from lightning_lookahead.inference.router import TrainedRouter
from lightning_lookahead.models.predictor import Predictor
from lightning_lookahead.routers.base import FixedRouter, OracleRouter, RandomRouter, Router
from lightning_lookahead.training.callbacks import RunCallbacks, build_callbacks
from lightning_lookahead.training.losses import configured_loss
from lightning_lookahead.training.report import (
    flat_test_metrics,
    log_pick_table,
    results_markdown,
    save_scores,
    validation_rows,
)

BEST_METRIC = "val/reward"


def resolve_monitor(monitor: str, val_examples: list[RoutingExample]) -> str:
    """``auto`` → ``val/avg_mu_n`` when the validation split mixes benchmarks or domains, else ``val/reward``."""
    from lightning_lookahead.training.validation_mu_n import AVG_KEY, has_several_domains

    if monitor != "auto":
        return monitor
    return AVG_KEY if has_several_domains(val_examples) else BEST_METRIC


def world_size(devices: Any, num_nodes: int = 1) -> int:
    """How many processes ``Trainer(devices=...)`` will start (for the gradient-accumulation arithmetic)."""
    if isinstance(devices, int):
        count = devices if devices > 0 else max(torch.cuda.device_count(), 1)
    elif isinstance(devices, list | tuple):
        count = len(devices)
    elif isinstance(devices, str) and devices.isdigit():
        count = int(devices)
    else:  # "auto" or "-1"
        count = max(torch.cuda.device_count(), 1)
    return count * num_nodes


def accumulation(global_batch: int, per_device: int, world: int) -> int:
    """Micro-batches per optimiser step so that one step sees ``global_batch`` prompts over all devices."""
    per_step = per_device * world
    if global_batch % per_step:
        raise LookaheadError(
            f"data.global_batch_size={global_batch} is not a multiple of data.batch_size × processes "
            f"(trainer.devices × trainer.num_nodes) = {per_device} × {world}"
        )
    return global_batch // per_step


def _resume_path(cfg: ExperimentConfig, run_dir: Path) -> str | None:
    last = run_dir / "checkpoints" / "last.ckpt"
    if cfg.resume is None:
        if last.exists():
            raise LookaheadError(
                f"{run_dir} already holds a run; continue it with resume=last, or choose another run_dir=..."
            )
        return None
    if cfg.resume == "last":
        if not last.exists():
            raise LookaheadError(f"resume=last: no {last} yet (start without resume)")
        return str(last)
    if not Path(cfg.resume).is_file():
        raise LookaheadError(f"resume={cfg.resume}: checkpoint file not found")
    return str(cfg.resume)


def run_experiment(
    cfg: ExperimentConfig, extra_callbacks: Sequence[Callback] = (), *, test: bool = True
) -> dict[str, Any]:
    """Train, select, test; returns the results dict (empty on non-zero ranks).

    ``extra_callbacks`` join the configured ones (``lookahead tune`` adds its pruning reporter). ``test=False`` stops
    after the fit and returns only ``{"selection": ...}``: no test split is featurised or scored (tuning).
    """
    from lightning_lookahead.data.datamodule import RoutingDataModule
    from lightning_lookahead.training.modules.registry import build_module

    L.seed_everything(cfg.seed, workers=True)
    run_dir = Path(cfg.run_dir)
    ckpt_path = _resume_path(cfg, run_dir)
    if cfg.data.dataset:  # your own dataset: the pool is the file's (or the subset data.candidates names)
        from lightning_lookahead.data.dataset_splits import load_dataset_file

        cfg = replace(cfg, data=replace(cfg.data, candidates=list(load_dataset_file(cfg.data).candidates)))
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / "config.yaml", to_yaml(cfg))
    rank_zero_info(f"experiment {cfg.name} → {run_dir}\n{to_yaml(cfg)}")

    candidates = list(cfg.data.candidates)
    module = build_module(cfg.model, cfg.loss, cfg.optim, candidates)
    datamodule = RoutingDataModule(cfg.data, module.inputs, featurize_test=test)
    monitor = resolve_monitor(cfg.monitor, datamodule.splits.val)
    trainer, loggers, built = build_trainer(
        cfg, run_dir, monitor, module, [_validation_mu_n_callback(datamodule, candidates), *extra_callbacks]
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    train_seconds = time.perf_counter() - start
    if not trainer.is_global_zero:
        return {}

    predictor = module.predictor
    best = built.best
    selection: dict[str, Any] = {"monitor": monitor, "best_score": None, "checkpoint": None}
    if best is not None and best.best_model_path:
        score = float(best.best_model_score) if best.best_model_score is not None else None
        selection.update(best_score=score, checkpoint=Path(best.best_model_path).name)
    if not test:
        return {"selection": selection}
    best_path = best.best_model_path if best is not None else ""
    if best_path:
        rank_zero_info(f"testing the best checkpoint {best_path} ({monitor}={selection['best_score']})")
        predictor = load_checkpoint_file(Path(best_path))
    export_router(
        predictor,
        run_dir / EXPORT_DIR,
        name=cfg.name,
        source=best_path or None,
        response_tokens=_training_response_tokens(datamodule, candidates),
        training={"loss": module.hparams["loss"], "optim": module.hparams["optim"]},
    )
    results = test_and_report(predictor, datamodule, cfg, run_dir, train_seconds=train_seconds, selection=selection)
    log_cost_curve(loggers, run_dir, datamodule.test_examples, candidates, cfg.name)
    for logger in loggers:
        logger.log_metrics(flat_test_metrics(results), step=trainer.global_step)
        log_pick_table(logger, results, candidates)
        logger.save()
    return results


def _validation_mu_n_callback(datamodule: Any, candidates: list[str]) -> Callback:
    """The recipe's own callback: validation µn per benchmark and Avg µn (what ``monitor: auto`` may select by)."""
    from lightning_lookahead.training.validation_mu_n import ValidationMuN

    return ValidationMuN(datamodule.splits.val, candidates)


def build_trainer(
    cfg: ExperimentConfig,
    run_dir: Path,
    monitor: str,
    module: torch.nn.Module,
    own_callbacks: Sequence[Callback] = (),
) -> tuple[L.Trainer, list[Logger], RunCallbacks]:
    """The Trainer the experiment describes: ``trainer:`` settings (the strategy built for ``module``), the
    ``logger:`` and ``callbacks:`` entries (after ``own_callbacks``, the recipe's and a caller's) and the gradient
    accumulation the batch sizes imply."""
    from lightning_lookahead.training.loggers import build_loggers
    from lightning_lookahead.training.strategy import trainer_arguments

    loggers = build_loggers(cfg, run_dir)
    settings = trainer_arguments(cfg.trainer, module)
    built = build_callbacks(
        cfg.callbacks,
        run_dir,
        monitor,
        every_n_steps=cfg.checkpoint_every_n_steps,
        has_loggers=bool(loggers),
        progress_bar=settings.pop("enable_progress_bar"),
    )
    trainer = L.Trainer(
        **settings,
        enable_progress_bar=built.progress_bar,
        enable_checkpointing=bool(built.checkpoints),  # else Lightning adds a checkpoint callback of its own
        accumulate_grad_batches=accumulation(
            cfg.data.global_batch_size, cfg.data.batch_size, world_size(cfg.trainer.devices, cfg.trainer.num_nodes)
        ),
        logger=loggers or False,
        callbacks=[*own_callbacks, *built.checkpoints, *built.others],  # Lightning runs checkpointing last anyway
        default_root_dir=str(run_dir),
    )
    return trainer, loggers, built


def _training_response_tokens(datamodule: Any, candidates: list[str]) -> dict[str, float] | None:
    """Mean response length per candidate on the training split, for pricing new prompts; None if there is none.

    The dataset's recorded token counts (``tokens`` of a user's dataset: what the endpoints billed) when its rows
    carry them, else the tokenizer's counts. Without either the export carries no lengths, which is said in one
    info line (never a warning): routing is unaffected, only price-table costs need a length.
    """
    from lightning_lookahead.costs.token_counts import DEFAULT_TOKENIZER, mean_response_tokens, recorded_response_tokens

    train = datamodule.splits.train
    recorded = recorded_response_tokens(train, candidates) if train else None
    if recorded is not None:
        lengths, n_rows = recorded
        if n_rows < len(train):
            rank_zero_info(
                f"export: mean response lengths from the {n_rows} of {len(train)} training rows that record `tokens` "
                "for every candidate"
            )
        return lengths
    try:
        return mean_response_tokens(train, candidates)
    except (LookaheadError, OSError, ValueError) as exc:  # e.g. no tokenizer offline; the export works all the same
        why = " ".join(str(exc).split()) or type(exc).__name__
        rank_zero_info(
            f"export: no mean response lengths (the training rows record no `tokens` and the {DEFAULT_TOKENIZER} "
            f"tokenizer could not count them: {why}); the router routes as usual, but cost-aware rules "
            "(serve's router:λ=..., calibrate) then price the candidates only from a `cost` per backend in "
            "backends.yaml (or calibrate --output-tokens N), not from --prices alone; record `tokens` per row in the "
            "dataset to keep the lengths"
        )
        return None


def test_and_report(
    predictor: Predictor,
    datamodule: Any,
    cfg: ExperimentConfig,
    run_dir: Path,
    *,
    train_seconds: float | None = None,
    selection: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Score the test benchmarks and the validation split; write results.json and results.md.

    The trained router scores through :class:`TrainedRouter`, the same path ``route``, ``serve`` and
    ``evaluate --checkpoint`` take, on the DataModule's cached features.
    """
    candidates = list(cfg.data.candidates)
    datamodule.setup("test")
    router = TrainedRouter(predictor, name=cfg.name)
    router.batch_size = int(cfg.data.eval_batch_size)
    start = time.perf_counter()
    matrices = {name: router.score_featurized(datamodule.features(f"test:{name}")) for name in datamodule.test_names}
    val_scores = router.score_featurized(datamodule.features("val"))
    route_seconds = time.perf_counter() - start
    references: list[Router] = [OracleRouter(), RandomRouter(0), *(FixedRouter(m) for m in candidates)]
    references.append(_domain_reference(datamodule.splits))
    cache: dict = {}
    runs = [evaluate_scores(cfg.name, matrices, datamodule.test_examples, candidates, reference_cache=cache)]
    runs += [evaluate_router(r, datamodule.test_examples, candidates, reference_cache=cache) for r in references]
    n_routed = sum(len(v) for v in datamodule.test_examples.values()) + len(val_scores)
    results = {
        "experiment": cfg.name,
        "notes": cfg.notes,
        "family": cfg.data.family,
        "protocol": cfg.data.protocol,
        "dataset": cfg.data.dataset,
        "validation": validation_rows(datamodule.splits.val, val_scores, candidates, cfg.name),
        "validation_mu_n": _validation_mu_n(datamodule.splits.val, val_scores, candidates),
        "selection": dict(selection) if selection else None,
        "validation_loss": _loss_vs_prior(cfg, val_scores, datamodule.splits),
        "test": runs,
        "timing": {"train_seconds": train_seconds, "route_seconds": route_seconds, "routed_prompts": n_routed},
    }
    save_scores(run_dir / "scores.npz", matrices, datamodule.test_examples, val_scores, datamodule.splits.val)
    write_atomic(run_dir / "results.json", runs_to_json([results]))
    table = results_markdown(results)
    write_atomic(run_dir / "results.md", table)
    print(table)
    return results


def _validation_mu_n(
    examples: list[RoutingExample], val_scores: np.ndarray, candidates: list[str]
) -> dict[str, Any] | None:
    """The selected router's validation µn per benchmark (or domain) and Avg µn: the tune objective's value."""
    from lightning_lookahead.evaluation import validation_mu_n

    return validation_mu_n(examples, val_scores, candidates) if examples else None


def _domain_reference(splits: Any) -> Router:
    """The ``domain`` reference fitted on the run's training prompts (it knows each prompt's benchmark)."""
    from lightning_lookahead.routers.domain import DomainRouter

    router = DomainRouter(fallback=True).fit(splits.train)
    router.name = "domain (reference: knows the benchmark)"
    return router


def _loss_vs_prior(cfg: ExperimentConfig, val_scores: np.ndarray, splits: Any) -> dict[str, float] | None:
    """The selected model's validation routing loss beside the label prior's (constant per-candidate logits)."""
    from lightning_lookahead.training.losses import routing_loss_vs_prior

    if not splits.val:
        return None
    fn = configured_loss(cfg.loss)
    raw = [list(e.scores) for e in splits.val]
    train = [list(e.scores) for e in splits.train]
    return routing_loss_vs_prior(fn, torch.as_tensor(val_scores), raw, train)
