"""The part of OpenAI's chat-completions request the router reads; every other field passes through untouched.

Only ``model``, ``messages`` and ``stream`` are checked: the backend validates its own options (temperature, tools,
...), so a field this server does not know about is forwarded rather than rejected.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lightning_lookahead.errors import LookaheadError

RouteOn = Literal["first", "last", "all"]
ROUTE_ON: tuple[str, ...] = ("first", "last", "all")
ROUTER_MODEL = "router"
_COST_AWARE = re.compile(r"^router:(?:λ|lambda)=(?P<lam>.+)$")


class ChatMessage(BaseModel):
    """One message; ``content`` is a string or a list of typed parts (text, image_url, ...)."""

    model_config = ConfigDict(extra="allow")

    role: str = Field(min_length=1)
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text: the string, or its text parts joined by newlines (images etc. are skipped)."""
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "\n".join(p["text"] for p in self.content if p.get("type") == "text" and isinstance(p.get("text"), str))


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions`` as far as routing needs it."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False

    def routing_text(self, route_on: RouteOn = "first") -> str:
        """The user text to route on (see docs/serving.md): first user turn, last one, or all joined."""
        turns = [m.text().strip() for m in self.messages if m.role == "user"]
        turns = [t for t in turns if t]
        if not turns:
            raise LookaheadError("the request has no user message with text to route on")
        if route_on == "first":
            return turns[0]
        if route_on == "last":
            return turns[-1]
        return "\n\n".join(turns)


def parse_router_model(model: str) -> float | None:
    """``router`` → None (argmax); ``router:λ=0.5`` / ``router:lambda=0.5`` → 0.5; LookaheadError otherwise."""
    if model == ROUTER_MODEL:
        return None
    match = _COST_AWARE.match(model)
    if match is None:
        raise LookaheadError(f"not a router model name: {model!r}")
    try:
        lam = float(match["lam"])
    except ValueError:
        raise LookaheadError(f"λ in {model!r} is not a number") from None
    if not math.isfinite(lam) or lam < 0:
        raise LookaheadError(f"λ in {model!r} must be a finite number ≥ 0")
    return lam


def is_router_model(model: str) -> bool:
    return model == ROUTER_MODEL or model.startswith(ROUTER_MODEL + ":")


def error_body(message: str, type_: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    """OpenAI's error object, so OpenAI clients raise their usual exceptions with our message."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}
