"""The one record every reader produces, and the names it uses.

Everything downstream of the readers (splits, tokenisation, metrics, tables) sees only
:class:`RoutingExample` lists and a candidate pool; no code after the readers knows file formats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lightning_lookahead.errors import LookaheadError, unknown_name

#: The paper's candidate pool, in the order that fixes label index j and model-id token j.
PAPER_CANDIDATES: tuple[str, ...] = (
    "Yi-1.5-34B-Chat",
    "internlm2_5-20b-chat",
    "Phi-3-medium-4k-instruct",
    "Llama-3.1-8B-Instruct",
    "Qwen2.5-Coder-7B-Instruct",
)

#: Test benchmarks, in the order tables show them.
BENCHMARKS: tuple[str, ...] = ("AlpacaEval", "ArenaHard", "MT-Bench", "GSM8k", "MATH", "HumanEval", "MBPP")

#: Training sets (folder names under ``train/``), with the folder holding their per-model score files.
TRAIN_SETS: dict[str, str] = {
    "UltraFeedback": "Skywork-Reward-Gemma-2-27B-v0.2",
    "OpenMathInstruct2_filtered2": "gt2-Skywork-Reward-Gemma-2-27B-v0.2",
    "SelfOSSInstructSC2_filtered2": "responses",
}


#: ``RoutingExample.extras`` keys for recorded token counts (a dataset file's ``tokens:``): the per-candidate
#: response lengths and the prompt's length. The cost sweep prefers them to a tokenizer (costs/token_counts.py).
RESPONSE_TOKENS_KEY = "response_tokens"
PROMPT_TOKENS_KEY = "prompt_tokens"


@dataclass(frozen=True)
class RoutingExample:
    """One prompt with every candidate's response and raw score, in candidate-pool order.

    ``extras`` carries what a benchmark metric needs beyond the scores (e.g. Arena-Hard verdicts,
    MT-Bench per-turn scores, AlpacaEval reference output); it is empty for training data.
    """

    prompt_id: str
    prompt: str
    responses: tuple[str, ...]
    scores: tuple[float, ...]
    benchmark: str
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def best_index(self) -> int:
        """Index of the best candidate; ties go to the first (paper convention)."""
        best = 0
        for j, s in enumerate(self.scores):
            if s > self.scores[best]:
                best = j
        return best


def check_candidates(candidates: Sequence[str], available: Sequence[str], where: str) -> tuple[str, ...]:
    """Validate a candidate pool against the models a source provides, suggesting close names."""
    if len(candidates) < 2:
        raise LookaheadError(f"{where}: a candidate pool needs at least 2 models, got {list(candidates)}")
    if len(set(candidates)) != len(candidates):
        raise LookaheadError(f"{where}: candidate pool has duplicates: {list(candidates)}")
    for name in candidates:
        if name not in available:
            raise unknown_name(f"model for {where}", name, sorted(available))
    return tuple(candidates)


def check_score(value: Any, path: str, *, line: int | None = None, key: str | None = None) -> float:
    """Coerce a score to float, rejecting non-numbers, NaN and infinities with a located error."""
    from lightning_lookahead.errors import DataError

    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, (int, float)):
        raise DataError(path, f"expected a numeric score, got {value!r}", line=line, key=key)
    value = float(value)
    if not math.isfinite(value):
        raise DataError(path, f"score is {value}, expected a finite number", line=line, key=key)
    return value
