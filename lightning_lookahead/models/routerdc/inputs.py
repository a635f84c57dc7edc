"""Prompt-only inputs (cut from the LEFT, with special tokens) plus, in training batches, each prompt's cluster id.

The cluster ids are not features: ``featurize`` sees one example at a time and the clusters depend on the whole
training split. They are a prompt-id → cluster map set once before training
(:meth:`~lightning_lookahead.training.modules.routerdc.RouterDCModule.on_fit_start`), read by
``collate(train=True)``. So the feature cache does not depend on them, and routing (``train=False``) never needs
them: exports carry no clusters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from lightning_lookahead.models.prompt_inputs import PromptInputs

#: The cluster id of a training prompt the map does not know: left out of the sample–sample loss.
NO_CLUSTER = -1


@dataclass
class RouterDCInputs(PromptInputs):
    """The query-only prompt inputs plus ``clusters``, a map from training prompt ids to k-means groups."""

    kind: str = "routerdc"
    clusters: Mapping[str, int] | None = None

    def collate(self, features: list[dict[str, Any]], train: bool = False) -> dict[str, torch.Tensor]:
        """Padded prompts and scores; training batches also carry ``cluster`` (B,) once the map is set."""
        batch = super().collate(features, train)
        if train and self.clusters is not None:
            ids = [int(self.clusters.get(str(f["prompt_id"]), NO_CLUSTER)) for f in features]
            batch["cluster"] = torch.tensor(ids, dtype=torch.long)
        return batch
