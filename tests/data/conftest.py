"""Fixtures for the data-reader tests: the small on-disk fixture tree and writable copies of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

#: Small copies of every source, in the real on-disk layout and formats (plain, not gzipped).
FIXTURE_ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "data"


@pytest.fixture
def fixture_root() -> Path:
    """The read-only fixture data root (holds ``test/`` and ``train/``)."""
    return FIXTURE_ROOT


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A writable copy of the fixture tree, for tests that corrupt or remove files."""
    root = tmp_path / "data"
    shutil.copytree(FIXTURE_ROOT, root)
    return root
