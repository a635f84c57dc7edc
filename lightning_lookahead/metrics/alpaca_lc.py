"""AlpacaEval 2.0 length-controlled (LC) win rate through the optional ``alpaca_eval`` package.

The LC win rate is a GLM fitted by ``alpaca_eval.metrics.get_length_controlled_winrate``. That GLM needs the
instruction-difficulty table ``df_gamed.csv`` from the Hugging Face dataset ``tatsu-lab/alpaca_eval`` at run time
(METHOD §10, §13.13), so it is unavailable offline unless that file is already in alpaca_eval's HF cache. We never
re-implement the GLM nor substitute another number: when the package is missing or the call fails, the result carries
``None`` and a one-line reason, and the raw weighted win rate remains the offline headline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError

#: The annotator whose preferences the shipped AlpacaEval scores are.
ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
#: The AlpacaEval 2.0 reference model (``output_1``), used when a record does not name it.
REFERENCE_GENERATOR = "gpt4_1106_preview"
#: ``generator_2`` of every row: the routed mix counts as one model.
ROUTER_GENERATOR = "router"


@dataclass(frozen=True)
class LCResult:
    """An LC win rate and its standard error (both in %), or ``None`` with the reason it is unavailable."""

    win_rate: float | None
    standard_error: float | None = None
    reason: str | None = None

    @property
    def available(self) -> bool:
        """Whether alpaca_eval produced a number."""
        return self.win_rate is not None


def lc_rows(examples: Sequence[RoutingExample], choices: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
    """AlpacaEval annotation rows for the routed responses, one per example, in the format alpaca_eval expects.

    ``index`` is the example's position: alpaca_eval looks each row's instruction difficulty up by it, so the examples
    must be the full AlpacaEval set in file order for the LC value to be meaningful.
    """
    if len(examples) != len(choices):
        raise LookaheadError(f"AlpacaEval LC: {len(examples)} examples but {len(choices)} choices")
    rows = []
    for index, (example, choice) in enumerate(zip(examples, choices, strict=True)):
        c = int(choice)
        if not 0 <= c < len(example.responses):
            raise LookaheadError(
                f"AlpacaEval LC: choice {c} out of range for prompt {example.prompt_id!r} "
                f"({len(example.responses)} candidates)"
            )
        extras = example.extras
        if "reference" not in extras:
            raise LookaheadError(f"AlpacaEval LC: prompt {example.prompt_id!r} has no 'reference' output in extras")
        rows.append(
            {
                "index": index,
                "instruction": extras.get("instruction", example.prompt),
                "output_1": extras["reference"],
                "generator_1": extras.get("generator_1", REFERENCE_GENERATOR),
                "dataset": extras.get("dataset"),
                "output_2": example.responses[c],
                "generator_2": ROUTER_GENERATOR,
                "annotator": ANNOTATOR,
                "preference": float(example.scores[c]),
            }
        )
    return rows


#: The reason of the first failed call in this process (not an ImportError), so later calls fail fast.
_FAILURE: list[str] = []


def _one_line(error: BaseException) -> str:
    """The first line of an exception, prefixed by its type, for a compact reason string."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def length_controlled_win_rate(examples: Sequence[RoutingExample], choices: Sequence[int] | np.ndarray) -> LCResult:
    """The LC win rate of the routed responses, or ``None`` with a reason when alpaca_eval cannot compute it.

    The package is imported here, not at module level, because it is an optional extra. Weights are not saved
    (``save_weights_dir=None``) so that evaluating never writes into the installed package.
    """
    rows = lc_rows(examples, choices)
    try:
        from alpaca_eval.metrics import get_length_controlled_winrate
    except ImportError as error:
        return LCResult(None, None, f"the optional package alpaca_eval is not installed ({_one_line(error)})")
    if _FAILURE:
        return LCResult(None, None, _FAILURE[0])
    try:
        import pandas as pd  # a dependency of alpaca_eval, so present whenever it is

        metrics = get_length_controlled_winrate(pd.DataFrame(rows), save_weights_dir=None)
    except Exception as error:  # any failure (offline HF hub, missing data, API change) means "unavailable"
        reason = f"alpaca_eval could not compute the LC win rate ({_one_line(error)})"
        # Remember it: without HF_HUB_OFFLINE a failed hub download costs ~45 s of retries, once is enough.
        _FAILURE.append(reason)
        return LCResult(None, None, reason)
    value = _finite_or_none(metrics.get("length_controlled_winrate"))
    if value is None:
        return LCResult(None, None, "alpaca_eval returned no finite length_controlled_winrate")
    return LCResult(value, _finite_or_none(metrics.get("lc_standard_error")), None)


def _finite_or_none(value: Any) -> float | None:
    """A float if ``value`` is a finite number, else ``None``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
