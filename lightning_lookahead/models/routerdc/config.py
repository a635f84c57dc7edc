"""Settings of ``model:`` for ``kind: routerdc`` (RouterDC, Chen et al., NeurIPS 2024, "Query-Based Router by Dual
Contrastive Learning").

Defaults and where they come from:

- ``temperature`` τ = 1: logits are ``cos(E(x), k_j) / τ``. The authors' training script (shuhao02/RouterDC,
  ``train_scripts/router_train.sh``) runs ``tempreture=1`` with cosine similarity; checked there.
- ``sample_weight`` λ = 1: weight of the sample–sample loss; the same script's ``cluster_loss_weight=1``; checked.
- K+ = K− = 3 (positives / negatives of the sample–LLM loss) are ``loss.top_k`` / ``loss.bottom_k``, because that
  loss is the routing loss ``loss.name: routerdc`` (``training/losses.py``); the script's ``top_k=3 last_k=3``.
  Their pool has 7 LLMs, ours 5, so the sets overlap; :func:`~lightning_lookahead.training.losses.routerdc_pairs`
  handles it.
- ``clusters`` = 5: k-means groups of the training prompts for the sample–sample loss. From memory of the paper
  (N = 5); **not verified** — the authors' clusters come from a notebook whose k we did not check.
- ``cluster_embedder`` = ``minilm``: the frozen sentence encoder the k-means runs on (the project's cached
  embedder, the one the kNN / k-means baselines use). The paper clusters frozen pre-trained embeddings of the
  training queries; which encoder it used we did not verify.
- ``embedding_init_std`` = 0.78: the candidate embeddings start as N(0, 0.78²), as in the authors' code. With
  cosine logits only their direction matters, but AdamW's step size is scale-free, so the norm sets how fast they
  turn.
- ``pooling`` = ``cls``: the encoder's first token, as the authors' code (mDeBERTa-v3-base) does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from lightning_lookahead.models.predictor import BackboneConfig, Pooling
from lightning_lookahead.typed import at_least, positive


@dataclass
class RouterDCConfig(BackboneConfig):
    """An encoder reads the prompt alone; the logits are its cosine similarity to N learnable embeddings, over τ."""

    kind: str = "routerdc"
    pooling: Pooling = "cls"
    temperature: float = field(default=1.0, metadata=positive())
    sample_weight: float = field(default=1.0, metadata=at_least(0))
    clusters: int = field(default=5, metadata=at_least(2))
    cluster_embedder: str = "minilm"
    embedding_init_std: float = field(default=0.78, metadata=positive())

    aux_loss_name: ClassVar[str] = "sample_sample_loss"

    def aux_loss_weight(self) -> float:
        """λ of ``L = L_sample-LLM + λ · L_sample-sample``."""
        return self.sample_weight
