"""RouterDCModule: fits the k-means clusters of the training prompts once, before training (RouterDC's sample–sample
loss needs each training prompt's cluster).

The clusters group frozen sentence embeddings (``model.cluster_embedder``, cached on disk like the kNN baseline's)
of the DataModule's training split with scikit-learn's k-means (``random_state=0``), so every DDP rank computes the
same map. The map goes to the input builder, whose ``collate(train=True)`` adds the ``cluster`` ids the network reads;
nothing of it is exported, since routing needs no clusters. Everything else is :class:`PredictorModule`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from lightning_lookahead.config.schema import LossConfig, OptimConfig
from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.models.embeddings import Embedder
from lightning_lookahead.models.predictor import Predictor
from lightning_lookahead.training.modules.predictor import PredictorModule


def fit_clusters(
    examples: Sequence[RoutingExample], n_clusters: int, embedder: Embedder, seed: int = 0
) -> dict[str, int]:
    """prompt id → k-means cluster of its prompt's embedding (k capped at the number of prompts)."""
    from sklearn.cluster import KMeans

    if not examples:
        return {}
    embeddings = np.asarray(embedder.encode([ex.prompt for ex in examples]), dtype=np.float32)
    k = min(n_clusters, len(examples))
    labels = KMeans(n_clusters=k, random_state=seed, n_init="auto").fit_predict(embeddings)
    return {str(ex.prompt_id): int(c) for ex, c in zip(examples, labels, strict=True)}


class RouterDCModule(PredictorModule):
    """:class:`PredictorModule` plus the one-off clustering of the training prompts."""

    def __init__(
        self,
        predictor: Predictor,
        loss: Mapping[str, Any] | LossConfig | None = None,
        optim: Mapping[str, Any] | OptimConfig | None = None,
    ) -> None:
        super().__init__(predictor, loss, optim)
        if self.loss_config.name != "routerdc":
            rank_zero_warn(
                f"model.kind routerdc trains with loss.name {self.loss_config.name!r}; RouterDC's own sample–LLM "
                "loss is loss.name=routerdc (experiments/routerdc.yaml sets it)"
            )

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if getattr(self.inputs, "clusters", None) is not None or self.config.aux_loss_weight() == 0:
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        splits = getattr(datamodule, "splits", None)
        if splits is None:
            rank_zero_warn("RouterDC: no DataModule with training splits, hence no clusters: sample–sample loss off")
            return
        self.inputs.clusters = fit_clusters(splits.train, self.config.clusters, self._embedder(datamodule))
        groups = len(set(self.inputs.clusters.values()))
        rank_zero_info(f"RouterDC: {len(self.inputs.clusters)} training prompts in {groups} clusters")

    def _embedder(self, datamodule: Any) -> Embedder:
        """The frozen sentence encoder, cached next to the run's features (else in the default embedding cache)."""
        from lightning_lookahead.routers.embedding_baselines import default_embedder

        cache = getattr(getattr(datamodule, "cfg", None), "cache_dir", None)
        return default_embedder(self.config.cluster_embedder, Path(cache) / "embeddings" if cache else None)
