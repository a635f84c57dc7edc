"""Math final-answer equivalence with math_verify, on cases with known answers."""

from __future__ import annotations

import threading

import pytest

from lightning_lookahead.scorers import parse_scorer
from lightning_lookahead.scorers.base import ScoreItem
from lightning_lookahead.scorers.math_answer import NO_ANSWER, MathAnswerScorer

GSM8K_SOLUTION = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nShe sold 48+24 = <<48+24=72>>72 clips.\n#### 72"


@pytest.mark.parametrize(
    ("response", "reference"),
    [
        (r"Halving gives $\boxed{\frac12}$.", "0.5"),
        ("So the answer is 0.5", r"\frac{1}{2}"),
        ("She has 40 + 2 = 42 apples.\n#### 42", "42"),
        ("The answer is 42.", "#### 42"),
        ("In May 24, so 48 + 24 = 72 in total. The answer is 72.", GSM8K_SOLUTION),
        (r"Expanding, we get $\boxed{1 + x^2}$.", "x^2+1"),
        (r"The total is $\boxed{1,000}$ dollars.", "1000"),
        (r"The limit is $\boxed{\infty}$", r"\infty"),
    ],
)
def test_equivalent_final_answers_score_one(response: str, reference: str) -> None:
    result = MathAnswerScorer().score_one(response, reference)
    assert (result.value, result.error) == (1.0, None)


@pytest.mark.parametrize(
    ("response", "reference"),
    [
        (r"Therefore $\boxed{\frac13}$.", "0.5"),
        ("6 * 7 = 41\n#### 41", "42"),
        ("The answer is 43.", GSM8K_SOLUTION),
    ],
)
def test_wrong_answers_score_zero(response: str, reference: str) -> None:
    result = MathAnswerScorer().score_one(response, reference)
    assert (result.value, result.error) == (0.0, None)
    assert "vs reference" in result.detail


def test_a_response_without_any_answer_scores_zero_with_a_note() -> None:
    result = MathAnswerScorer().score_one("I am not sure how to solve this.", "42")
    assert (result.value, result.error) == (0.0, NO_ANSWER)


@pytest.mark.parametrize("reference", [None, "", "   "])
def test_a_row_without_a_reference_gets_null(reference: str | None) -> None:
    result = MathAnswerScorer().score_one(r"$\boxed{4}$", reference)
    assert result.value is None and "no reference" in result.error


def test_an_unparseable_reference_gets_null() -> None:
    result = MathAnswerScorer().score_one("4", "x = \\")
    assert result.value is None and "not a parseable answer" in result.error


def test_batches_keep_their_order_and_work_off_the_main_thread() -> None:
    scorer = parse_scorer("math")
    items = [
        ScoreItem("a", "x", "q", r"$\boxed{2}$", "2"),
        ScoreItem("b", "x", "q", r"$\boxed{3}$", "2"),
        ScoreItem("c", "x", "q", "4", None),
    ]
    expected = [1.0, 0.0, None]
    assert [r.value for r in scorer.score(items)] == expected
    off_main: list = []
    thread = threading.Thread(target=lambda: off_main.extend(scorer.score(items)))
    thread.start()
    thread.join(30)
    assert [r.value for r in off_main] == expected
