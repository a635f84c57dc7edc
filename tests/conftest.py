"""Suite-wide settings: never touch the network, W&B or the Hugging Face Hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

#: The authors' data as laid beside the checkout (CI and development); override with $LOOKAHEAD_DATA_MIRROR.
REAL_DATA = Path(
    os.environ.get("LOOKAHEAD_DATA_MIRROR") or Path(__file__).resolve().parents[1].parent / "shared" / "lookahead-data"
)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real benchmark data (gzipped mirror layout); tests that need it skip when it is absent."""
    if not (REAL_DATA / "test").is_dir():
        pytest.skip(f"real benchmark data not found at {REAL_DATA}")
    return REAL_DATA
