"""AlpacaEval LC win rate: rows fed to alpaca_eval, and the unavailable paths (never a substitute number)."""

from __future__ import annotations

import sys
import time
import types

import pandas as pd
import pytest

from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.metrics import alpaca_lc
from lightning_lookahead.metrics.alpaca_lc import LCResult, lc_rows, length_controlled_win_rate
from lightning_lookahead.metrics.benchmarks import alpaca_eval_metrics

EXAMPLES = [
    RoutingExample(
        f"a{i}",
        f"prompt {i}",
        (f"resp {i} of m0", f"resp {i} of m1"),
        (1.0 + 0.1 * i, 2.0 - 0.1 * i),
        "AlpacaEval",
        {
            "instruction": f"instruction {i}",
            "reference": f"ref {i}",
            "dataset": "helpful_base",
            "generator_1": "gpt4_1106_preview",
        },
    )
    for i in range(3)
]


def fake_alpaca_eval(monkeypatch: pytest.MonkeyPatch, function) -> None:
    """Install a stand-in ``alpaca_eval.metrics`` module exposing ``get_length_controlled_winrate``."""
    package = types.ModuleType("alpaca_eval")
    metrics = types.ModuleType("alpaca_eval.metrics")
    metrics.get_length_controlled_winrate = function
    package.metrics = metrics
    monkeypatch.setitem(sys.modules, "alpaca_eval", package)
    monkeypatch.setitem(sys.modules, "alpaca_eval.metrics", metrics)
    monkeypatch.setattr(alpaca_lc, "_FAILURE", [])


def test_rows_carry_the_routed_response() -> None:
    rows = lc_rows(EXAMPLES, [1, 0, 1])
    assert rows[0] == {
        "index": 0,
        "instruction": "instruction 0",
        "output_1": "ref 0",
        "generator_1": "gpt4_1106_preview",
        "dataset": "helpful_base",
        "output_2": "resp 0 of m1",
        "generator_2": "router",
        "annotator": "weighted_alpaca_eval_gpt4_turbo",
        "preference": 2.0,
    }
    assert [r["preference"] for r in rows] == pytest.approx([2.0, 1.1, 1.8])
    assert [r["index"] for r in rows] == [0, 1, 2]


def test_rows_validate() -> None:
    with pytest.raises(LookaheadError, match="3 examples but 2 choices"):
        lc_rows(EXAMPLES, [0, 1])
    with pytest.raises(LookaheadError, match="out of range"):
        lc_rows(EXAMPLES, [0, 1, 2])
    bare = RoutingExample("x", "p", ("a", "b"), (1.0, 2.0), "AlpacaEval", {})
    with pytest.raises(LookaheadError, match="reference"):
        lc_rows([bare], [0])


def test_missing_package_is_unavailable_and_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "alpaca_eval", None)  # import raises ImportError, installed or not
    monkeypatch.setitem(sys.modules, "alpaca_eval.metrics", None)
    start = time.monotonic()
    result = length_controlled_win_rate(EXAMPLES, [0, 1, 0])
    assert time.monotonic() - start < 1.0
    assert result == LCResult(None, None, result.reason) and not result.available
    assert "alpaca_eval is not installed" in result.reason and "\n" not in result.reason


def test_installed_package_is_called_with_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def get_length_controlled_winrate(annotations, **kwargs):
        calls.append((annotations, kwargs))
        return {"win_rate": 50.0, "length_controlled_winrate": 41.5, "lc_standard_error": 0.8}

    fake_alpaca_eval(monkeypatch, get_length_controlled_winrate)
    result = length_controlled_win_rate(EXAMPLES, [1, 1, 1])
    assert result == LCResult(41.5, 0.8, None) and result.available
    frame, kwargs = calls[0]
    assert isinstance(frame, pd.DataFrame) and list(frame["output_2"]) == [e.responses[1] for e in EXAMPLES]
    assert kwargs == {"save_weights_dir": None}
    out = alpaca_eval_metrics(EXAMPLES, [1, 1, 1])
    assert (out["lc_win_rate"], out["lc_standard_error"], out["lc_unavailable_reason"]) == (41.5, 0.8, None)


def test_failing_call_is_unavailable_not_substituted(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(annotations, **kwargs):
        raise OSError("Cannot reach https://huggingface.co: offline mode is enabled.\nMore details here")

    fake_alpaca_eval(monkeypatch, offline)
    result = length_controlled_win_rate(EXAMPLES, [0, 0, 0])
    assert result.win_rate is None and result.standard_error is None
    assert result.reason == (
        "alpaca_eval could not compute the LC win rate (OSError: Cannot reach https://huggingface.co: "
        "offline mode is enabled.)"
    )
    out = alpaca_eval_metrics(EXAMPLES, [0, 0, 0])
    assert out["lc_win_rate"] is None and out["win_rate"] == pytest.approx(10.0)


def test_a_failed_call_is_not_retried_in_the_same_process(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def offline(annotations, **kwargs):
        calls.append(1)
        raise OSError("hub unreachable")

    fake_alpaca_eval(monkeypatch, offline)
    first = length_controlled_win_rate(EXAMPLES, [0, 0, 0])
    second = length_controlled_win_rate(EXAMPLES, [1, 1, 1])
    assert len(calls) == 1 and first.reason == second.reason and "hub unreachable" in second.reason


def test_non_finite_result_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_alpaca_eval(monkeypatch, lambda annotations, **kwargs: {"length_controlled_winrate": float("nan")})
    result = length_controlled_win_rate(EXAMPLES, [0, 0, 0])
    assert result.win_rate is None and "no finite" in result.reason


def test_standard_error_missing_keeps_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_alpaca_eval(monkeypatch, lambda annotations, **kwargs: {"length_controlled_winrate": 33.0})
    assert length_controlled_win_rate(EXAMPLES, [0, 0, 0]) == LCResult(33.0, None, None)
