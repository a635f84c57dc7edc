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


def test_each_candidate_is_priced_by_its_backend_else_the_price_table_else_not_at_all():
    from lightning_lookahead.costs.request_costs import resolve_costs

    candidates = ["mathbot", "Yi-1.5-34B-Chat", "Llama-3.1-8B-Instruct", "chatbot"]
    lengths = {"Yi-1.5-34B-Chat": 500.0, "mathbot": 100.0}  # no recorded length for Llama
    costs = resolve_costs(candidates, {"mathbot": 2e-4, "chatbot": None}, lengths, backends_label="b.yaml")
    assert costs.values[:2] == pytest.approx((0.2, 0.4))  # 2e-4 USD per request; 0.80/1M × 500 tokens, per 1,000
    assert costs.values[2:] == (None, None) and costs.missing == ["Llama-3.1-8B-Instruct", "chatbot"]
    assert costs.vector() is None  # cost-aware rules need every candidate's cost
    assert costs.missing_reason() == (
        "'Llama-3.1-8B-Instruct' (in the shipped price table, but the run records no response length); "
        "'chatbot' (not in the shipped price table)"
    )
    assert costs.describe() == (
        "the `cost` of the backends in b.yaml for mathbot; output prices of the shipped price table × the run's "
        "mean response length (output tokens only) for Yi-1.5-34B-Chat"
    )


def test_costs_of_own_models_from_backends_or_a_price_file_and_none_without_either(tmp_path):
    from lightning_lookahead.costs.request_costs import resolve_costs

    candidates = ["mathbot", "codebot"]
    lengths = {"mathbot": 200.0, "codebot": 400.0}
    everywhere = resolve_costs(candidates, {"mathbot": 1e-3, "codebot": 2e-3}, lengths)
    np.testing.assert_allclose(everywhere.vector(), [1.0, 2.0])
    assert everywhere.describe() == "the `cost` of the backends in backends.yaml"
    nowhere = resolve_costs(candidates, {}, lengths)  # the shipped table names neither: no error, no cost
    assert nowhere.vector() is None and nowhere.missing == candidates
    assert nowhere.missing_reason() == "'mathbot', 'codebot' (not in the shipped price table)"
    prices = tmp_path / "mine.yaml"
    prices.write_text("models:\n  mathbot: {input: 1, output: 2}\n  codebot: {input: 1, output: 5}\n")
    table = resolve_costs(candidates, {}, lengths, prices)
    np.testing.assert_allclose(table.vector(), [1000 * 2 * 200 / 1e6, 1000 * 5 * 400 / 1e6])
    assert str(prices) in table.describe()
    fixed = resolve_costs(candidates, {}, None, prices, output_tokens=100)
    np.testing.assert_allclose(fixed.vector(), [0.2, 0.5])
    assert "100 output tokens" in fixed.describe()
