"""Math scoring by final-answer equivalence with ``math_verify``: 1.0 when the response's answer equals the reference.

The reference is a final answer (``\\frac{1}{2}``, ``0.5``, ``x^2+1``; a GSM8k solution is read after its last
``####``) and is parsed as LaTeX. The response's answer is what ``math_verify`` extracts (``\\boxed{}`` first, then
"the answer is ..." and the last expression), or the text after its last ``####`` when it has one. Outcomes:

* equivalent → 1.0; not equivalent → 0.0;
* the response has no extractable answer → 0.0 (a response without a final answer is wrong), noted in
  ``score_errors``;
* no reference, an unparseable reference, or a parse/compare timeout → null with the reason.

``math_verify`` bounds parsing and comparison with ``SIGALRM``, which works only in the main thread, so this scorer
runs there, one item at a time (it is fast). Called from another thread it runs without those time limits.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from lightning_lookahead.scorers.base import OnResult, Progress, ScoreItem, ScoreResult, excerpt, failed, finished

GSM8K_MARK = "####"
NO_ANSWER = "no final answer found in the response (scored 0)"


class MathAnswerScorer:
    """Final-answer equivalence; ``timeout_s`` bounds each parse and each comparison (main thread only)."""

    name = "math"

    def __init__(self, *, timeout_s: int = 5) -> None:
        self.timeout_s = timeout_s

    def score(
        self, items: Sequence[ScoreItem], progress: Progress | None = None, *, on_result: OnResult | None = None
    ) -> list[ScoreResult]:
        timeout = self.timeout_s if threading.current_thread() is threading.main_thread() else None
        return [
            finished(i, self.score_one(item.response, item.reference, timeout), progress, on_result)
            for i, item in enumerate(items)
        ]

    def score_one(self, response: str, reference: str | None, timeout: int | None = None) -> ScoreResult:
        """Grade one response against one reference answer."""
        from math_verify.errors import TimeoutException

        if reference is None or not str(reference).strip():
            return failed("no reference answer in the row")
        try:
            gold = _parse_reference(str(reference), timeout)
            if not gold:
                return failed(f"the reference is not a parseable answer: {excerpt(str(reference))!r}")
            answer = _parse_response(response, timeout)
            if not answer:
                return ScoreResult(0.0, NO_ANSWER)
            equal, timed_out = _equivalent(gold, answer, timeout)
        except TimeoutException:
            return failed("math_verify timed out while parsing")
        shown = f"answer {answer[-1]} vs reference {gold[-1]}"
        if equal:
            return ScoreResult(1.0, detail=shown)
        if timed_out:
            return failed("math_verify timed out while comparing the answers", shown)
        return ScoreResult(0.0, detail=shown)


def _after_mark(text: str) -> str | None:
    """The text after the last ``####`` (GSM8k's final-answer line), if there is one."""
    if GSM8K_MARK not in text:
        return None
    return text.rsplit(GSM8K_MARK, 1)[1].strip() or None


def _parse(text: str, timeout: int | None) -> list[Any]:
    from math_verify import parse

    try:
        return parse(text, parsing_timeout=timeout, raise_on_error=True)
    except Exception:  # an expression the parser cannot handle is no answer, not a crash
        return []


def _parse_reference(reference: str, timeout: int | None) -> list[Any]:
    """A bare answer is wrapped in ``$...$`` so LaTeX like ``x^2+1`` or ``\\infty`` parses; plain text as fallback."""
    answer = _after_mark(reference) or reference.strip()
    if "$" in answer or "\\boxed" in answer:
        return _parse(answer, timeout)
    return _parse(f"${answer}$", timeout) or _parse(answer, timeout)


def _parse_response(response: str, timeout: int | None) -> list[Any]:
    """The answer on a GSM8k-style ``#### N`` line when there is one, else what ``math_verify`` extracts."""
    final = _after_mark(response)
    if final is not None:
        parsed = _parse(final, timeout)
        if parsed:
            return parsed
    return _parse(response, timeout)


def _equivalent(gold: list[Any], answer: list[Any], timeout: int | None) -> tuple[bool, bool]:
    """(any pair equivalent, some comparison timed out); pairs are compared one by one to tell the two apart."""
    from math_verify import verify
    from math_verify.errors import TimeoutException

    timed_out = False
    for g in gold:
        for a in answer:
            try:
                if verify(g, a, timeout_seconds=timeout, raise_on_error=True):
                    return True, timed_out
            except TimeoutException:
                timed_out = True
            except Exception:  # sympy failing to compare two objects means they are not shown equal
                continue
    return False, timed_out
