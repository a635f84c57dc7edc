"""Training batch orders that a resumed run can replay exactly.

A shuffled ``DataLoader`` draws each epoch's order from one generator that lives only in the process. After a
resume from a mid-epoch checkpoint, a fresh generator starts again at the seed's *first* epoch, and Lightning,
which only counts batches, then trains the first batches of that order a second time and never the rest.

Here an epoch's batches are a function of ``(seed, epoch)`` alone (:class:`ResumableBatchSampler` replays the
generator from the seed), and the loader's ``state_dict`` records the epoch and the batches the trainer has
taken from it, so ``load_state_dict`` skips exactly those. Two orders exist:

- :func:`shuffled_batches`: the order of ``DataLoader(shuffle=True, generator=...)``, draw for draw, so runs
  that never resume train on the same batches as before this module existed;
- :func:`length_grouped_batches`: indices shuffled, cut into pools of ``batch_size × pool_batches``, each pool
  sorted by length and cut into batches, the batches shuffled again. Each epoch stays random while the padding
  inside a batch mostly disappears.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler

from lightning_lookahead.errors import LookaheadError

#: One epoch's batches, drawn from (and advancing) the generator it is given.
EpochPlan = Callable[[torch.Generator], list[list[int]]]


def shuffled_batches(size: int, batch_size: int) -> EpochPlan:
    """``DataLoader(shuffle=True, generator=g)``'s batches: its iterator's base-seed draw, then ``RandomSampler``'s
    two permutations (the second is sliced to nothing but still advances the generator)."""

    def plan(generator: torch.Generator) -> list[list[int]]:
        torch.empty((), dtype=torch.int64).random_(generator=generator)
        order = torch.randperm(size, generator=generator).tolist()
        torch.randperm(size, generator=generator)
        return [order[i : i + batch_size] for i in range(0, size, batch_size)]

    return plan


def length_grouped_batches(lengths: Sequence[int], batch_size: int, *, pool_batches: int = 50) -> EpochPlan:
    """Batches of similar-length items, in a random order (see the module docstring)."""
    lengths = list(lengths)
    pool = batch_size * pool_batches

    def plan(generator: torch.Generator) -> list[list[int]]:
        order = torch.randperm(len(lengths), generator=generator).tolist()
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=lambda i: lengths[i], reverse=True)
            batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        return [batches[k] for k in torch.randperm(len(batches), generator=generator).tolist()]

    return plan


class ResumableBatchSampler(Sampler[list[int]]):
    """Epoch ``e`` is the ``e``-th plan drawn from a generator seeded with ``seed``; each iteration is the next epoch.

    :meth:`resume_at` makes the next iteration epoch ``epoch`` without its first ``skip`` batches.
    """

    def __init__(self, plan: EpochPlan, num_batches: int, seed: int) -> None:
        self.plan = plan
        self.num_batches = num_batches
        self.seed = seed
        self.epoch = 0
        self.skip = 0

    def __len__(self) -> int:
        """A whole epoch even when resuming: Lightning counts the skipped batches as already trained."""
        return self.num_batches

    def batches(self, epoch: int) -> list[list[int]]:
        """The whole of epoch ``epoch``, replayed from the seed (cheap: a few permutations per epoch)."""
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        for _ in range(epoch):
            self.plan(generator)
        return self.plan(generator)

    def resume_at(self, epoch: int, skip: int) -> None:
        if skip >= self.num_batches:  # the checkpoint closed its epoch: the next one starts whole
            epoch, skip = epoch + 1, 0
        self.epoch, self.skip = epoch, skip

    def __iter__(self) -> Iterator[list[int]]:
        epoch, skip = self.epoch, self.skip
        self.epoch, self.skip = epoch + 1, 0
        yield from self.batches(epoch)[skip:]


class ResumableLoader(DataLoader):
    """A training ``DataLoader`` whose ``state_dict`` Lightning stores in each checkpoint and restores on resume.

    ``progress`` says where training stands when a checkpoint is written: the epoch, and how many of its batches
    the trainer has taken. The sampler cannot count that itself, because the trainer and the loader's workers
    fetch batches ahead of the step that trains them.
    """

    def __init__(self, dataset: Any, sampler: ResumableBatchSampler, progress: Callable[[], tuple[int, int]], **kwargs):
        super().__init__(dataset, batch_sampler=sampler, generator=torch.Generator(), **kwargs)
        self.progress = progress
        self._started = False
        self._restored = False

    def __iter__(self) -> Any:
        if not self._started:
            self._started = True
            epoch, taken = self.progress()
            if (epoch or taken) and not self._restored:
                # An older checkpoint, written before the loader saved its state: the order is still a function of
                # (seed, epoch), so continue it from the trainer's own count (unverified: same seed and data assumed).
                sampler: ResumableBatchSampler = self.batch_sampler  # type: ignore[assignment]
                sampler.resume_at(epoch, taken)
                warnings.warn(
                    f"resume: the checkpoint holds no data order (written before lightning_lookahead saved one); "
                    f"continuing the seed's order at epoch {epoch + 1} after {taken} batches, which is the unbroken "
                    "run's order only if that run had the same seed, data and data.batch_size",
                    stacklevel=2,
                )
        return super().__iter__()

    def state_dict(self) -> dict[str, int]:
        sampler: ResumableBatchSampler = self.batch_sampler  # type: ignore[assignment]
        epoch, taken = self.progress()
        return {"seed": sampler.seed, "epoch": epoch, "batches": taken, "batches_per_epoch": sampler.num_batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler: ResumableBatchSampler = self.batch_sampler  # type: ignore[assignment]
        if state["batches_per_epoch"] != sampler.num_batches:
            raise LookaheadError(
                f"resume: the checkpoint's epochs had {state['batches_per_epoch']} training batches, this run has "
                f"{sampler.num_batches}; resume with the same data and data.batch_size"
            )
        sampler.seed = state["seed"]
        sampler.resume_at(state["epoch"], state["batches"])
        self._restored = True
