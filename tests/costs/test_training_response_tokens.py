"""The mean response lengths a training run exports: the dataset's recorded counts, else a tokenizer's, else none
said in one info line (never a warning), so training over one's own models never ends with a raw warning."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import pytest

from lightning_lookahead.costs.token_counts import TokenCounter, mean_response_tokens
from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.training.recipe import _training_response_tokens

CANDIDATES = ["mathbot", "codebot"]


def example(i: int, tokens: tuple[int | None, ...] | None) -> RoutingExample:
    extras = {} if tokens is None else {"response_tokens": tokens}  # what a dataset's `tokens` (completion) become
    return RoutingExample(f"r{i}", f"prompt {i}", ("a b c", "d e"), (1.0, 0.0), "default", extras)


@pytest.fixture()
def no_tokenizer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tokenizer cannot be loaded (e.g. offline without the embedded MiniLM)."""

    def unavailable(self: TokenCounter) -> None:
        raise OSError("tokenizer files not found")

    monkeypatch.setattr(TokenCounter, "_load", unavailable)


def datamodule(examples: list[RoutingExample]) -> SimpleNamespace:
    return SimpleNamespace(splits=SimpleNamespace(train=examples))


def test_recorded_completion_counts_need_no_tokenizer(no_tokenizer):
    from lightning_lookahead.costs.token_counts import recorded_response_tokens

    # completion counts on every row, no prompt counts: the tokenizer used to be loaded for the prompts anyway
    examples = [example(0, (10, 30)), example(1, (20, 50))]
    assert mean_response_tokens(examples, CANDIDATES) == {"mathbot": 15.0, "codebot": 40.0}
    assert recorded_response_tokens(examples + [example(2, (5, None))], CANDIDATES) == (
        {"mathbot": 15.0, "codebot": 40.0},
        2,
    )
    assert recorded_response_tokens([example(0, None)], CANDIDATES) is None


def test_the_export_takes_the_datasets_recorded_counts(no_tokenizer, info_lines):
    examples = [example(0, (10, 30)), example(1, (20, 50)), example(2, None)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _training_response_tokens(datamodule(examples), CANDIDATES) == {"mathbot": 15.0, "codebot": 40.0}
    assert info_lines == [
        "export: mean response lengths from the 2 of 3 training rows that record `tokens` for every candidate"
    ]


def test_without_counts_or_tokenizer_the_export_has_no_lengths_and_one_info_line_says_so(no_tokenizer, info_lines):
    examples = [example(0, None), example(1, (3, None))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the old code warned here
        assert _training_response_tokens(datamodule(examples), CANDIDATES) is None
    (line,) = info_lines
    assert line.startswith("export: no mean response lengths") and "tokenizer files not found" in line
    assert "`cost` per backend" in line and "record `tokens`" in line and "\n" not in line
