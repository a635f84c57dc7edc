"""`lookahead data collect`: every prompt to every candidate's OpenAI-compatible endpoint, resumably.

The names below are imported on first use, so that a light submodule (the journal `lookahead data score` shares)
does not pull in the HTTP client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightning_lookahead.lazy import lazy_exports

if TYPE_CHECKING:
    from lightning_lookahead.collect.collector import CollectSettings, collect, collect_async
    from lightning_lookahead.collect.endpoints import listed_candidates
    from lightning_lookahead.collect.journal import journal_path
    from lightning_lookahead.collect.prompts import PromptRow, Prompts, load_prompts
    from lightning_lookahead.collect.report import CollectReport
    from lightning_lookahead.collect.requester import Sampling
    from lightning_lookahead.collect.retry import RetryPolicy

_WHERE = {
    "CollectReport": "report",
    "CollectSettings": "collector",
    "PromptRow": "prompts",
    "Prompts": "prompts",
    "RetryPolicy": "retry",
    "Sampling": "requester",
    "collect": "collector",
    "collect_async": "collector",
    "journal_path": "journal",
    "listed_candidates": "endpoints",
    "load_prompts": "prompts",
}

__all__ = [
    "CollectReport",
    "CollectSettings",
    "PromptRow",
    "Prompts",
    "RetryPolicy",
    "Sampling",
    "collect",
    "collect_async",
    "journal_path",
    "listed_candidates",
    "load_prompts",
]


__getattr__ = lazy_exports(__name__, _WHERE)
