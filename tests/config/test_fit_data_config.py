"""`lookahead evaluate --fit-set key=value` goes through the same typed parse as an experiment's `data:`."""

from __future__ import annotations

import pytest

from lightning_lookahead.data.config import DataConfig
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.routers.fitted import fit_data_config

CANDIDATES = ("a", "b", "c")


def test_flags_and_overrides_make_a_typed_data_section(monkeypatch):
    monkeypatch.setenv("LOOKAHEAD_CACHE_DIR", "/tmp/lookahead-cache")
    cfg = fit_data_config(
        "data", CANDIDATES, family="math", protocol="kfold", fold=1, overrides=["data.kfold.k=3", "max_train_prompts=8"]
    )
    assert isinstance(cfg, DataConfig) and (cfg.family, cfg.protocol) == ("math", "kfold")
    assert (cfg.kfold.k, cfg.kfold.fold, cfg.max_train_prompts) == (3, 1, 8)
    assert cfg.candidates == list(CANDIDATES) and cfg.cache_dir == "/tmp/lookahead-cache"


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ({"overrides": ["max_train_prompt=3"]}, "--fit-set: data.max_train_prompt: unknown config key; did you mean"),
        ({"overrides": ["batch_size=0"]}, "--fit-set: data.batch_size: must be ≥ 1, got 0"),
        ({"overrides": ["kfold.val_fraction=1"]}, "--fit-set: data.kfold.val_fraction: must be in [0, 1)"),
        ({"overrides": ["max_train_prompts"]}, "--fit-set 'max_train_prompts': expected key=value"),
        ({"protocol": "kfol"}, "data.protocol: 'kfol' is not one of paper, kfold; did you mean 'kfold'?"),
        ({"family": "maths"}, "data.family: 'maths' is not one of chat, math, code, all; did you mean 'math'?"),
        ({"protocol": "kfold", "fold": 5}, "data.kfold.fold: must be < data.kfold.k (5), got 5"),
        ({"fold": 1}, "--fold 1 needs --fit-protocol kfold"),
    ],
)
def test_mistakes_read_as_in_experiments(where, message):
    with pytest.raises(LookaheadError) as info:
        fit_data_config("data", CANDIDATES, **where)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
