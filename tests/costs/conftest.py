"""Fixtures shared by the cost tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture()
def info_lines() -> Iterator[list[str]]:
    """What ``rank_zero_info`` logs (lightning's logger does not propagate to pytest's capture)."""
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    logger.addHandler(handler)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
