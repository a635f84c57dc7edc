"""MT-Bench: 80 two-turn questions, each turn rated 1-10 by gpt-4-0125-preview (single-answer grading).

Layout under ``test/MT-Bench/``: ``question.jsonl`` and ``judgments/<JUDGE_PREFIX><m><JUDGE_SUFFIX>``
with one line per (question, turn). A model's score on a question is the mean of its two turn
ratings, used as they are: a rating of -1 (judge output not parseable) is kept, as in the paper.
The answers themselves are not shipped; the turn-1 answer is cut out of the turn-1 judge prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_lookahead.data.io import iter_jsonl, require, resolve
from lightning_lookahead.data.readers._common import models_in, read_questions, select_pool
from lightning_lookahead.data.schema import PAPER_CANDIDATES, RoutingExample, check_score
from lightning_lookahead.errors import DataError

BENCHMARK = "MT-Bench"
FOLDER = "test/MT-Bench"
QUESTIONS = "question.jsonl"
JUDGMENTS = "judgments"
JUDGE_PREFIX = "gpt-4-0125-preview_judge_"
JUDGE_SUFFIX = "_single.jsonl"

#: The single-answer templates (``single-v1``, ``single-math-v1``) wrap the answer in these lines.
ANSWER_START = "[The Start of Assistant's Answer]\n"
ANSWER_END = "\n[The End of Assistant's Answer]"

KNOWN_MODELS: tuple[str, ...] = (
    *PAPER_CANDIDATES,
    "DeepSeek-Coder-V2-Instruct",
    "DeepSeek-V2-Chat-0628",
    "Meta-Llama-3-70B-Instruct",
    "Meta-Llama-3-8B-Instruct",
    "Mistral-Large-Instruct-2407",
    "Qwen2-72B-Instruct",
    "gemma-2-27b-it",
    "gemma-2-9b-it",
)


def judgments_file(model: str) -> str:
    """Path of a model's judgments, relative to the benchmark folder (without ``.gz``)."""
    return f"{JUDGMENTS}/{JUDGE_PREFIX}{model}{JUDGE_SUFFIX}"


def available_models(root: Path) -> list[str]:
    """Models with a judgments file on disk."""
    return models_in(root / FOLDER / JUDGMENTS, JUDGE_SUFFIX, prefix=JUDGE_PREFIX)


def required_files(candidates: Sequence[str]) -> list[str]:
    """Files (relative to the benchmark folder, without ``.gz``) that loading ``candidates`` reads."""
    return [QUESTIONS, *(judgments_file(m) for m in candidates)]


def answer_from_judge_prompt(user_prompt: str) -> str:
    """The assistant answer quoted in a single-turn judge prompt, or "" when the markers are absent.

    Only training uses the text, so an unparseable prompt degrades to an empty response instead of failing.
    """
    start = user_prompt.find(ANSWER_START)
    if start < 0:
        return ""
    start += len(ANSWER_START)
    end = user_prompt.rfind(ANSWER_END)
    if end < start:
        return ""
    return user_prompt[start:end]


def _judgments(path: Path) -> dict[tuple[int, int], tuple[int, dict[str, Any]]]:
    """Judgment lines keyed by (question_id, turn), rejecting duplicates."""
    rows: dict[tuple[int, int], tuple[int, dict[str, Any]]] = {}
    for line, obj in iter_jsonl(path):
        qid = require(obj, "question_id", path, line=line, kind=int)
        turn = require(obj, "turn", path, line=line, kind=int)
        if (qid, turn) in rows:
            raise DataError(path, f"duplicate judgment of question {qid} turn {turn}", line=line)
        rows[(qid, turn)] = (line, obj)
    return rows


def load(root: Path, candidates: Sequence[str] = PAPER_CANDIDATES) -> list[RoutingExample]:
    """One record per question, in ``question.jsonl`` order; every candidate needs both turns judged."""
    pool = select_pool(candidates, KNOWN_MODELS, available_models(root), BENCHMARK)
    folder = root / FOLDER
    q_path = resolve(folder / QUESTIONS)
    questions: list[tuple[int, str, str]] = []
    for line, obj, qid in read_questions(q_path, int):
        turns = require(obj, "turns", q_path, line=line, kind=list)
        if not turns or not isinstance(turns[0], str):
            raise DataError(q_path, "turns should be a non-empty list of strings", line=line, key="turns")
        questions.append((qid, turns[0], require(obj, "category", q_path, line=line, kind=str)))

    responses: list[list[str]] = [[] for _ in questions]
    turn_scores: list[list[tuple[float, float]]] = [[] for _ in questions]
    for model in pool:
        j_path = resolve(folder / judgments_file(model))
        rows = _judgments(j_path)
        for i, (qid, _, _) in enumerate(questions):
            pair = []
            for turn in (1, 2):
                if (qid, turn) not in rows:
                    raise DataError(j_path, f"no judgment for question {qid} turn {turn}", key=str(qid))
                line, obj = rows[(qid, turn)]
                pair.append(check_score(require(obj, "score", j_path, line=line), str(j_path), line=line, key="score"))
            prompt = rows[(qid, 1)][1].get("user_prompt")
            responses[i].append(answer_from_judge_prompt(prompt) if isinstance(prompt, str) else "")
            turn_scores[i].append((pair[0], pair[1]))
    return [
        RoutingExample(
            prompt_id=str(qid),
            prompt=prompt.strip(),
            responses=tuple(responses[i]),
            scores=tuple((t1 + t2) / 2 for t1, t2 in turn_scores[i]),
            benchmark=BENCHMARK,
            extras={"category": category, "turn_scores": tuple(turn_scores[i])},
        )
        for i, (qid, prompt, category) in enumerate(questions)
    ]
