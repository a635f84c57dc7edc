"""Shared pieces of the predictor tests: vocabulary, hand-made routing examples, a loader and a quiet trainer.

A uniquely named module (not ``conftest``) so test files can import it without clashing with other conftests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
UNUSED = [f"[unused{j}]" for j in range(5)]
PROMPT_WORDS = ["write", "a", "function", "to", "sort", "list", "solve", "equation", "for", "x", "tell", "me", "story"]
PROMPT_WORDS += ["about", "cat", "dog", "code", "math", "chat", "please"]
#: Response words never occur in prompts, so a response token in ``input_ids`` means a leaked response.
RESPONSE_WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]

CANDIDATES = ["m0", "m1", "m2", "m3", "m4"]

_PROMPTS = [
    "write a function to sort a list",
    "write code to sort a list please",
    "solve the equation for x",
    "solve math equation for x please",
    "tell me a story about a cat",
    "tell me a story about a dog",
    "write a function for math",
    "code a function to solve x",
    "chat about a cat please",
    "tell me about code",
    "please solve x",
    "a story about math",
]


def make_examples(n: int = 12) -> list[dict[str, Any]]:
    """Examples whose best candidate depends on the prompt's topic (code → 4, math → 1, else 0)."""
    out = []
    for i in range(n):
        prompt = _PROMPTS[i % len(_PROMPTS)]
        best = 4 if ("code" in prompt or "function" in prompt) else 1 if ("solve" in prompt or "math" in prompt) else 0
        scores = [0.1 * ((i + j) % 3) for j in range(5)]
        scores[best] = 1.0
        responses = [
            " ".join(RESPONSE_WORDS[(i + j + k) % len(RESPONSE_WORDS)] for k in range(2 + (i + j) % 5))
            for j in range(5)
        ]
        out.append({"prompt_id": f"p{i}", "prompt": prompt, "responses": responses, "scores": scores, "benchmark": "t"})
    return out


def make_loader(module: Any, examples: Sequence[dict[str, Any]], batch_size: int = 4, shuffle: bool = False):
    """What the DataModule does, minus caching: featurize every example, collate with the module's collator."""
    from torch.utils.data import DataLoader

    features = [module.featurize(ex) for ex in examples]
    return DataLoader(features, batch_size=batch_size, shuffle=shuffle, collate_fn=module.collate)


def make_trainer(**kwargs: Any):
    """A quiet CPU trainer; ``kwargs`` override the defaults."""
    import lightning as L

    defaults: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    defaults.update(kwargs)
    return L.Trainer(**defaults)
