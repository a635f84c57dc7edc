"""The LLM judge: verdict parsing (unit level) and real calls to a loopback OpenAI-compatible stub."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from judge_stub import JudgeLog, serve_judge

from lightning_lookahead.errors import DataError, LookaheadError
from lightning_lookahead.scorers import ScorerOptions, parse_scorer
from lightning_lookahead.scorers.base import ScoreItem
from lightning_lookahead.scorers.judge import JudgeEndpoint, JudgeScorer, judge_messages, parse_rating


@pytest.mark.parametrize(
    ("verdict", "rating"),
    [
        ("Clear and correct. Rating: [[8]]", 8.0),
        ("Rating: [[7.5]]", 7.5),
        ("[[ 9 ]]", 9.0),
        ("Mostly right.\nRating: 6", 6.0),
        ("**Rating:** **4**", 4.0),
        ("I would give it 7/10.", 7.0),
        ("Overall 3 out of 10", 3.0),
        ("First I thought [[3]], but on reflection Rating: [[5]]", 5.0),
        ("[[2]] ... Rating: 9", 2.0),  # a bracketed rating beats a bare one
        ("Score [[10]]", 10.0),
        ("Rating: [[1]]", 1.0),
        ("Rating: [[8/10]]", 8.0),
    ],
)
def test_ratings_are_read_from_verdicts(verdict: str, rating: float) -> None:
    assert parse_rating(verdict) == (rating, None)


@pytest.mark.parametrize(
    ("verdict", "why"),
    [
        ("The answer is fine.", "no rating"),
        ("", "empty verdict"),
        ("   ", "empty verdict"),
        ("Rating: [[11]]", "outside 1-10"),
        ("Rating: [[0]]", "outside 1-10"),
        ("Rating: [[-3]]", "outside 1-10"),
        ("Rating: [[seven]]", "no rating"),
        ("It scores 1/100 on my scale", "no rating"),
    ],
)
def test_malformed_verdicts_give_no_rating_and_say_why(verdict: str, why: str) -> None:
    rating, error = parse_rating(verdict)
    assert rating is None
    assert why in error
    assert "\n" not in error


def test_a_long_malformed_verdict_is_quoted_as_a_short_excerpt() -> None:
    _, error = parse_rating("blah " * 500)
    assert len(error) < 300 and "blah" in error


def test_the_judge_prompt_holds_question_answer_reference_and_the_rating_format() -> None:
    item = ScoreItem("q1", "a", [{"role": "user", "content": "What is 2+2?"}], "4", reference="4")
    system, user = judge_messages(item)
    assert system["role"] == "system" and user["role"] == "user"
    assert "What is 2+2?" in user["content"] and "Rating: [[N]]" in user["content"]
    assert "[Reference]\n4\n" in user["content"]
    assert "[Reference]" not in judge_messages(ScoreItem("q1", "a", "Hi", "Hello"))[1]["content"]


@pytest.fixture(scope="module")
def judge() -> Iterator[tuple[str, JudgeLog]]:
    log = JudgeLog()
    with serve_judge(log) as url:
        yield url, log


def _items(*answers: str) -> list[ScoreItem]:
    return [ScoreItem(f"r{i}", "cand", f"question {i}", answer) for i, answer in enumerate(answers)]


def test_judge_scores_through_an_openai_compatible_endpoint(judge, monkeypatch) -> None:
    url, log = judge
    monkeypatch.setenv("JUDGE_KEY", "judge-secret")
    endpoint = JudgeEndpoint("stub", url, "judge-model", timeout=5.0, api_key="judge-secret")
    scorer = JudgeScorer(endpoint, concurrency=2, max_retries=0)
    done: list[int] = []
    log.bodies.clear()
    results = scorer.score(
        _items(
            "verdict:Good. Rating: [[8]]",
            "verdict:Hmm. Rating: [[6.5]]",
            "verdict:I refuse to rate this.",
            "verdict:Rating: [[12]]",
            "fail:503",
        ),
        done.append,
    )
    assert [r.value for r in results] == [8.0, 6.5, None, None, None]
    assert results[0].error is None and results[0].detail == "Good. Rating: [[8]]"
    assert "no rating" in results[2].error and "I refuse" in results[2].error
    assert "outside 1-10" in results[3].error
    assert "judge request failed" in results[4].error and "503" in results[4].error
    assert sum(done) == 5
    assert {b["model"] for b in log.bodies} == {"judge-model"}
    assert {b["temperature"] for b in log.bodies} == {0}
    assert "Bearer judge-secret" in log.authorization


def test_judge_requests_in_flight_are_bounded(judge) -> None:
    url, log = judge
    log.most_in_flight = 0
    scorer = JudgeScorer(JudgeEndpoint("stub", url, "m", timeout=5.0), concurrency=3, max_retries=0)
    results = scorer.score(_items(*[f"slow:Rating: [[{1 + i % 10}]]" for i in range(9)]))
    assert [r.value for r in results] == [float(1 + i % 10) for i in range(9)]
    assert 2 <= log.most_in_flight <= 3


def test_an_unreachable_judge_gives_null_scores_not_zeros() -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = JudgeEndpoint("down", f"http://127.0.0.1:{port}/v1", "m", timeout=2.0)
    [result] = JudgeScorer(endpoint, max_retries=0).score(_items("verdict:Rating: [[9]]"))
    assert result.value is None and "APIConnectionError" in result.error


def test_judge_spec_reads_a_backends_file(judge, tmp_path: Path, monkeypatch) -> None:
    url, log = judge
    monkeypatch.setenv("JUDGE_KEY", "from-env")
    path = tmp_path / "endpoints.yaml"
    path.write_text(
        f"backends:\n  gpt-judge:\n    base_url: {url}\n    model: judge-upstream\n    api_key_env: JUDGE_KEY\n"
        f"  other:\n    base_url: {url}\n",
        encoding="utf-8",
    )
    scorer = parse_scorer(f"judge:{path}:gpt-judge", ScorerOptions(judge_retries=0))
    assert scorer.name == "judge:gpt-judge"
    log.bodies.clear()
    [result] = scorer.score(_items("verdict:Rating: [[3]]"))
    assert result.value == 3.0
    assert log.bodies[-1]["model"] == "judge-upstream" and log.authorization[-1] == "Bearer from-env"
    with pytest.raises(DataError, match="holds 2 backends"):
        parse_scorer(f"judge:{path}")
    with pytest.raises(DataError, match="did you mean 'gpt-judge'"):
        parse_scorer(f"judge:{path}:gpt-jugde")


def test_judge_spec_from_command_line_options(judge) -> None:
    url, _ = judge
    scorer = parse_scorer("judge", ScorerOptions(judge_base_url=url, judge_model="m", judge_retries=0))
    assert [r.value for r in scorer.score(_items("verdict:Rating: 7"))] == [7.0]
    with pytest.raises(LookaheadError, match="needs --judge-model"):
        parse_scorer("judge", ScorerOptions(judge_base_url=url))
    with pytest.raises(LookaheadError, match="needs an endpoint"):
        parse_scorer("judge")
    with pytest.raises(LookaheadError, match="is not set"):
        parse_scorer("judge", ScorerOptions(judge_base_url=url, judge_model="m", judge_api_key_env="NO_SUCH_VAR_X"))
