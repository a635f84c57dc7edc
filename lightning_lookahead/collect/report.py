"""What a collection did, per candidate: answered now, failed, skipped because earlier runs had answered, and what
is still unanswered at the end (the pairs that make `lookahead data collect` exit with status 3)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lightning_lookahead.collect.outcome import Outcome


@dataclass
class CollectReport:
    out: Path
    candidates: list[str]
    prompts: int
    answered: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    prompt_tokens: Counter = field(default_factory=Counter)
    completion_tokens: Counter = field(default_factory=Counter)
    first_error: dict[str, str] = field(default_factory=dict)
    #: (prompt, candidate) pairs of this run's candidates without a response once every attempt is spent.
    unanswered: Counter = field(default_factory=Counter)

    def record(self, candidate: str, row_id: str, outcome: Outcome) -> None:
        if not outcome.ok:
            self.failed[candidate] += 1
            self.first_error.setdefault(candidate, f"{row_id}: {outcome.error}")
            return
        self.answered[candidate] += 1
        if outcome.tokens:
            self.prompt_tokens[candidate] += outcome.tokens.get("prompt", 0)
            self.completion_tokens[candidate] += outcome.tokens.get("completion", 0)

    def summary(self) -> str:
        """One line: counts for this run and tokens (prompt+completion) per candidate."""
        tokens = ", ".join(f"{c} {self.prompt_tokens[c]}+{self.completion_tokens[c]}" for c in self.candidates)
        return (
            f"wrote {self.out}: {self.prompts} prompts × {len(self.candidates)} candidates; "
            f"answered {self.answered.total()}, failed {self.failed.total()}, "
            f"skipped {self.skipped.total()} as done; tokens (prompt+completion) {tokens}"
        )

    def warnings(self) -> list[str]:
        """One line per candidate with failures, naming the first one."""
        return [
            f"warning: {c}: {self.failed[c]} failed (first: {self.first_error[c]}); rerun the same command to retry"
            for c in self.candidates
            if self.failed[c]
        ]

    def unanswered_message(self, attempts: int) -> str | None:
        """What is still missing and how to get it, or None when every pair was answered."""
        total = self.unanswered.total()
        if not total:
            return None
        per = ", ".join(f"{c} {self.unanswered[c]}" for c in self.candidates if self.unanswered[c])
        pairs = self.prompts * len(self.candidates)
        return (
            f"unanswered: {total} of {pairs} (prompt, candidate) pairs after up to {attempts} attempts each ({per}); "
            f"{self.out} holds their rows without those responses (`lookahead data check` and training drop and count "
            "them); rerun the same command to ask only the unanswered pairs again"
        )
