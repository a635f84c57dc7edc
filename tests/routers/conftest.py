"""A tiny saved BERT masked LM and examples for the predictor tests.

Everything is built from configs (no download): 2 layers, hidden 32, a ~40-token vocabulary with [unused0..4],
dropout off so that losses are reproducible to the last digit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from routers_testkit import PROMPT_WORDS, RESPONSE_WORDS, make_examples
from tiny_models import save_tiny_bert


@pytest.fixture(scope="session")
def tiny_mlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny BertForMaskedLM + BertTokenizerFast (with [unused0..4]) that ``load_masked_lm`` can read.

    Dropout is off so that losses are reproducible to the last digit.
    """
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-mlm"), PROMPT_WORDS + RESPONSE_WORDS, dropout=0.0)


@pytest.fixture(scope="session")
def examples() -> list[dict[str, Any]]:
    return make_examples()


@pytest.fixture
def mlm_config(tiny_mlm_dir: Path) -> Callable[..., dict[str, Any]]:
    """``model:`` settings of a tiny LookaheadMLM; keyword arguments override."""

    def build(**overrides: Any) -> dict[str, Any]:
        cfg = {"kind": "mlm", "backbone": str(tiny_mlm_dir), "max_length": 64, "mask_length": 4}
        cfg.update(overrides)
        return cfg

    return build


@pytest.fixture(autouse=True, scope="session")
def _quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
