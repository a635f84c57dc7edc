"""The part of OpenAI's chat-completions request the router reads; every other field passes through untouched.

Only ``model``, ``messages``, ``stream`` and the server's own ``lookahead`` options are checked: the backend
validates its own options (temperature, tools, ...), so a field this server does not know about is forwarded rather
than rejected. ``lookahead`` is the one field that is never forwarded.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.calibrations import check_name
from lightning_lookahead.serving.settings import RouteOn

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


class LookaheadOptions(BaseModel):
    """The request's own ``lookahead`` object (the openai client sends it with ``extra_body``); never forwarded."""

    model_config = ConfigDict(extra="forbid")

    #: Answer with every candidate's score and probability (``lookahead`` in the JSON, ``x-lookahead-scores``).
    return_scores: bool = False


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions`` as far as routing needs it."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    #: A JSON boolean, nothing else: "yes", "true", 1 or null are a 400, never coerced (the backend gets this value).
    stream: StrictBool = False
    lookahead: LookaheadOptions | None = None

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


def parse_router_model(model: str) -> float | str | None:
    """``router`` → None (argmax); ``router:λ=0.5`` / ``router:lambda=0.5`` → 0.5; ``router:<name>`` → the
    calibration name; LookaheadError otherwise."""
    if model == ROUTER_MODEL:
        return None
    match = _COST_AWARE.match(model)
    if match is None:
        rest = model.partition(":")[2] if is_router_model(model) else None
        if rest is None or "=" in rest:
            raise LookaheadError(f"not a router model name: {model!r} (router, router:λ=<value> or router:<name>)")
        return check_name(rest)
    try:
        lam = float(match["lam"])
    except ValueError:
        raise LookaheadError(f"λ in {model!r} is not a number") from None
    if not math.isfinite(lam) or lam < 0:
        raise LookaheadError(f"λ in {model!r} must be a finite number ≥ 0")
    return lam


def is_router_model(model: str) -> bool:
    return model == ROUTER_MODEL or model.startswith(ROUTER_MODEL + ":")
