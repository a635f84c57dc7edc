"""A synthetic dataset over three candidates outside the paper's pool (the best one depends on the domain)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CANDIDATES = ["frontier-api", "local-llama", "coder-7b"]
#: Which candidate is best in each domain, so a router can learn it from the prompt's words.
BEST = {"code": "coder-7b", "math": "frontier-api", "chat": "local-llama"}
TOPICS = {
    "code": ["write a function to sort a list", "fix this python class", "implement a stack in code"],
    "math": ["solve the equation for x", "compute the integral of x", "find the number of primes"],
    "chat": ["tell me a story about a cat", "write a poem about the sea", "say hello to my friend"],
}


def rows(n_per_domain: int = 24) -> list[dict[str, Any]]:
    out = []
    for domain, prompts in TOPICS.items():
        for i in range(n_per_domain):
            prompt = f"{prompts[i % len(prompts)]} {i}"
            scores = {c: (9.0 if c == BEST[domain] else 3.0 + (i + j) % 3) for j, c in enumerate(CANDIDATES)}
            out.append(
                {
                    "id": f"{domain}-{i}",
                    "prompt": prompt if i % 2 else [{"role": "user", "content": prompt}],
                    "responses": {c: f"{c} answers {prompt}" for c in CANDIDATES},
                    "scores": scores,
                    "domain": domain,
                    "tokens": {c: {"prompt": 10, "completion": 20 + j} for j, c in enumerate(CANDIDATES)},
                }
            )
    return out


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
    return path


def train_mlc_router(tmp: Path, items: list[dict[str, Any]], *, epochs: int, lr: float) -> Path:
    """An MLC router on a tiny BERT over the kit's words, trained on ``items`` (written to ``tmp/mine.jsonl``) with
    the ``debug`` experiment; returns its run folder ``tmp/run``."""
    from tiny_models import save_tiny_bert

    from lightning_lookahead.config.compose import compose
    from lightning_lookahead.training.recipe import run_experiment

    words = sorted({w for prompts in TOPICS.values() for p in prompts for w in p.split()})
    (tmp / "bert").mkdir()
    backbone = save_tiny_bert(tmp / "bert", words, dropout=0.0)
    dataset = write_jsonl(tmp / "mine.jsonl", items)
    overrides = [
        f"model.backbone={backbone}",
        f"data.data_dir={tmp}",
        f"data.cache_dir={tmp}/cache",
        f"run_dir={tmp}/run",
        f"data.dataset={dataset}",
        "model.kind=mlc",
        "model.max_length=32",
        "data.max_train_prompts=null",
        "data.max_eval_prompts=null",
        f"trainer.max_epochs={epochs}",
        f"optim.lr={lr}",
    ]
    run_experiment(compose("debug", overrides))
    return tmp / "run"
