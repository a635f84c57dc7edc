"""Settings of ``model:`` for ``kind: mlc`` (the query-only classifier the paper compares against)."""

from __future__ import annotations

from dataclasses import dataclass

from lightning_lookahead.models.predictor import BackboneConfig, Pooling


@dataclass
class MLCConfig(BackboneConfig):
    """An encoder reads the prompt alone (``max_length`` tokens incl. specials) and a joint head scores N."""

    kind: str = "mlc"
    pooling: Pooling = "cls"
