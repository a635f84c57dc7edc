"""Arena-Hard v0.1: 500 hard questions, each answer judged twice against gpt-4-0314.

Layout under ``test/ArenaHard/``: ``question.jsonl``, ``model_answer/<m>.jsonl`` and
``model_judgment/<m>.jsonl`` (both keyed by ``question_id``, in no particular order).
Game 1 puts the baseline as A and ``m`` as B; game 2 swaps them. A model's score on a question
is ``v(game 2) - v(game 1)`` on the verdict scale below, in [-6, 6], and -6 when either verdict is null.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_lookahead.data.io import iter_jsonl, require, resolve
from lightning_lookahead.data.readers._common import models_in, read_questions, select_pool
from lightning_lookahead.data.schema import PAPER_CANDIDATES, RoutingExample
from lightning_lookahead.errors import DataError

BENCHMARK = "ArenaHard"
FOLDER = "test/ArenaHard"
QUESTIONS = "question.jsonl"
ANSWERS = "model_answer"
JUDGMENTS = "model_judgment"

#: The question Llama-3.1-8B-Instruct has no answer for; dropped for every pool, leaving 499 questions.
DROPPED_QUESTION = "81048287fde44fd790ad195494a68a22"

#: Judge verdict -> value, from A's point of view (A>>B: A is much better).
VERDICT_VALUES: dict[str, int] = {"A>>B": 3, "A>B": 1, "A=B": 0, "B>A": -1, "B>>A": -3}

#: Score when either game's verdict is null (the judge's output could not be parsed): the worst possible.
NULL_SCORE = -6.0

KNOWN_MODELS: tuple[str, ...] = PAPER_CANDIDATES


def available_models(root: Path) -> list[str]:
    """Models with both an answer and a judgment file on disk."""
    folder = root / FOLDER
    answers = set(models_in(folder / ANSWERS, ".jsonl"))
    return [m for m in models_in(folder / JUDGMENTS, ".jsonl") if m in answers]


def required_files(candidates: Sequence[str]) -> list[str]:
    """Files (relative to the benchmark folder, without ``.gz``) that loading ``candidates`` reads."""
    files = [QUESTIONS]
    for m in candidates:
        files += [f"{ANSWERS}/{m}.jsonl", f"{JUDGMENTS}/{m}.jsonl"]
    return files


def score_games(verdict_1: str | None, verdict_2: str | None) -> float:
    """A model's score from its two verdicts: game 2 (model is A) minus game 1 (model is B)."""
    if verdict_1 is None or verdict_2 is None:
        return NULL_SCORE
    return float(VERDICT_VALUES[verdict_2] - VERDICT_VALUES[verdict_1])


def _keyed(path: Path) -> dict[str, tuple[int, dict[str, Any]]]:
    """Lines of a per-model file keyed by question id, rejecting duplicates."""
    rows: dict[str, tuple[int, dict[str, Any]]] = {}
    for line, obj in iter_jsonl(path):
        qid = require(obj, "question_id", path, line=line, kind=str)
        if qid in rows:
            raise DataError(path, f"duplicate question_id {qid!r} (first on line {rows[qid][0]})", line=line)
        rows[qid] = (line, obj)
    return rows


def _answer(path: Path, line: int, obj: dict[str, Any]) -> str:
    try:
        text = obj["choices"][0]["turns"][0]["content"]
    except (KeyError, IndexError, TypeError):
        raise DataError(path, "missing choices[0].turns[0].content", line=line) from None
    if not isinstance(text, str):
        raise DataError(path, f"answer content should be str, got {type(text).__name__}", line=line)
    return text


def _token_len(obj: dict[str, Any]) -> int | None:
    """The answer's length as the data records it (``conv_metadata.token_len``, tiktoken counts), if present."""
    value = (obj.get("conv_metadata") or {}).get("token_len")
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _verdicts(path: Path, line: int, obj: dict[str, Any]) -> tuple[str | None, str | None]:
    games = require(obj, "games", path, line=line, kind=list)
    if len(games) != 2:
        raise DataError(path, f"expected 2 games, got {len(games)}", line=line, key="games")
    verdicts: list[str | None] = []
    for g, game in enumerate(games):
        if not isinstance(game, dict) or "score" not in game:
            raise DataError(path, f"game {g + 1} has no 'score'", line=line, key="games")
        verdict = game["score"]
        if verdict is not None and verdict not in VERDICT_VALUES:
            raise DataError(path, f"game {g + 1} has unknown verdict {verdict!r}", line=line, key="games")
        verdicts.append(verdict)
    return verdicts[0], verdicts[1]


def load(root: Path, candidates: Sequence[str] = PAPER_CANDIDATES) -> list[RoutingExample]:
    """One record per question (in ``question.jsonl`` order, minus :data:`DROPPED_QUESTION`).

    Every other question must have an answer and a judgment for every candidate.
    """
    pool = select_pool(candidates, KNOWN_MODELS, available_models(root), BENCHMARK)
    folder = root / FOLDER
    q_path = resolve(folder / QUESTIONS)
    questions: list[tuple[str, str, str]] = []
    for line, obj, qid in read_questions(q_path, str):
        turns = require(obj, "turns", q_path, line=line, kind=list)
        if not turns or not isinstance(turns[0], dict) or not isinstance(turns[0].get("content"), str):
            raise DataError(q_path, "missing turns[0].content", line=line)
        category = require(obj, "category", q_path, line=line, kind=str)
        if qid != DROPPED_QUESTION:
            questions.append((qid, turns[0]["content"], category))

    answers: list[list[str]] = [[] for _ in questions]
    token_lens: list[list[int | None]] = [[] for _ in questions]
    games: list[list[tuple[str | None, str | None]]] = [[] for _ in questions]
    for model in pool:
        a_path = resolve(folder / ANSWERS / f"{model}.jsonl")
        j_path = resolve(folder / JUDGMENTS / f"{model}.jsonl")
        by_answer, by_judgment = _keyed(a_path), _keyed(j_path)
        for i, (qid, _, _) in enumerate(questions):
            if qid not in by_answer:
                raise DataError(a_path, f"no answer for question {qid!r}", key=qid)
            if qid not in by_judgment:
                raise DataError(j_path, f"no judgment for question {qid!r}", key=qid)
            answers[i].append(_answer(a_path, *by_answer[qid]))
            token_lens[i].append(_token_len(by_answer[qid][1]))
            games[i].append(_verdicts(j_path, *by_judgment[qid]))
    return [
        RoutingExample(
            prompt_id=qid,
            prompt=prompt.strip(),
            responses=tuple(answers[i]),
            scores=tuple(score_games(*g) for g in games[i]),
            benchmark=BENCHMARK,
            extras={"category": category, "games": tuple(games[i]), "response_tokens": tuple(token_lens[i])},
        )
        for i, (qid, prompt, category) in enumerate(questions)
    ]
