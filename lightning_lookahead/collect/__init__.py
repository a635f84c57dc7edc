"""`lookahead data collect`: every prompt to every candidate's OpenAI-compatible endpoint, resumably."""

from lightning_lookahead.collect.collector import CollectSettings, collect, collect_async
from lightning_lookahead.collect.endpoints import listed_candidates
from lightning_lookahead.collect.journal import journal_path
from lightning_lookahead.collect.prompts import PromptRow, Prompts, load_prompts
from lightning_lookahead.collect.report import CollectReport
from lightning_lookahead.collect.requester import Sampling
from lightning_lookahead.collect.retry import RetryPolicy

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
