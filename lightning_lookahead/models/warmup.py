"""A masked-LM warm-up of a backbone's MLM head, cached like the GGUF conversion.

The embedded MiniLM is a sentence-embedding checkpoint with no MLM head: Lookahead-MLM's auxiliary task then starts
against a random head (first MLM loss about 10.9 nats, above ln |V|), unlike ModernBERT, the paper's backbone, which
ships a trained one. :func:`warmed_backbone` trains only the head (the prediction transform and the output bias; the
encoder and the tied word embeddings stay frozen, so the encoder is exactly the pretrained one) with standard BERT
masking (``transformers.DataCollatorForLanguageModeling``, 15%) on the given texts — a router's training prompts and
their responses — and saves the whole model under ``$LOOKAHEAD_MODEL_CACHE/warm-<backbone>-<key>``, where the key
hashes the backbone, the settings and the texts. Later calls return that directory at once; it is written to a
temporary sibling and renamed, under a file lock, so concurrent callers never see half a model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.backbones import load_masked_lm, resolve_backbone
from lightning_lookahead.models.model_cache import build_once, is_built, model_cache_root

log = logging.getLogger(__name__)
MARKER = "lookahead_warmup.json"


@dataclass(frozen=True)
class WarmupSettings:
    """How the head is warmed up (defaults: about 2 minutes for MiniLM on 2 CPU cores)."""

    steps: int = 300
    batch_size: int = 32
    max_length: int = 128  # tokens per text (at most the backbone's positions)
    lr: float = 1e-3
    mlm_probability: float = 0.15
    seed: int = 0
    eval_texts: int = 256

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "max_length", "eval_texts"):
            if getattr(self, name) < 1:
                raise LookaheadError(f"warm-up {name} must be ≥ 1, got {getattr(self, name)}")
        if not 0.0 < self.mlm_probability < 1.0 or self.lr <= 0:
            raise LookaheadError("warm-up needs 0 < mlm_probability < 1 and lr > 0")


def cache_key(backbone: str, settings: WarmupSettings, texts: Sequence[str]) -> str:
    digest = hashlib.sha256(json.dumps({"backbone": backbone, **asdict(settings)}, sort_keys=True).encode())
    for text in texts:
        digest.update(text.encode("utf-8", "replace") + b"\0")
    return digest.hexdigest()[:16]


def is_warmed(directory: Path) -> bool:
    return is_built(directory, MARKER)


def warmed_backbone(
    backbone: str, texts: Sequence[str], settings: WarmupSettings | None = None, *, cache_root: Path | None = None
) -> Path:
    """The directory of ``backbone`` with its MLM head warmed up on ``texts`` (trained once, then cached)."""
    settings = settings or WarmupSettings()
    texts = [t for t in texts if t and t.strip()]
    if len(texts) <= settings.eval_texts:
        raise LookaheadError(f"warm-up needs more than {settings.eval_texts} non-empty texts, got {len(texts)}")
    source = resolve_backbone(backbone)
    root = cache_root if cache_root is not None else model_cache_root()
    target = root / f"warm-{Path(backbone).name or 'backbone'}-{cache_key(source, settings, texts)}"
    return build_once(target, MARKER, lambda tmp: _warm(source, texts, settings, tmp))


def _head_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Parameters outside the base model (the MLM head), minus those tied to it (the decoder = word embeddings)."""
    prefix = getattr(model, "base_model_prefix", "")
    base = {id(p) for p in getattr(model, prefix).parameters()} if prefix and hasattr(model, prefix) else set()
    head = [p for name, p in model.named_parameters() if id(p) not in base and not name.startswith(prefix + ".")]
    if not head:
        raise LookaheadError(f"{type(model).__name__}: found no MLM-head parameters outside the base model to warm up")
    return head


def _mlm_loss(model: torch.nn.Module, collator, encodings: list[dict], batch_size: int) -> float:
    model.eval()
    total, count = 0.0, 0
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(1234)  # the same masks before and after the warm-up
    with torch.inference_mode():
        for start in range(0, len(encodings), batch_size):
            batch = collator(encodings[start : start + batch_size])
            n = int((batch["labels"] != -100).sum())
            total += float(model(**batch).loss) * n
            count += n
    torch.random.set_rng_state(generator_state)
    return total / max(count, 1)


def _warm(source: str, texts: list[str], settings: WarmupSettings, tmp: Path) -> None:
    """Train the head and save the whole model into ``tmp`` (renamed into place by the caller)."""
    from tqdm.auto import tqdm
    from transformers import DataCollatorForLanguageModeling

    start = time.perf_counter()
    torch.manual_seed(settings.seed)
    model, tokenizer = load_masked_lm(source)
    rng = random.Random(settings.seed)
    order = list(range(len(texts)))
    rng.shuffle(order)
    length = min(settings.max_length, int(getattr(model.config, "max_position_embeddings", settings.max_length)))
    encode = lambda ids: [  # noqa: E731
        tokenizer(texts[i], truncation=True, max_length=length, verbose=False) for i in ids
    ]
    held_out, train = encode(order[: settings.eval_texts]), encode(order[settings.eval_texts :])
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=settings.mlm_probability)
    before = _mlm_loss(model, collator, held_out, settings.batch_size)
    for p in model.parameters():
        p.requires_grad_(False)
    head = _head_parameters(model)
    for p in head:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(head, lr=settings.lr, weight_decay=0.0)
    model.eval()  # no dropout: the encoder is frozen and the head has none, so eval mode trains the same head faster
    bar = tqdm(range(settings.steps), desc="warming up the MLM head", unit="step", leave=False)
    for step in bar:
        begin = (step * settings.batch_size) % len(train)
        batch = collator([train[(begin + k) % len(train)] for k in range(settings.batch_size)])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=not torch.cuda.is_available()):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        bar.set_postfix(loss=f"{float(loss.detach()):.2f}")
    after = _mlm_loss(model, collator, held_out, settings.batch_size)
    for p in model.parameters():
        p.requires_grad_(True)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    marker = {
        "source": source,
        "settings": asdict(settings),
        "n_texts": len(texts),
        "held_out_mlm_loss_before": round(before, 4),
        "held_out_mlm_loss_after": round(after, 4),
        "ln_vocab": round(math.log(len(tokenizer)), 4),
        "seconds": round(time.perf_counter() - start, 1),
    }
    (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    log.warning("warmed up the MLM head of %s: held-out MLM loss %.2f → %.2f nats", source, before, after)


def warmup_report(directory: Path) -> dict:
    """The marker of a warmed directory (settings, held-out MLM loss before and after, time)."""
    return json.loads((Path(directory) / MARKER).read_text(encoding="utf-8"))
