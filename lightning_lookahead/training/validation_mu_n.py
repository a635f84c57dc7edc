"""Validation µn per benchmark (per domain) and their macro average ``val/avg_mu_n``, logged at every validation.

``val/reward`` averages over prompts, so on the joint setting two thirds of it is MATH; the results table reports
Avg µn, which weights the benchmarks equally. This callback logs the test-side quantity on the validation items
(µn against their own oracle and single models, :func:`lightning_lookahead.evaluation.validation_mu_n`) so that
checkpoint selection and ``lookahead tune`` can optimise what the table reports.

The module's ``validation_step`` returns the batch's logits; the DataModule's validation batches carry ``row``, each
prompt's position in the validation split, so the score matrix is rebuilt in split order on every rank (rows
gathered over DDP ranks; the sampler's padding repeats rows, which overwrite themselves).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from lightning_lookahead.data.schema import RoutingExample

#: The macro-average key (the default checkpoint monitor and tune objective with several benchmarks or domains).
AVG_KEY = "val/avg_mu_n"


class ValidationMuN(Callback):
    """Collects validation logits by row and logs ``val/mu_n/<benchmark>`` and ``val/avg_mu_n`` at epoch end."""

    def __init__(self, examples: list[RoutingExample], candidates: list[str]) -> None:
        self.examples = examples
        self.candidates = list(candidates)
        self._rows: list[torch.Tensor] = []
        self._logits: list[torch.Tensor] = []
        self._cache: dict = {}
        self.last: dict[str, Any] | None = None

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._rows, self._logits = [], []

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not isinstance(outputs, dict) or "logits" not in outputs or "row" not in batch:
            return
        self._rows.append(batch["row"].detach().cpu())
        self._logits.append(outputs["logits"].detach().float().cpu())

    def _gathered(self, trainer: L.Trainer) -> tuple[np.ndarray, np.ndarray]:
        rows = torch.cat(self._rows) if self._rows else torch.zeros(0, dtype=torch.long)
        logits = torch.cat(self._logits) if self._logits else torch.zeros(0, len(self.candidates))
        if trainer.world_size > 1:
            import torch.distributed as dist

            parts: list[Any] = [None] * trainer.world_size
            dist.all_gather_object(parts, (rows, logits))
            rows = torch.cat([p[0] for p in parts])
            logits = torch.cat([p[1] for p in parts])
        return rows.numpy(), logits.numpy()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.examples:
            return
        rows, logits = self._gathered(trainer)
        seen = np.zeros(len(self.examples), dtype=bool)
        seen[rows] = True
        matrix = np.zeros((len(self.examples), len(self.candidates)), dtype=np.float64)
        matrix[rows] = logits
        examples = self.examples
        if not seen.all():  # limit_val_batches: score the rows that were validated
            keep = np.flatnonzero(seen)
            examples, matrix = [examples[i] for i in keep], matrix[keep]
            self._cache = {}  # references depend on the item set
        if not examples:
            return
        from lightning_lookahead.evaluation import validation_mu_n

        result = validation_mu_n(examples, matrix, self.candidates, reference_cache=self._cache)
        self.last = result
        for bench, value in result["mu_n"].items():
            if value is not None:
                pl_module.log(f"val/mu_n/{bench}", float(value))
        avg = result["avg_mu_n"]
        if avg is None or not math.isfinite(avg):
            warnings.warn("validation µn is undefined (every candidate scores alike on every item)", stacklevel=2)
            avg = -math.inf  # never selected over a defined value
        pl_module.log(AVG_KEY, float(avg), prog_bar=True)


def has_several_domains(examples: list[RoutingExample]) -> bool:
    """Whether the validation split mixes benchmarks or domains (then ``val/avg_mu_n`` is the natural monitor)."""
    return len({ex.benchmark for ex in examples}) > 1
