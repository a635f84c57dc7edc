"""What one (prompt, candidate) request finally gave: a response with its token counts, or an error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """A finished request; ``error`` is set only when every attempt failed (then ``response`` is None)."""

    response: str | None = None
    tokens: dict[str, int] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {"error": self.error}
        return {"response": self.response, "tokens": self.tokens}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Outcome:
        if record.get("error") is not None:
            return cls(error=str(record["error"]))
        if not isinstance(record.get("response"), str):
            raise ValueError("expected a 'response' text or an 'error'")
        tokens = record.get("tokens")
        return cls(response=record["response"], tokens=tokens if isinstance(tokens, dict) else None)
