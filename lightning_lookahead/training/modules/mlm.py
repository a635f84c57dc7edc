"""Training Lookahead-MLM: the curriculum that shows a shrinking prefix of each response (METHOD §8).

The rate follows global optimiser steps (:func:`~lightning_lookahead.models.mlm.layout.curriculum_rate`); validation
always masks everything (rate 1), so no response reaches the routing decision. With ``mlm_weight`` 0 (the "w/o RM"
ablation) training still shows the curriculum's prefixes but drops the MLM labels, since a zero-weight loss only
costs time; validation still reports it.
"""

from __future__ import annotations

import torch

from lightning_lookahead.models.mlm.config import MLMConfig
from lightning_lookahead.models.mlm.layout import curriculum_rate
from lightning_lookahead.training.modules.predictor import PredictorModule, Stage


class MLMModule(PredictorModule):
    """:class:`PredictorModule` plus the masking curriculum, applied to each batch on the device."""

    config: MLMConfig
    last_mask_rate: float | None = None

    def current_mask_rate(self, stage: Stage) -> float:
        """Curriculum rate in training (from global optimiser steps), 1.0 in validation."""
        if stage != "train":
            return 1.0
        step, total = self.curriculum_step()
        return curriculum_rate(step, total, self.config.start_mask_rate, self.config.mask_warmup_ratio)

    def prepare_batch(self, batch: dict[str, torch.Tensor], stage: Stage) -> dict[str, torch.Tensor]:
        cfg = self.config
        rate = self.current_mask_rate(stage)
        self.last_mask_rate = rate
        if stage == "train" and self._trainer is not None:
            self.log("train/mask_rate", rate, batch_size=int(batch["scores"].shape[0]))
        if "responses" not in batch:
            return batch
        masked = self.inputs.layout.mask(batch, rate, cfg.mask_type)
        if cfg.mask_type == "no" or (stage == "train" and cfg.mlm_weight == 0):
            del masked["mlm_labels"]  # the curriculum's input stays; only the zero-weight loss is skipped
        return masked
