"""LLM-as-a-judge: single-answer grading from 1 to 10 through any OpenAI-compatible endpoint.

The judge sees the question (and the row's reference, when there is one) and one answer, explains briefly and ends
with ``Rating: [[N]]`` (the MT-Bench convention). Requests run concurrently up to a bound, at temperature 0. A verdict
without a rating in 1–10, or a request that fails after the client's retries, is a null score with the reason and
an excerpt of the verdict in ``score_errors`` — never a 0.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning_lookahead.errors import DataError, LookaheadError
from lightning_lookahead.scorers.base import (
    OnResult,
    Progress,
    ScoreItem,
    ScoreResult,
    content_text,
    excerpt,
    failed,
    finished,
    prompt_text,
)

MIN_RATING, MAX_RATING = 1.0, 10.0
MAX_VERDICT_TOKENS = 1024

JUDGE_SYSTEM_PROMPT = "You are a careful, impartial judge of answers written by AI assistants."

JUDGE_PROMPT = """\
Grade the AI assistant's answer to the user's question below on a scale from 1 to 10: 1 means useless, \
wrong or harmful, 10 means an answer an expert could not improve on. Weigh correctness first, then helpfulness, \
relevance, depth and clarity. Mistakes cost more than plain style; length alone earns nothing.{reference}

[Question]
{question}

[The Start of the Assistant's Answer]
{answer}
[The End of the Assistant's Answer]

Explain your assessment in a few sentences, then end with the rating in exactly this format: "Rating: [[N]]" \
(for example "Rating: [[6]]")."""

REFERENCE_BLOCK = """

A reference (a correct answer, or tests the answer's code should pass) is given to help you check correctness:
[Reference]
{reference}
[End of Reference]"""

_NUMBER = r"(-?\d+(?:\.\d+)?)"
_BRACKETED = re.compile(rf"\[\[\s*{_NUMBER}\s*(?:/\s*10\s*)?\]\]")
_LABELLED = re.compile(rf"rating[\s*_:=\[]*{_NUMBER}", re.IGNORECASE)
_OUT_OF_TEN = re.compile(rf"(?<![\d.]){_NUMBER}\s*(?:/|out of)\s*10(?!\.?\d)", re.IGNORECASE)


def parse_rating(verdict: str) -> tuple[float | None, str | None]:
    """The rating a verdict ends with: the last ``[[N]]``, else the last ``Rating: N``, else the last ``N/10``.

    Returns ``(rating, None)`` or ``(None, why)``; decimals are kept, anything outside 1–10 is rejected.
    """
    for pattern in (_BRACKETED, _LABELLED, _OUT_OF_TEN):
        found = pattern.findall(verdict)
        if found:
            value = float(found[-1])
            if MIN_RATING <= value <= MAX_RATING:
                return value, None
            return None, f"judge rating {found[-1]} is outside 1-10: {excerpt(verdict)!r}"
    if not verdict.strip():
        return None, "judge returned an empty verdict"
    return None, f"no rating in the judge's verdict: {excerpt(verdict)!r}"


def judge_messages(item: ScoreItem) -> list[dict[str, str]]:
    """The two messages sent for one answer (the documented prompt)."""
    reference = REFERENCE_BLOCK.format(reference=item.reference) if item.reference else ""
    user = JUDGE_PROMPT.format(reference=reference, question=prompt_text(item.prompt), answer=item.response)
    return [{"role": "system", "content": JUDGE_SYSTEM_PROMPT}, {"role": "user", "content": user}]


@dataclass(frozen=True)
class JudgeEndpoint:
    """Where the judge model is served; the key is kept out of repr so it never reaches logs."""

    name: str
    base_url: str
    model: str
    timeout: float = 60.0
    api_key: str | None = field(default=None, repr=False)


def endpoint_from_backends(path: str | Path, name: str | None, default_timeout: float = 60.0) -> JudgeEndpoint:
    """The judge entry ``name`` of a backends-style YAML (``name`` may be omitted when the file has one entry).

    ``default_timeout`` (``--judge-timeout``) applies where the entry sets no ``timeout``.
    """
    import yaml

    from lightning_lookahead.backends import load_backends

    path = Path(path)
    load_backends(path, [])  # validates the file's shape, with its own located errors
    names = [str(k) for k in yaml.safe_load(path.read_text(encoding="utf-8"))["backends"]]
    if name is None:
        if len(names) != 1:
            raise DataError(path, f"holds {len(names)} backends ({', '.join(names)}); say which: judge:{path}:NAME")
        name = names[0]
    backend = load_backends(path, [name], default_timeout=default_timeout)[name]
    return JudgeEndpoint(name, backend.base_url, backend.upstream_model, backend.timeout, backend.api_key)


def endpoint_from_url(base_url: str, model: str | None, api_key_env: str | None, timeout: float) -> JudgeEndpoint:
    """The judge given on the command line (``--judge-base-url``, ``--judge-model``, ``--judge-api-key-env``)."""
    parsed = urlparse(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise LookaheadError(f"--judge-base-url {base_url!r} must be an http(s) URL such as http://127.0.0.1:8001/v1")
    if not model:
        raise LookaheadError("--judge-base-url needs --judge-model (the endpoint's model name)")
    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise LookaheadError(f"--judge-api-key-env {api_key_env}: that environment variable is not set or empty")
    return JudgeEndpoint(model, base_url, model, timeout, api_key)


class JudgeScorer:
    """Grades answers with one judge model, at most ``concurrency`` requests in flight."""

    def __init__(self, endpoint: JudgeEndpoint, *, concurrency: int = 8, max_retries: int = 2) -> None:
        if concurrency < 1 or max_retries < 0:
            raise LookaheadError("judge concurrency must be at least 1 and retries at least 0")
        self.endpoint = endpoint
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.name = f"judge:{endpoint.name}"

    def score(
        self, items: Sequence[ScoreItem], progress: Progress | None = None, *, on_result: OnResult | None = None
    ) -> list[ScoreResult]:
        return _run_coroutine(self._score_all(items, progress, on_result))

    async def _score_all(
        self, items: Sequence[ScoreItem], progress: Progress | None, on_result: OnResult | None
    ) -> list[ScoreResult]:
        from openai import AsyncOpenAI

        client = AsyncOpenAI(
            base_url=self.endpoint.base_url,
            # A placeholder rather than None: the client would otherwise send $OPENAI_API_KEY to this endpoint.
            api_key=self.endpoint.api_key or "no-key",
            max_retries=self.max_retries,
            timeout=self.endpoint.timeout,
        )
        limit = asyncio.Semaphore(self.concurrency)

        async def one(index: int, item: ScoreItem) -> ScoreResult:
            async with limit:
                result = await self._judge(client, item)
            return finished(index, result, progress, on_result)

        try:
            return list(await asyncio.gather(*(one(i, item) for i, item in enumerate(items))))
        finally:
            await client.close()

    async def _judge(self, client: Any, item: ScoreItem) -> ScoreResult:
        try:
            completion = await client.chat.completions.create(
                model=self.endpoint.model,
                messages=judge_messages(item),
                temperature=0,
                max_tokens=MAX_VERDICT_TOKENS,
            )
            verdict = content_text(completion.choices[0].message.content) if completion.choices else ""
        except Exception as exc:  # any failure of one request must not lose a long run's other verdicts
            return failed(f"judge request failed: {type(exc).__name__}: {excerpt(str(exc))}")
        value, error = parse_rating(verdict)
        return ScoreResult(value, error, verdict)


def _run_coroutine(coro: Any) -> Any:
    """``asyncio.run``, also from code that already runs an event loop (then on a worker thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
