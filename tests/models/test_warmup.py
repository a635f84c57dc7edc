"""The MLM-head warm-up: trains only the head, lowers the held-out MLM loss, caches its result atomically."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.backbones import load_masked_lm
from lightning_lookahead.models.warmup import WarmupSettings, is_warmed, warmed_backbone, warmup_report
from tests.tiny_models import save_tiny_bert

WORDS = [f"w{i}" for i in range(40)]


def _texts(n: int) -> list[str]:
    # a skewed vocabulary (mostly w0, w1, w2): even a head over a random frozen encoder can learn it
    return [" ".join(WORDS[(i + k) % 3] for k in range(12)) for i in range(n)]


def test_warmup_trains_only_the_head_and_is_cached(tmp_path: Path):
    (tmp_path / "tiny").mkdir()
    source = save_tiny_bert(tmp_path / "tiny", WORDS, dropout=0.0)
    settings = WarmupSettings(steps=60, batch_size=16, max_length=16, lr=1e-2, eval_texts=32)
    out = warmed_backbone(str(source), _texts(200), settings, cache_root=tmp_path / "cache")
    assert is_warmed(out) and out.parent == tmp_path / "cache"
    report = warmup_report(out)
    assert report["held_out_mlm_loss_after"] < report["held_out_mlm_loss_before"] - 0.5
    before, _ = load_masked_lm(str(source))
    after, _ = load_masked_lm(str(out))
    b, a = before.state_dict(), after.state_dict()
    assert torch.equal(
        b["bert.encoder.layer.0.attention.self.query.weight"], a["bert.encoder.layer.0.attention.self.query.weight"]
    )
    assert torch.equal(b["bert.embeddings.word_embeddings.weight"], a["bert.embeddings.word_embeddings.weight"])
    assert not torch.equal(b["cls.predictions.transform.dense.weight"], a["cls.predictions.transform.dense.weight"])
    mtime = (out / "lookahead_warmup.json").stat().st_mtime
    assert warmed_backbone(str(source), _texts(200), settings, cache_root=tmp_path / "cache") == out  # cached
    assert (out / "lookahead_warmup.json").stat().st_mtime == mtime
    other = warmed_backbone(str(source), _texts(201), settings, cache_root=tmp_path / "cache")
    assert other != out  # other texts, another key
    assert not list((tmp_path / "cache").glob(".*tmp*"))


def test_warmup_refuses_too_few_texts(tmp_path: Path):
    with pytest.raises(LookaheadError, match="needs more than 256 non-empty texts"):
        warmed_backbone("minilm", ["a", " "], cache_root=tmp_path)
    with pytest.raises(LookaheadError, match="steps must be ≥ 1"):
        WarmupSettings(steps=0)
