"""Scorers for `lookahead data score`, chosen by a spec string.

=========================== ===================================================================================
spec                        scores
=========================== ===================================================================================
``judge:FILE[:NAME]``       LLM judge 1–10, endpoint ``NAME`` of a backends-style YAML (NAME optional if only one)
``judge``                   the same, endpoint from ``--judge-base-url`` / ``--judge-model``
``reward:MODEL``            reward model logit; MODEL is a Hub id or a local folder
``math``                    1/0 final-answer equivalence with the row's ``reference`` (math_verify)
``code``                    1/0 whether the response's code passes the row's ``reference`` tests
``auto[:SPEC]``             per row: ``math`` or ``code`` by its benchmark/domain (or, without one, by its
                            reference); open-ended rows use SPEC (a judge or reward spec), or get null without one
=========================== ===================================================================================
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lightning_lookahead.errors import LookaheadError, unknown_name
from lightning_lookahead.scorers.base import OnResult, Progress, ScoreItem, Scorer, ScoreResult, failed, finished

__all__ = ["AutoScorer", "ScoreItem", "ScoreResult", "Scorer", "ScorerOptions", "parse_scorer", "route_of"]

KINDS = ("judge", "reward", "math", "code", "auto")
MATH_DOMAINS = ("math", "gsm8k", "openmathinstruct")
CODE_DOMAINS = ("code", "humaneval", "mbpp", "selfossinstruct")
OPEN_ENDED_WITHOUT_FALLBACK = (
    "open-ended row (no math/code benchmark or reference): use --scorer auto:judge:... or auto:reward:..."
)
_LOOKS_LIKE_TESTS = re.compile(r"^\s*(assert\b|def\s+(check|test\w*)\s*\(|import\s+unittest)", re.MULTILINE)


@dataclass(frozen=True)
class ScorerOptions:
    """The command-line settings the scorers take (defaults as documented in docs/data.md)."""

    judge_base_url: str | None = None
    judge_model: str | None = None
    judge_api_key_env: str | None = None
    judge_timeout: float = 60.0
    judge_concurrency: int = 8
    judge_retries: int = 2
    batch_size: int = 8
    device: str = "cpu"
    max_length: int | None = None
    code_timeout: float = 10.0
    code_memory_mb: int = 1024
    workers: int = 4
    math_timeout: int = 5


def parse_scorer(spec: str, options: ScorerOptions | None = None) -> Scorer:
    """The scorer a spec names; a malformed spec or a bad endpoint file is a :class:`LookaheadError`."""
    options = options or ScorerOptions()
    kind, _, rest = spec.strip().partition(":")
    if kind == "math" and not rest:
        from lightning_lookahead.scorers.math_answer import MathAnswerScorer

        return MathAnswerScorer(timeout_s=options.math_timeout)
    if kind == "code" and not rest:
        from lightning_lookahead.scorers.code_tests import CodeTestScorer

        return CodeTestScorer(timeout_s=options.code_timeout, memory_mb=options.code_memory_mb, workers=options.workers)
    if kind == "reward":
        if not rest:
            raise LookaheadError("--scorer reward:MODEL needs a Hub id or a local folder after 'reward:'")
        from lightning_lookahead.scorers.reward_model import RewardModelScorer

        return RewardModelScorer(
            rest, batch_size=options.batch_size, device=options.device, max_length=options.max_length
        )
    if kind == "judge":
        return _judge(rest, options)
    if kind == "auto":
        fallback = parse_scorer(rest, options) if rest else None
        if fallback is not None and fallback.name.split(":")[0] not in ("judge", "reward"):
            raise LookaheadError(f"--scorer {spec}: the open-ended fallback of auto must be a judge or reward spec")
        return AutoScorer(parse_scorer("math", options), parse_scorer("code", options), fallback)
    if kind in KINDS:
        raise LookaheadError(f"--scorer {spec}: {kind!r} takes no argument after ':'")
    raise unknown_name("scorer", kind, KINDS)


def _judge(rest: str, options: ScorerOptions) -> Scorer:
    from lightning_lookahead.scorers.judge import JudgeScorer, endpoint_from_backends, endpoint_from_url

    if rest:
        if options.judge_base_url:
            raise LookaheadError("give the judge as judge:FILE[:NAME] or with --judge-base-url, not both")
        path, name = (rest, None) if Path(rest).is_file() or ":" not in rest else rest.rsplit(":", 1)
        endpoint = endpoint_from_backends(path, name or None, options.judge_timeout)
    elif options.judge_base_url:
        endpoint = endpoint_from_url(
            options.judge_base_url, options.judge_model, options.judge_api_key_env, options.judge_timeout
        )
    else:
        raise LookaheadError("--scorer judge needs an endpoint: judge:FILE[:NAME] or --judge-base-url/--judge-model")
    return JudgeScorer(endpoint, concurrency=options.judge_concurrency, max_retries=options.judge_retries)


def route_of(item: ScoreItem) -> str:
    """``math``, ``code`` or ``open`` for ``auto``: by benchmark/domain, else by the reference, else open-ended."""
    if item.domain:
        name = re.sub(r"[^a-z0-9]", "", item.domain.lower())
        if name.startswith(MATH_DOMAINS):
            return "math"
        if name.startswith(CODE_DOMAINS):
            return "code"
        return "open"
    if item.reference and item.reference.strip():
        return "code" if _LOOKS_LIKE_TESTS.search(item.reference) else "math"
    return "open"


class AutoScorer:
    """Sends each item to the math, code or open-ended scorer (see :func:`route_of`) and keeps the input order."""

    def __init__(self, math: Scorer, code: Scorer, open_ended: Scorer | None) -> None:
        self.scorers = {"math": math, "code": code, "open": open_ended}
        self.name = "auto" + (f"+{open_ended.name}" if open_ended is not None else "")

    def score(
        self, items: Sequence[ScoreItem], progress: Progress | None = None, *, on_result: OnResult | None = None
    ) -> list[ScoreResult]:
        results: list[ScoreResult | None] = [None] * len(items)
        for route, scorer in self.scorers.items():
            chosen = [i for i, item in enumerate(items) if route_of(item) == route]
            if not chosen:
                continue

            def mapped(j: int, result: ScoreResult, chosen: list[int] = chosen) -> None:
                if on_result is not None:
                    on_result(chosen[j], result)

            if scorer is None:
                unscored = failed(OPEN_ENDED_WITHOUT_FALLBACK)
                outcome = [finished(j, unscored, progress, mapped) for j in range(len(chosen))]
            else:
                outcome = scorer.score([items[i] for i in chosen], progress, on_result=mapped)
            for i, result in zip(chosen, outcome, strict=True):
                results[i] = result
        return [r for r in results if r is not None]
