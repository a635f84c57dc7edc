"""The one interface every scorer implements, so `lookahead data score` can treat them alike.

A scorer takes a batch of :class:`ScoreItem` (one candidate's response to one prompt) and returns one
:class:`ScoreResult` per item, in order. Batches let the reward model pad together and the judge and the code
runner work concurrently. A score that could not be produced is ``value=None`` with the reason in ``error``; it is
never turned into 0, which would read as a real (bad) grade.

Each result is also handed to ``on_result(index, result)`` the moment it is ready, so that `lookahead data score`
can journal it: an interrupted run keeps every score already produced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

#: ``progress(n)`` is called as ``n`` more items are finished (drives the command's progress bar).
Progress = Callable[[int], None]
#: ``on_result(i, result)`` is called once per item, as soon as item ``i`` of the batch is scored (any order).
OnResult = Callable[[int, "ScoreResult"], None]
#: A prompt as stored in a row: plain text, or OpenAI-style ``[{"role": ..., "content": ...}, ...]``.
Prompt = str | list[dict[str, Any]]


@dataclass(frozen=True)
class ScoreItem:
    """One response to grade, with what the graders need from its row."""

    row_id: str
    candidate: str
    prompt: Prompt
    response: str
    reference: str | None = None
    #: The row's ``benchmark`` or ``domain``, lower-cased (``auto`` picks a scorer by it).
    domain: str | None = None


@dataclass(frozen=True)
class ScoreResult:
    """A score, or ``None`` with why; ``detail`` is optional evidence (judge verdict, test output, parsed answer)."""

    value: float | None
    error: str | None = None
    detail: str | None = None


class Scorer(Protocol):
    """Grades batches of responses; ``name`` is shown in the progress bar and summary."""

    name: str

    def score(
        self, items: Sequence[ScoreItem], progress: Progress | None = None, *, on_result: OnResult | None = None
    ) -> list[ScoreResult]: ...


def failed(error: str, detail: str | None = None) -> ScoreResult:
    """A score that could not be produced."""
    return ScoreResult(None, error, detail)


def finished(index: int, result: ScoreResult, progress: Progress | None, on_result: OnResult | None) -> ScoreResult:
    """Announce that item ``index`` is scored (``on_result``, then one step of ``progress``); returns ``result``."""
    if on_result is not None:
        on_result(index, result)
    if progress is not None:
        progress(1)
    return result


def messages(prompt: Prompt) -> list[dict[str, str]]:
    """The prompt as chat messages (a plain string is one user turn)."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": str(m.get("role", "user")), "content": content_text(m.get("content"))} for m in prompt]


def prompt_text(prompt: Prompt) -> str:
    """The prompt as one string: itself, or the turns labelled by role when it is a conversation."""
    if isinstance(prompt, str):
        return prompt
    turns = messages(prompt)
    if len(turns) == 1 and turns[0]["role"] == "user":
        return turns[0]["content"]
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in turns)


def content_text(content: Any) -> str:
    """Text of an OpenAI message ``content``: a string, or a list of parts whose text parts are joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content)


def excerpt(text: str, limit: int = 200) -> str:
    """A one-line, bounded excerpt for error messages (``score_errors`` must stay readable)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
