"""The per-candidate cost vector serve and calibrate share: output price × expected response length."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_lookahead.costs.prices import load_prices
from lightning_lookahead.costs.request_costs import price_table_costs

CANDIDATES = ["Yi-1.5-34B-Chat", "Llama-3.1-8B-Instruct"]


def test_output_price_times_recorded_length_in_usd_per_1000_requests():
    _, out_price = load_prices().arrays(CANDIDATES)
    lengths = {"Yi-1.5-34B-Chat": 500.0, "Llama-3.1-8B-Instruct": 250.0, "other": 1.0}
    costs = price_table_costs(CANDIDATES, lengths)
    np.testing.assert_allclose(costs, 1000 * out_price * np.array([500.0, 250.0]) / 1e6)
    assert costs[0] == pytest.approx(0.4)  # 0.80 USD per 1M tokens × 500 tokens × 1,000 requests


def test_output_tokens_override_and_missing_lengths():
    _, out_price = load_prices().arrays(CANDIDATES)
    np.testing.assert_allclose(price_table_costs(CANDIDATES, None, output_tokens=100), out_price * 100 / 1e3)
    assert price_table_costs(CANDIDATES, None) is None
    assert price_table_costs(CANDIDATES, {"Yi-1.5-34B-Chat": 5.0}) is None  # one candidate without a length
