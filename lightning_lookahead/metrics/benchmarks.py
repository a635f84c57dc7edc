"""Benchmark metrics: pure functions of (examples, choices), METHOD §10.

Every router ends in a score matrix; :func:`decide` (metrics/decision.py) turns it into one candidate index per
prompt and the functions below score those choices on each benchmark. Nothing here reads files: the readers put
everything a metric needs on :class:`RoutingExample` (raw scores plus ``extras``). Defaults follow the paper's
conventions, which reproduce METHOD §12 exactly (MT-Bench keeps −1 judgments, an Arena-Hard null verdict is three
baseline wins, ties go to the first candidate); the upstream benchmarks' own conventions are opt-in keyword options.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lightning_lookahead.data.schema import BENCHMARKS, RoutingExample
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.metrics.alpaca_lc import LCResult, length_controlled_win_rate
from lightning_lookahead.metrics.decision import decide as decide  # the one argmax; callers import it from here
from lightning_lookahead.metrics.normalize import normalize_scores

Choices = Sequence[int] | np.ndarray

#: The headline metric key of each benchmark (MT-Bench on the 1–10 scale; tables show it ×10 as the paper does).
HEADLINE: dict[str, str] = {
    "AlpacaEval": "win_rate",
    "ArenaHard": "score",
    "MT-Bench": "score",
    "GSM8k": "accuracy",
    "MATH": "accuracy",
    "HumanEval": "accuracy",
    "MBPP": "accuracy",
}

#: Benchmarks scored by the mean of the chosen 0/1 score (accuracy or pass@1).
ACCURACY_BENCHMARKS: tuple[str, ...] = ("GSM8k", "MATH", "HumanEval", "MBPP")

#: Arena-Hard verdicts as (winner, weight) from the point of view of the game's "A" slot: ``>>`` counts 3 battles.
_VERDICTS: dict[str, tuple[str, int]] = {
    "A>>B": ("A", 3),
    "A>B": ("A", 1),
    "A=B": ("tie", 1),
    "B>A": ("B", 1),
    "B>>A": ("B", 3),
}
#: Weight of a null verdict, counted as baseline wins (the paper's convention).
_NULL_WEIGHT = 3


# --------------------------------------------------------------------------------------------------- validation


def check_choices(choices: Choices, n_examples: int, n_candidates: int | Sequence[int], where: str) -> np.ndarray:
    """Validate a choice vector (one integer index per example, each within that example's pool); return int64.

    ``n_candidates`` is either one pool size for all examples or one size per example.
    """
    if isinstance(choices, torch.Tensor):
        choices = choices.detach().cpu().numpy()
    array = np.asarray(choices)
    if array.ndim != 1:
        raise LookaheadError(f"{where}: choices must be a 1-D sequence of candidate indices, got shape {array.shape}")
    if array.size and not (np.issubdtype(array.dtype, np.integer) and not np.issubdtype(array.dtype, np.bool_)):
        raise LookaheadError(f"{where}: choices must be integer candidate indices, got dtype {array.dtype}")
    if array.size != n_examples:
        raise LookaheadError(f"{where}: {n_examples} examples but {array.size} choices")
    if n_examples == 0:
        raise LookaheadError(f"{where}: no examples to score")
    array = array.astype(np.int64)
    sizes = np.full(n_examples, n_candidates) if isinstance(n_candidates, int) else np.asarray(n_candidates)
    bad = np.flatnonzero((array < 0) | (array >= sizes))
    if bad.size:
        i = int(bad[0])
        raise LookaheadError(
            f"{where}: choice {int(array[i])} at position {i} is out of range for {int(sizes[i])} candidates "
            f"({bad.size} invalid choice(s))"
        )
    return array


def _checked(examples: Sequence[RoutingExample], choices: Choices, where: str) -> np.ndarray:
    """Choices validated against the examples' own pool sizes."""
    return check_choices(choices, len(examples), [len(e.scores) for e in examples], where)


def _chosen_scores(examples: Sequence[RoutingExample], choices: np.ndarray) -> np.ndarray:
    """The raw score of the chosen candidate of each example."""
    return np.array([e.scores[c] for e, c in zip(examples, choices, strict=True)], dtype=np.float64)


def _extra(example: RoutingExample, key: str, where: str, what: str) -> Any:
    """A required per-candidate ``extras`` field (one entry per candidate), with an error naming the prompt when the
    reader did not provide it or gave it for another pool size; ``what`` names the entries in that error."""
    if key not in example.extras:
        raise LookaheadError(f"{where}: prompt {example.prompt_id!r} lacks extras[{key!r}]")
    value = example.extras[key]
    if len(value) != len(example.scores):
        raise LookaheadError(
            f"{where}: prompt {example.prompt_id!r} has {what} for {len(value)} candidates, "
            f"expected {len(example.scores)}"
        )
    return value


# --------------------------------------------------------------------------------------------------- AlpacaEval


def alpaca_eval_metrics(examples: Sequence[RoutingExample], choices: Choices, *, compute_lc: bool = True) -> dict:
    """AlpacaEval 2.0 weighted win rate of the routed responses against the reference (gpt4_1106_preview).

    The preference ``p`` ∈ [1, 2] of the chosen candidate is its score (1 = reference wins, 2 = routed wins). These
    formulas are alpaca_eval's ``get_winrate`` and reproduce the shipped leaderboard rows. The LC win rate comes
    from alpaca_eval itself (see :mod:`lightning_lookahead.metrics.alpaca_lc`) and is ``None`` when unavailable,
    with ``lc_unavailable_reason`` saying why; ``compute_lc=False`` skips the attempt.
    """
    where = "AlpacaEval"
    c = _checked(examples, choices, where)
    p = _chosen_scores(examples, c)
    out_of_range = np.flatnonzero((p < 1.0) | (p > 2.0))
    if out_of_range.size:
        i = int(out_of_range[0])
        raise LookaheadError(
            f"{where}: preference {p[i]} of prompt {examples[i].prompt_id!r} is outside [1, 2] "
            "(expected weighted_alpaca_eval_gpt4_turbo preferences)"
        )
    n = p.size
    wins = p - 1.0
    n_wins = int((p > 1.5).sum())
    n_wins_base = int((p < 1.5).sum())
    n_draws = int((p == 1.5).sum())
    standard_error = float(100.0 * wins.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    result: dict[str, Any] = {
        "win_rate": float(100.0 * wins.mean()),
        "standard_error": standard_error,
        "n_wins": n_wins,
        "n_wins_base": n_wins_base,
        "n_draws": n_draws,
        "n_total": n,
        "discrete_win_rate": 100.0 * (n_wins + n_draws / 2) / n,
        "avg_length": float(np.mean([len(e.responses[j]) for e, j in zip(examples, c, strict=True)])),
    }
    lc = length_controlled_win_rate(examples, c) if compute_lc else LCResult(None, None, "LC win rate not requested")
    result["lc_win_rate"] = lc.win_rate
    result["lc_standard_error"] = lc.standard_error
    result["lc_unavailable_reason"] = lc.reason
    return result


# --------------------------------------------------------------------------------------------------- Arena-Hard


def arena_hard_metrics(
    examples: Sequence[RoutingExample], choices: Choices, *, drop_null_verdicts: bool = False
) -> dict:
    """Arena-Hard v0.1 score of the router against the baseline gpt-4-0314, from the chosen models' stored games.

    Each game is one battle (3 for a ``>>`` verdict). Game 1 has the baseline in slot A, game 2 in slot B. A null
    verdict counts as 3 baseline wins (paper convention; ``drop_null_verdicts=True`` drops it, as Arena-Hard does);
    any other unrecognised verdict is dropped.

    Why a closed form: the original fits a Bradley–Terry model by unpenalised logistic regression without intercept
    (battles duplicated, a tie = one win for each side, scale 400, base 10, baseline anchored at 1000) and reports
    100 × the predicted win rate against the baseline. With only two players the fit has one free parameter, the
    rating gap d, and the logistic-regression score equation sets the predicted win probability σ(d·ln10/400) equal
    to the observed share of router wins with ties counted half. Hence ``score = 100·(W + T/2)/(W + T + L)``
    exactly (duplication scales W, T, L alike), and it stays finite where the fit would diverge (no wins or no
    losses: the limits 0 and 100).
    """
    where = "ArenaHard"
    c = _checked(examples, choices, where)
    wins = ties = losses = 0
    n_null = n_dropped = 0
    for example, j in zip(examples, c, strict=True):
        games = _extra(example, "games", where, "games")
        if len(games[j]) != 2:
            raise LookaheadError(
                f"{where}: prompt {example.prompt_id!r} candidate {j}: expected 2 game verdicts, got {len(games[j])}"
            )
        for game_number, verdict in enumerate(games[j], start=1):
            model_slot = "B" if game_number == 1 else "A"
            if verdict is None:
                n_null += 1
                if not drop_null_verdicts:
                    losses += _NULL_WEIGHT
                continue
            parsed = _VERDICTS.get(verdict) if isinstance(verdict, str) else None
            if parsed is None:
                n_dropped += 1
                continue
            winner, weight = parsed
            if winner == "tie":
                ties += weight
            elif winner == model_slot:
                wins += weight
            else:
                losses += weight
    n_battles = wins + ties + losses
    if n_battles == 0:
        raise LookaheadError(f"{where}: no valid battles among {len(examples)} prompts (every verdict was dropped)")
    return {
        "score": 100.0 * (wins + ties / 2) / n_battles,
        "n_battles": n_battles,
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "n_null_verdicts": n_null,
        "n_dropped_verdicts": n_dropped,
    }


# --------------------------------------------------------------------------------------------------- MT-Bench


def mt_bench_metrics(examples: Sequence[RoutingExample], choices: Choices, *, drop_unparsed: bool = False) -> dict:
    """MT-Bench single-answer grading (1–10) of the chosen models: both turns, overall and per category.

    By default the −1 judgments (the judge's rating could not be parsed) are used as scores, which reproduces the
    paper (METHOD §12, §13.8); then ``score = (turn_1 + turn_2) / 2``. ``drop_unparsed=True`` follows FastChat and
    drops them, averaging the remaining judgments (``score`` = mean of all kept judgments, as FastChat reports).
    ``n_unparsed`` always counts the −1 judgments among the chosen ones.
    """
    where = "MT-Bench"
    c = _checked(examples, choices, where)
    turn_1: list[float] = []
    turn_2: list[float] = []
    by_category: dict[str, tuple[list[float], list[float]]] = {}
    n_unparsed = 0
    for example, j in zip(examples, c, strict=True):
        turn_scores = _extra(example, "turn_scores", where, "turn scores")
        pair = turn_scores[j]
        if len(pair) != 2 or not all(isinstance(t, numbers.Real) and not isinstance(t, bool) for t in pair):
            raise LookaheadError(f"{where}: prompt {example.prompt_id!r} candidate {j}: expected 2 numeric turn scores")
        category = example.extras.get("category")
        bucket = by_category.setdefault(str(category), ([], [])) if category is not None else None
        for turn, value in enumerate(pair):
            if value == -1:
                n_unparsed += 1
                if drop_unparsed:
                    continue
            (turn_1 if turn == 0 else turn_2).append(float(value))
            if bucket is not None:
                bucket[turn].append(float(value))

    def summary(first: list[float], second: list[float]) -> tuple[float, float, float]:
        mean_1 = float(np.mean(first)) if first else math.nan
        mean_2 = float(np.mean(second)) if second else math.nan
        if drop_unparsed:
            pooled = first + second
            return mean_1, mean_2, float(np.mean(pooled)) if pooled else math.nan
        return mean_1, mean_2, (mean_1 + mean_2) / 2

    t1, t2, score = summary(turn_1, turn_2)
    result: dict[str, Any] = {"score": score, "turn_1": t1, "turn_2": t2, "n_unparsed": n_unparsed}
    for name in sorted(by_category):
        result[f"category/{name}"] = summary(*by_category[name])[2]
    return result


# --------------------------------------------------------------------------------------------------- accuracy


def accuracy_metrics(examples: Sequence[RoutingExample], choices: Choices) -> dict:
    """Task accuracy / pass@1 (GSM8k, MATH, HumanEval, MBPP): 100 × mean 0/1 score of the chosen candidates."""
    c = _checked(examples, choices, "accuracy")
    return {"accuracy": float(100.0 * _chosen_scores(examples, c).mean())}


def domain_metrics(examples: Sequence[RoutingExample], choices: Choices) -> dict:
    """A domain of a user's dataset: ``score`` = mean raw score of the chosen candidates (the file's own scale)."""
    c = _checked(examples, choices, "domain score")
    return {"score": float(_chosen_scores(examples, c).mean())}


def headline(benchmark: str) -> str:
    """The headline metric key of a paper benchmark, or ``score`` for a domain of a user's dataset."""
    return HEADLINE.get(benchmark, "score")


# --------------------------------------------------------------------------------------------------- routing


def routing_summary(examples: Sequence[RoutingExample], choices: Choices, candidates: Sequence[str]) -> dict:
    """How often the router picks the oracle's (first-argmax) candidate, and how its picks split over the pool."""
    c = _checked(examples, choices, "routing summary")
    sizes = {len(e.scores) for e in examples}
    if sizes != {len(candidates)}:
        raise LookaheadError(
            f"routing summary: {len(candidates)} candidate names but examples have {sorted(sizes)} scores each"
        )
    best = np.array([e.best_index for e in examples], dtype=np.int64)
    counts = np.bincount(c, minlength=len(candidates))
    return {
        "routing_accuracy": float(100.0 * (c == best).mean()),
        "picks": {name: float(counts[j] / c.size) for j, name in enumerate(candidates)},
        "n": int(c.size),
    }


def score_benchmark(
    name: str,
    examples: Sequence[RoutingExample],
    choices: Choices,
    candidates: Sequence[str],
    *,
    compute_lc: bool = True,
    drop_null_verdicts: bool = False,
    drop_unparsed: bool = False,
) -> dict:
    """All metrics of one benchmark for one choice vector, merged with :func:`routing_summary`.

    Headline keys: ``win_rate`` and ``lc_win_rate`` (AlpacaEval), ``score`` (ArenaHard; MT-Bench on the 1–10
    scale, with ``turn_1``/``turn_2``), ``accuracy`` (0–100, GSM8k/MATH/HumanEval/MBPP); always ``n``, ``picks``
    and ``routing_accuracy``. The keyword options select the upstream conventions described on each metric.
    """
    mismatched = next((e for e in examples if e.benchmark != name), None)
    if mismatched is not None:
        raise LookaheadError(
            f"{name}: prompt {mismatched.prompt_id!r} belongs to benchmark {mismatched.benchmark!r}, not {name!r}"
        )
    if name == "AlpacaEval":
        metrics = alpaca_eval_metrics(examples, choices, compute_lc=compute_lc)
    elif name == "ArenaHard":
        metrics = arena_hard_metrics(examples, choices, drop_null_verdicts=drop_null_verdicts)
    elif name == "MT-Bench":
        metrics = mt_bench_metrics(examples, choices, drop_unparsed=drop_unparsed)
    elif name in ACCURACY_BENCHMARKS:
        metrics = accuracy_metrics(examples, choices)
    elif name in BENCHMARKS:  # a paper benchmark added to BENCHMARKS without a metric here
        raise LookaheadError(f"no metric is defined for benchmark {name!r}")
    else:  # a domain of the user's own dataset
        metrics = domain_metrics(examples, choices)
    return {**metrics, **routing_summary(examples, choices, candidates)}


# --------------------------------------------------------------------------------------------------- validation


def validation_reward(scores: np.ndarray | torch.Tensor | Sequence[Sequence[float]], choices: Choices) -> dict:
    """Held-out reward of a choice vector on raw scores (P, N): the model-selection metric (``eval_reward``).

    ``reward = mean_i s̃_{i,c_i}`` with per-prompt min-max normalised scores, in [0, 1].
    ``normalized_reward = (reward − mean_i min_j s̃) / (mean_i max_j s̃ − mean_i min_j s̃)`` rescales it so that always
    picking the worst is 0 and the oracle is 1. The denominator is 0 only when every prompt's candidates tie; then
    every choice is equally good, nothing distinguishes routers, and we report 0.0 (not NaN, which would break
    "higher is better" checkpoint selection).
    """
    raw = torch.as_tensor(np.asarray(scores, dtype=np.float64))
    if raw.ndim != 2 or raw.shape[1] == 0:
        raise LookaheadError(
            f"validation reward expects raw scores of shape (prompts, candidates), got {tuple(raw.shape)}"
        )
    c = check_choices(choices, raw.shape[0], raw.shape[1], "validation reward")
    normed = normalize_scores(raw, "min-max").numpy()
    rows = np.arange(c.size)
    reward = float(normed[rows, c].mean())
    low = float(normed.min(axis=1).mean())
    high = float(normed.max(axis=1).mean())
    span = high - low
    best = np.argmax(raw.numpy(), axis=1)
    return {
        "reward": reward,
        "normalized_reward": (reward - low) / span if span > 0 else 0.0,
        "routing_accuracy": float(100.0 * (c == best).mean()),
        "n": int(c.size),
    }
