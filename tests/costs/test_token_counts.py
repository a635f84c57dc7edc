"""Token counts: data counts first, the embedded MiniLM tokenizer otherwise, cached on disk; and the costs they give."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_lookahead.costs.prices import Price, PriceTable
from lightning_lookahead.costs.token_counts import TokenCounter, cost_matrix, expected_cost_matrix
from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.errors import LookaheadError


def example(i: int, responses: tuple[str, str], **extras) -> RoutingExample:
    return RoutingExample(f"p{i}", "hello world", responses, (0.0, 1.0), "GSM8k", dict(extras))


def test_tokenizer_counts_are_cached(tmp_path, monkeypatch):
    counter = TokenCounter(cache_dir=tmp_path, progress=False)
    exs = [example(0, ("hello", "hello hello world")), example(1, ("", "world"))]
    counts = counter.counts(exs)
    assert counts.prompt.tolist() == [2, 2]
    assert counts.response.tolist() == [[1, 3], [0, 1]]
    assert counts.source == "response token counts from the minilm tokenizer"
    assert len(list(tmp_path.glob("GSM8k-*.npz"))) == 1
    assert (tmp_path / ".gitignore").read_text() == "*\n"

    fresh = TokenCounter(cache_dir=tmp_path, progress=False)
    monkeypatch.setattr(fresh, "count", lambda *a, **k: pytest.fail("recounted although cached"))
    assert fresh.counts(exs).response.tolist() == [[1, 3], [0, 1]]
    changed = [example(0, ("hello", "hello")), exs[1]]
    with pytest.raises(pytest.fail.Exception):
        fresh.counts(changed)  # other texts → another cache file → counted again


def test_data_counts_are_used_only_when_every_candidate_has_one(tmp_path):
    counter = TokenCounter(cache_dir=tmp_path, progress=False)
    exs = [
        example(0, ("hello", "hello world"), response_tokens=(40, None)),  # partial: tokenizer for both
        example(1, ("a", "b"), response_tokens=(7, 9)),
    ]
    counts = counter.counts(exs)
    assert counts.response.tolist() == [[1, 2], [7, 9]]
    assert counts.from_data.tolist() == [[False, False], [True, True]]
    assert "from the data (50%), else the minilm tokenizer" in counts.source


def test_wrong_number_of_data_counts_is_an_error(tmp_path):
    with pytest.raises(LookaheadError, match=r"extras\['response_tokens'\] has 1 counts, expected 2"):
        TokenCounter(cache_dir=tmp_path).counts([example(0, ("a", "b"), response_tokens=(3,))])


def test_realised_and_expected_costs_in_usd_per_1000_prompts(tmp_path):
    exs = [
        example(0, ("", ""), response_tokens=(100, 300), prompt_tokens=10),
        example(1, ("", ""), response_tokens=(300, 100), prompt_tokens=30),
    ]
    counts = TokenCounter(cache_dir=tmp_path).counts(exs)
    prices = PriceTable({"a": Price(1.0, 2.0), "b": Price(0.0, 4.0)}, "t", "t.yaml")
    # (10 × 1 + 100 × 2) / 1e6 USD = 2.1e-4 USD per prompt = 0.21 USD per 1,000 prompts.
    assert cost_matrix(counts, prices, ["a", "b"]) == pytest.approx(np.array([[0.21, 1.2], [0.63, 0.4]]))
    # Expected: the prompt's own tokens, each candidate's mean response length (200 for both).
    assert expected_cost_matrix(counts, prices, ["a", "b"]) == pytest.approx(np.array([[0.41, 0.8], [0.43, 0.8]]))
