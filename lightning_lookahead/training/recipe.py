"""The training recipe behind `lookahead train` / `make train EXP=...`.

fit (checkpoint the best model by the monitored validation metric: ``val/avg_mu_n`` on a mixed split, else
``val/reward``) → reload the best checkpoint → score the family's test benchmarks → write ``results.json`` /
``results.md`` with oracle, random and every single model beside the router on the same items.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig, OmegaConf

from lightning_lookahead.config.compose import to_yaml
from lightning_lookahead.config.schema import TrainerConfig
from lightning_lookahead.costs.report import log_cost_curve
from lightning_lookahead.data.io import write_atomic
from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.evaluation import (
    evaluate_router,
    evaluate_scores,
    markdown_table,
    picks_table,
    runs_to_json,
)
from lightning_lookahead.inference.export import EXPORT_DIR, export_router, load_checkpoint_file
from lightning_lookahead.inference.router import TrainedRouter
from lightning_lookahead.metrics.benchmarks import decide, validation_reward
from lightning_lookahead.models.predictor import Predictor
from lightning_lookahead.routers.base import FixedRouter, OracleRouter, RandomRouter, Router
from lightning_lookahead.training.losses import routing_loss
from lightning_lookahead.typed import parse_dataclass

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


def _resume_path(cfg: DictConfig, run_dir: Path) -> str | None:
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


def _validation_rows(
    examples: list[RoutingExample], router_scores: np.ndarray, candidates: list[str], name: str
) -> dict[str, dict[str, float]]:
    raw = np.asarray([ex.scores for ex in examples], dtype=np.float64)
    rows = {
        name: validation_reward(raw, decide(router_scores)),
        "oracle": validation_reward(raw, decide(raw)),
        "random:0": validation_reward(raw, decide(RandomRouter(0).score_matrix(examples, candidates))),
    }
    for j, model in enumerate(candidates):
        rows[f"fixed:{model}"] = validation_reward(raw, np.full(len(examples), j))
    return rows


def run_experiment(cfg: DictConfig, extra_callbacks: Sequence[Any] = (), *, test: bool = True) -> dict[str, Any]:
    """Train, select, test; returns the results dict (empty on non-zero ranks).

    ``extra_callbacks`` join the recipe's own (``lookahead tune`` adds its pruning reporter). ``test=False`` stops
    after the fit and returns only ``{"selection": ...}``: no test split is featurised or scored (tuning).
    """
    from lightning_lookahead.data.datamodule import RoutingDataModule
    from lightning_lookahead.progress import training_progress
    from lightning_lookahead.training.loggers import build_loggers
    from lightning_lookahead.training.modules.registry import build_module
    from lightning_lookahead.training.strategy import trainer_arguments
    from lightning_lookahead.training.validation_mu_n import ValidationMuN

    L.seed_everything(cfg.seed, workers=True)
    progress = training_progress()  # plain lines when stdout is not a terminal (a log file, CI), else None
    run_dir = Path(cfg.run_dir)
    ckpt_path = _resume_path(cfg, run_dir)
    if cfg.data.dataset:  # your own dataset: the pool is the file's (or the subset data.candidates names)
        from lightning_lookahead.data.dataset_splits import load_dataset_file

        cfg.data.candidates = list(load_dataset_file(cfg.data).candidates)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / "config.yaml", to_yaml(cfg))
    rank_zero_info(f"experiment {cfg.name} → {run_dir}\n{to_yaml(cfg)}")

    candidates = list(cfg.data.candidates)
    module = build_module(
        OmegaConf.to_container(cfg.model, resolve=True),  # type: ignore[arg-type]
        OmegaConf.to_container(cfg.loss, resolve=True),  # type: ignore[arg-type]
        OmegaConf.to_container(cfg.optim, resolve=True),  # type: ignore[arg-type]
        candidates,
    )
    datamodule = RoutingDataModule(cfg.data, module.inputs, featurize_test=test)
    trainer_kwargs = trainer_arguments(parse_dataclass(TrainerConfig, cfg.trainer, "trainer"), module)
    world = world_size(trainer_kwargs["devices"], trainer_kwargs["num_nodes"])
    if progress is not None:  # a bar draws nothing readable in a file: the lines replace it
        trainer_kwargs["enable_progress_bar"] = False
    monitor = resolve_monitor(str(cfg.monitor), datamodule.splits.val)
    best = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor=monitor,
        mode="max",
        save_top_k=1,
        auto_insert_metric_name=False,
    )
    last = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", save_last=True, save_top_k=0, every_n_train_steps=cfg.checkpoint_every_n_steps
    )
    loggers = build_loggers(cfg, run_dir)
    callbacks: list[Any] = [ValidationMuN(datamodule.splits.val, candidates), best, last, *extra_callbacks]
    callbacks += [LearningRateMonitor("step")] if loggers else []
    callbacks += [progress] if progress is not None else []
    trainer = L.Trainer(
        **trainer_kwargs,
        accumulate_grad_batches=accumulation(cfg.data.global_batch_size, cfg.data.batch_size, world),
        logger=loggers or False,
        callbacks=callbacks,
        default_root_dir=str(run_dir),
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    train_seconds = time.perf_counter() - start
    if not trainer.is_global_zero:
        return {}

    predictor = module.predictor
    selection: dict[str, Any] = {"monitor": monitor, "best_score": None, "checkpoint": None}
    if best.best_model_path:
        score = float(best.best_model_score) if best.best_model_score is not None else None
        selection.update(best_score=score, checkpoint=Path(best.best_model_path).name)
    if not test:
        return {"selection": selection}
    if best.best_model_path:
        rank_zero_info(f"testing the best checkpoint {best.best_model_path} ({monitor}={selection['best_score']})")
        predictor = load_checkpoint_file(Path(best.best_model_path))
    export_router(
        predictor,
        run_dir / EXPORT_DIR,
        name=cfg.name,
        source=best.best_model_path or None,
        response_tokens=_training_response_tokens(datamodule, candidates),
        training={"loss": module.hparams["loss"], "optim": module.hparams["optim"]},
    )
    results = test_and_report(predictor, datamodule, cfg, run_dir, train_seconds=train_seconds, selection=selection)
    log_cost_curve(loggers, run_dir, datamodule.test_examples, candidates, cfg.name)
    for logger in loggers:
        logger.log_metrics(_flat_test_metrics(results), step=trainer.global_step)
        _log_pick_table(logger, results, candidates)
        logger.save()
    return results


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
    cfg: DictConfig,
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
        "family": cfg.data.family,
        "protocol": cfg.data.protocol,
        "dataset": cfg.data.dataset,
        "validation": _validation_rows(datamodule.splits.val, val_scores, candidates, cfg.name),
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


def _loss_vs_prior(cfg: DictConfig, val_scores: np.ndarray, splits: Any) -> dict[str, float] | None:
    """The selected model's validation routing loss beside the label prior's (constant per-candidate logits)."""
    from lightning_lookahead.training.losses import routing_loss_vs_prior

    if not splits.val:
        return None
    loss = cfg.loss
    fn = routing_loss(
        loss.name,
        threshold=loss.threshold,
        temperature=loss.temperature,
        score_norm=loss.score_norm,
        top_k=loss.top_k,
        bottom_k=loss.bottom_k,
    )
    raw = [list(e.scores) for e in splits.val]
    train = [list(e.scores) for e in splits.train]
    return routing_loss_vs_prior(fn, torch.as_tensor(val_scores), raw, train)


def save_scores(
    path: Path,
    matrices: Mapping[str, np.ndarray],
    test_examples: Mapping[str, list[RoutingExample]],
    val_scores: np.ndarray,
    val_examples: list[RoutingExample],
) -> None:
    """The router's score matrices with their prompt ids, for later analysis (bootstrap intervals, cost sweeps)."""
    arrays: dict[str, np.ndarray] = {
        "val/scores": val_scores,
        "val/prompt_ids": np.array([e.prompt_id for e in val_examples]),
    }
    for name, matrix in matrices.items():
        arrays[f"test/{name}/scores"] = matrix
        arrays[f"test/{name}/prompt_ids"] = np.array([e.prompt_id for e in test_examples[name]])
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def results_markdown(results: Mapping[str, Any]) -> str:
    """The run's tables: validation reward and the test benchmarks, router beside the baselines."""
    val = results["validation"]
    lines = [
        f"# {results['experiment']} ({_data_source(results)})",
        "",
        "## Validation",
        "",
        "| Router | reward | normalized reward | routing acc. |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {m['reward']:.4f} | {m['normalized_reward']:.4f} | {m['routing_accuracy']:.2f} |"
        for name, m in val.items()
    ]
    lines += [
        "",
        "reward: mean of the chosen candidate's score min-max normalised per prompt (1 = that prompt's best); "
        "normalized reward: 0 = always the worst candidate, 1 = the oracle; routing acc.: % of prompts routed to "
        "their best candidate.",
    ]
    val_mu = results.get("validation_mu_n")
    if val_mu and val_mu.get("avg_mu_n") is not None:
        parts = ", ".join(f"{b} {v:.1f}" for b, v in val_mu["mu_n"].items() if v is not None)
        lines += ["", f"Validation µn of {results['experiment']}: Avg µn **{val_mu['avg_mu_n']:.1f}** ({parts})."]
    selection = results.get("selection")
    if selection and selection.get("checkpoint"):
        score = selection.get("best_score")
        lines += [
            "",
            f"Checkpoint chosen by `{selection['monitor']}`"
            + (f" = {score:.4f}" if isinstance(score, float) and math.isfinite(score) else "")
            + f" ({selection['checkpoint']}).",
        ]
    loss = results.get("validation_loss")
    if loss:
        lines += [
            "",
            f"Validation routing loss {loss['routing_loss']:.4f} vs {loss['label_prior_loss']:.4f} for the label prior "
            "(constant per-candidate logits fitted on the training labels): "
            + (
                "below it, so the router learned from the prompts."
                if loss["routing_loss"] < loss["label_prior_loss"]
                else "not below it: the router has not learned more than the label frequencies."
            ),
        ]
    lines += [
        "",
        "## Test",
        "",
        markdown_table(results["test"]),
        "## Picks",
        "",
        picks_table(results["test"][:1], results["test"][0]["candidates"]),
    ]
    timing = results["timing"]
    if timing.get("train_seconds") is not None:
        lines.append(
            f"Training wall time {timing['train_seconds']:.0f} s; routing {timing['routed_prompts']} prompts "
            f"took {timing['route_seconds']:.1f} s."
        )
    return "\n".join(lines) + "\n"


