"""A tiny saved BERT masked LM and a helper that shrinks a shipped experiment to run in seconds on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import save_tiny_bert

WORDS = """def return import class for in if else while print list dict string int float sort sum count python
function write number numbers value values array given input output test the a of to and is that with find compute
each first last all x y n""".split()


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT masked LM with [unused0..4], saved like a hub checkpoint."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-backbone"), WORDS)
