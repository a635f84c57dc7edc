"""What a training run reports: the validation rows, ``results.md``, ``scores.npz`` and the loggers' test metrics.

The recipe (:mod:`lightning_lookahead.training.recipe`) computes the results; this module only shapes them for
files and loggers, so a new table or metric changes nothing in how a router is trained or tested.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.evaluation import markdown_table, picks_table
from lightning_lookahead.metrics.benchmarks import decide, validation_reward
from lightning_lookahead.routers.base import RandomRouter


def validation_rows(
    examples: list[RoutingExample], router_scores: np.ndarray, candidates: list[str], name: str
) -> dict[str, dict[str, float]]:
    """Validation reward of the router beside oracle, random and every single candidate, on the same prompts."""
    raw = np.asarray([ex.scores for ex in examples], dtype=np.float64)
    rows = {
        name: validation_reward(raw, decide(router_scores)),
        "oracle": validation_reward(raw, decide(raw)),
        "random:0": validation_reward(raw, decide(RandomRouter(0).score_matrix(examples, candidates))),
    }
    for j, model in enumerate(candidates):
        rows[f"fixed:{model}"] = validation_reward(raw, np.full(len(examples), j))
    return rows


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
    if results.get("notes"):  # last, where a reader's eye lands after the tables
        lines += ["", "## Reading", "", " ".join(str(results["notes"]).split())]
    return "\n".join(lines) + "\n"


def _data_source(results: Mapping[str, Any]) -> str:
    """What the run trained and tested on: the dataset file (and its test domains), else the family and protocol."""
    if results.get("dataset"):
        tested = results["test"][0]["results"] if results.get("test") else {}
        label = "domain" if len(tested) == 1 else "domains"
        return f"dataset {results['dataset']}" + (f", {label} {', '.join(tested)}" if tested else "")
    return f"{results['family']} family, {results['protocol']} protocol"


def flat_test_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """The run's test and selected-validation numbers as flat logger metrics (``test/<benchmark>/<metric>``, ...)."""
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


def log_pick_table(logger: Any, results: Mapping[str, Any], candidates: list[str]) -> None:
    """A W&B table of pick shares per benchmark (other loggers have no tables)."""
    if not hasattr(logger, "log_table"):
        return
    run = results["test"][0]
    rows = [[bench, *[m["picks"].get(c, 0.0) for c in candidates]] for bench, m in run["results"].items()]
    logger.log_table(key="test/pick_shares", columns=["benchmark", *candidates], data=rows)
