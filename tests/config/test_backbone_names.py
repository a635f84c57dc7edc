"""`model.backbone` is checked when a config composes: alias, local model, or a hub id that can load here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants
import pytest

from lightning_lookahead.config.compose import compose
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.backbone_names import ALIASES, PAPER_HUB_IDS, check_backbone


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Downloads off and an empty Hugging Face cache under ``tmp_path``; returns the cache directory."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def _cache(cache: Path, repo_id: str) -> None:
    """What a download leaves in the hub cache for ``config.json``."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "config.json").write_text("{}")


@pytest.mark.parametrize("name", [*ALIASES, "MiniLM", "SmolLM2"])
def test_aliases_in_any_case(name):
    check_backbone(name)


def test_local_models(tmp_path):
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "config.json").write_text("{}")
    check_backbone(str(saved))
    gguf = tmp_path / "model.Q8_0.gguf"
    gguf.write_bytes(b"GGUF")
    check_backbone(str(gguf))
    with pytest.raises(LookaheadError, match=r"has no config\.json"):
        check_backbone(str(tmp_path))
    with pytest.raises(LookaheadError, match="is not a backbone alias"):
        check_backbone(str(tmp_path / "missing.gguf"))
    with pytest.raises(LookaheadError, match="is not a backbone alias"):
        check_backbone("./not/a/saved/model")


def test_offline_hub_ids_must_be_cached(offline):
    with pytest.raises(LookaheadError) as info:
        check_backbone("nonexistent/model")
    assert str(info.value) == (
        "model.backbone: 'nonexistent/model' is not a backbone alias (minilm, smollm2), an existing path, or a hub "
        "id in the local cache (offline: HF_HUB_OFFLINE=1)"
    )
    _cache(offline, "someone/cached-model")
    check_backbone("someone/cached-model")
    for repo_id in PAPER_HUB_IDS:  # the shipped paper experiments validate without the download
        check_backbone(repo_id)


def test_transformers_offline_counts_too(offline, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    with pytest.raises(LookaheadError, match="offline: HF_HUB_OFFLINE=1"):
        check_backbone("nonexistent/model")


def test_online_any_well_formed_hub_id(offline, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    check_backbone("someone/not-downloaded-yet")
    with pytest.raises(LookaheadError, match="is not a backbone alias"):
        check_backbone("a/b--c")


def test_compose_checks_the_final_backbone_only(offline):
    """A bad backbone in a file is fine when an override replaces it: only the composed one must load."""
    with pytest.raises(LookaheadError, match=r"^model\.backbone: 'nonexistent/model'"):
        compose("cpu/mlm_code", ["model.backbone=nonexistent/model"])
    _cache(offline, "someone/cached-model")
    cfg = compose("cpu/mlm_code", ["model.backbone=nonexistent/model", "model.backbone=someone/cached-model"])
    assert cfg.model.backbone == "someone/cached-model"


def test_importing_the_check_loads_neither_torch_nor_transformers():
    code = (
        "import sys; import lightning_lookahead.models.backbone_names as b; b.check_backbone('minilm'); "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
