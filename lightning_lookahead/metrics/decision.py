"""The one argmax every decision goes through: benchmark metrics, training reports and the cost-aware rules.

NaN never wins: a NaN score ranks below every other score, ``-inf`` included, so a row with any score that is a
number chooses among those (ties to the first index, as numpy's argmax and the paper). A row with no number at all
(all NaN) has nothing to choose from, and choosing index 0 would silently credit the first candidate; it is an error
naming the row. numpy only (no torch), so the server and the command-line tools can import it cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lightning_lookahead.errors import LookaheadError


def decide(score_matrix: np.ndarray | Sequence[Sequence[float]] | Any) -> np.ndarray:
    """Per row, the index of the highest score that is not NaN, ties to the first index (int64, shape (n,)).

    Takes anything array-like, torch tensors included (moved to the CPU first). An all-NaN row raises.
    """
    if hasattr(score_matrix, "detach"):  # a torch tensor, without importing torch here
        score_matrix = score_matrix.detach().cpu().numpy()
    matrix = np.asarray(score_matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise LookaheadError(f"decide expects a (prompts, candidates) score matrix, got shape {matrix.shape}")
    missing = np.isnan(matrix)
    if not missing.any():
        return np.argmax(matrix, axis=1).astype(np.int64)
    empty = np.flatnonzero(missing.all(axis=1))
    if empty.size:
        raise LookaheadError(
            f"score matrix has {empty.size} row(s) with no score that is a number (all NaN), first at row "
            f"{int(empty[0])}: there is nothing to choose from"
        )
    chosen = np.argmax(np.where(missing, -np.inf, matrix), axis=1)
    # A row whose numbers are all -inf ties them with its NaNs: its first number, not its first NaN, is chosen.
    lost = missing[np.arange(matrix.shape[0]), chosen]
    chosen[lost] = np.argmax(~missing[lost], axis=1)
    return chosen.astype(np.int64)
