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
