"""One chat completion through the ``openai`` client, with this package's retries rather than the client's.

The client's own retries are off (``max_retries=0``) so that the attempt limit, the back-off and ``Retry-After``
handling are the same for every endpoint and visible in one place (:mod:`.retry`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import openai

from lightning_lookahead.backends import Backend
from lightning_lookahead.collect.outcome import Outcome
from lightning_lookahead.collect.retry import RetryPolicy, retry_after, retryable_status

_MAX_MESSAGE = 300


@dataclass(frozen=True)
class Sampling:
    """The generation settings sent with every request (the paper's: temperature 0.8, top-p 0.95)."""

    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 1024

    def to_json(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}


def make_client(backend: Backend) -> openai.AsyncOpenAI:
    """A client for one endpoint; its timeout bounds each attempt."""
    return openai.AsyncOpenAI(
        base_url=backend.base_url, api_key=backend.api_key or "unused", timeout=backend.timeout, max_retries=0
    )


async def ask(
    client: openai.AsyncOpenAI,
    backend: Backend,
    messages: list[dict[str, Any]],
    sampling: Sampling,
    policy: RetryPolicy,
) -> Outcome:
    """The response, or the last failure once ``policy.attempts`` attempts are spent (or at once if permanent)."""
    problem = "no attempt made"
    for attempt in range(1, policy.attempts + 1):
        wait_hint = None
        try:
            completion = await client.chat.completions.create(
                model=backend.upstream_model, messages=messages, **sampling.to_json()
            )
        except openai.APIStatusError as exc:
            problem = f"HTTP {exc.status_code}: {_status_message(exc)}"
            if not retryable_status(exc.status_code):
                return Outcome(error=problem)
            wait_hint = retry_after(exc.response.headers)
        except openai.APITimeoutError:
            problem = f"timed out after {backend.timeout:g} s"
        except openai.APIConnectionError as exc:
            problem = f"connection failed: {_one_line(str(exc.__cause__ or exc))}"
        except openai.APIError as exc:  # a malformed answer: asking again would not fix it
            return Outcome(error=f"bad response: {_one_line(str(exc))}")
        else:
            return _outcome(completion)
        if attempt < policy.attempts:
            await asyncio.sleep(policy.delay(attempt, wait_hint))
    tries = f"{policy.attempts} attempt{'s' if policy.attempts != 1 else ''}"
    return Outcome(error=f"{problem} ({tries})")


def _outcome(completion: Any) -> Outcome:
    if not completion.choices:
        return Outcome(error="bad response: no choices")
    choice = completion.choices[0]
    content = choice.message.content if choice.message is not None else None
    if content is None:
        return Outcome(error=f"bad response: no message content (finish_reason={choice.finish_reason})")
    usage = completion.usage
    tokens = None
    if usage is not None and usage.prompt_tokens is not None and usage.completion_tokens is not None:
        tokens = {"prompt": int(usage.prompt_tokens), "completion": int(usage.completion_tokens)}
    return Outcome(response=content, tokens=tokens)


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return _one_line(body["message"])
    return _one_line(exc.message)


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"