def _data_source(results: Mapping[str, Any]) -> str:
    """What the run trained and tested on: the dataset file (and its test domains), else the family and protocol."""
    if results.get("dataset"):
        tested = results["test"][0]["results"] if results.get("test") else {}
        label = "domain" if len(tested) == 1 else "domains"
        return f"dataset {results['dataset']}" + (f", {label} {', '.join(tested)}" if tested else "")
    return f"{results['family']} family, {results['protocol']} protocol"


def _flat_test_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    flat = {}
    run = results["test"][0]
    for bench, metrics in run["results"].items():
        for key, value in metrics.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                flat[f"test/{bench}/{key}"] = float(value)
    if run.get("avg_mu_n") is not None:
        flat["test/avg_mu_n"] = float(run["avg_mu_n"])
    for key, value in results["validation"][run["router"]].items():
        flat[f"best_val/{key}"] = float(value)
    for key, value in (results.get("validation_loss") or {}).items():
        flat[f"best_val/{key}"] = float(value)
    val_mu = results.get("validation_mu_n") or {}
    if val_mu.get("avg_mu_n") is not None:
        flat["best_val/avg_mu_n"] = float(val_mu["avg_mu_n"])
    return flat


def _log_pick_table(logger: Any, results: Mapping[str, Any], candidates: list[str]) -> None:
    """A W&B table of pick shares per benchmark (other loggers have no tables)."""
    if not hasattr(logger, "log_table"):
        return
    run = results["test"][0]
    rows = [[bench, *[m["picks"].get(c, 0.0) for c in candidates]] for bench, m in run["results"].items()]
    logger.log_table(key="test/pick_shares", columns=["benchmark", *candidates], data=rows)
