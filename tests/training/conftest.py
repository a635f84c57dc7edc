"""A tiny saved BERT masked LM and a helper that shrinks a shipped experiment to run in seconds on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

WORDS = """def return import class for in if else while print list dict string int float sort sum count python
function write number numbers value values array given input output test the a of to and is that with find compute
each first last all x y n""".split()


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT masked LM with [unused0..4], saved like a hub checkpoint."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    out = tmp_path_factory.mktemp("tiny-backbone")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"[unused{j}]" for j in range(5)]
    (out / "vocab.txt").write_text("\n".join(specials + WORDS) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(out / "vocab.txt"))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertForMaskedLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def shrink(name: str, backbone: Path, data_dir: Path, tmp: Path, kind: str | None = None) -> list[str]:
    """Overrides that keep a shipped experiment's structure but make it run in seconds."""
    from lightning_lookahead.config.compose import compose

    cfg = compose(name)
    kind = kind or cfg.model.kind
    overrides = [
        f"model.backbone={backbone}",
        "model.max_length=64",
        f"data.data_dir={data_dir}",
        f"data.cache_dir={tmp}/cache",
        f"run_dir={tmp}/run",
        "data.max_train_prompts=8",
        "data.max_eval_prompts=4",
        "data.batch_size=4",
        "data.global_batch_size=4",
        "data.eval_batch_size=8",
        "trainer.precision=32-true",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "logger.wandb.enabled=false",
    ]
    if kind == "mlm":
        overrides.append("model.mask_length=4")
    if cfg.data.family != "code":  # chat/math training labels are absent here: cross-validate inside the benchmarks
        overrides += ["data.protocol=kfold", "data.kfold.k=3"]
    return overrides
