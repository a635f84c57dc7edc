"""The per-candidate cost vector a server routes with when its backends file sets no ``cost``.

``lookahead serve`` (for ``router:λ=...``) and ``lookahead calibrate`` both call :func:`price_table_costs`, so a λ
fitted by one means the same trade-off when the other applies it. No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def price_table_costs(
    candidates: Sequence[str],
    response_tokens: Mapping[str, float] | None,
    prices: str | Path | None = None,
    *,
    output_tokens: float | None = None,
) -> np.ndarray | None:
    """(C,) expected USD per 1,000 requests: the price table's output price × each candidate's response length.

    The length is ``output_tokens`` for every candidate if given, else the run's recorded mean response length per
    candidate (``response_tokens``, from the export); None when neither is available. Only output tokens are priced
    (a server does not tokenise each request for its cost), so differences in input price between candidates are
    ignored; a ``cost`` per backend in backends.yaml replaces this.
    """
    if output_tokens is not None:
        tokens = np.full(len(candidates), float(output_tokens))
    elif response_tokens is None or not set(candidates) <= set(response_tokens):
        return None
    else:
        tokens = np.array([response_tokens[c] for c in candidates], dtype=np.float64)
    from lightning_lookahead.costs.prices import load_prices
    from lightning_lookahead.costs.token_counts import usd_per_1000_prompts

    return usd_per_1000_prompts(np.zeros(1), tokens, load_prices(prices), candidates)[0]
