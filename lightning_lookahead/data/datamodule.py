"""RoutingDataModule: splits → cached features (``datasets``) → dataloaders of tensors from the predictor's inputs.

Features are cached as Arrow files under ``<cache_dir>/features/``; a file's name hashes the input builder's
fingerprint, the split's content and its name, so a later process reuses it without re-tokenising and any
change of tokenizer, settings or data gets a new file. ``datasets`` writes the file to a temporary name in
the same folder and renames it when complete (``Dataset._map_single``), so an interrupted run or two ranks
featurising at once never leave a partial cache file under the final name.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from datasets import Dataset
from torch.utils.data import DataLoader

from lightning_lookahead.data.config import DataConfig
from lightning_lookahead.data.inputs import InputBuilder, example_row
from lightning_lookahead.data.sampling import (
    ResumableBatchSampler,
    ResumableLoader,
    length_grouped_batches,
    shuffled_batches,
)
from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.data.splits import RoutingSplits, make_splits
from lightning_lookahead.errors import LookaheadError

#: Bump when the row layout handed to ``featurize`` changes, so old cache files are not reused.
CACHE_FORMAT = "routing-features-v1"


def content_hash(examples: Sequence[RoutingExample]) -> str:
    """sha256 over everything ``featurize`` sees of a split, in order (ids, prompts, responses, scores)."""
    digest = hashlib.sha256()
    for ex in examples:
        row = example_row(ex)
        digest.update(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def cache_key(fingerprint: str, examples: Sequence[RoutingExample], split: str) -> str:
    """The 64-hex name of a split's feature cache (also a valid ``datasets`` fingerprint)."""
    payload = json.dumps([CACHE_FORMAT, fingerprint, content_hash(examples), split])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _as_path(value: str, key: str) -> Path:
    if "${" in str(value):
        raise LookaheadError(f"{key} is an unresolved interpolation ({value!r}); compose the config with OmegaConf")
    return Path(value)


class RoutingDataModule(L.LightningDataModule):
    """Train / val / per-benchmark test dataloaders over featurised routing examples.

    ``test_dataloader`` returns one loader per benchmark, in :attr:`test_names` order, aligned item by item
    with :attr:`test_examples` so the runner can score router outputs with the benchmark metrics. Under DDP,
    Lightning swaps in a ``DistributedSampler`` for every loader, which pads and interleaves items: run
    scoring tests on one device (the runner does) or the alignment with ``test_examples`` is lost.
    """

    def __init__(
        self,
        cfg: DataConfig,
        inputs: InputBuilder,
        *,
        splits: RoutingSplits | None = None,
        seed: int | None = None,
        featurize_test: bool = True,
    ) -> None:
        """``featurize_test=False``: ``prepare_data`` leaves the test splits alone (a tune never reads them)."""
        super().__init__()
        self._featurize_test = featurize_test
        self.cfg = cfg
        self.inputs = inputs
        self._splits = splits
        self._seed = seed
        self._features: dict[str, Dataset | list[dict[str, Any]]] = {}

    # ------------------------------------------------------------------ splits

    @property
    def splits(self) -> RoutingSplits:
        """The splits, built on first use (reads the data files once per instance)."""
        if self._splits is None:
            self._splits = make_splits(self.cfg, _as_path(self.cfg.data_dir, "data.data_dir"))
        return self._splits

    @property
    def train_size(self) -> int:
        """Training prompts (before any DDP sharding); sets step counts for schedules."""
        return len(self.splits.train)

    @property
    def val_size(self) -> int:
        return len(self.splits.val)

    @property
    def test_names(self) -> list[str]:
        """Benchmarks, in the order of :meth:`test_dataloader`'s list."""
        return self.splits.test_names

    @property
    def test_examples(self) -> dict[str, list[RoutingExample]]:
        """Test items per benchmark, in the same order as the items of each test dataloader."""
        return self.splits.test

    def _examples(self, split: str) -> list[RoutingExample]:
        if split == "train":
            return self.splits.train
        if split == "val":
            return self.splits.val
        return self.splits.test[split.removeprefix("test:")]

    def _split_names(self, stage: str | None) -> list[str]:
        tests = [f"test:{name}" for name in self.test_names]
        if stage == "fit":
            return ["train", "val"]
        if stage == "validate":
            return ["val"]
        if stage in ("test", "predict"):
            return tests
        return ["train", "val", *tests]

    # ------------------------------------------------------------------ featurising

    def prepare_data(self) -> None:
        """Featurise every split once (rank 0 under DDP) so the other ranks' ``setup`` only reads the cache."""
        for split in self._split_names(None if self._featurize_test else "fit"):
            self._featurized(split)

    def setup(self, stage: str | None = None) -> None:
        """Build the splits and featurise those the stage needs (from the cache when present)."""
        for split in self._split_names(stage):
            self._featurized(split)

    def cache_file(self, split: str, key: str | None = None) -> Path:
        """Where ``split``'s features are (or will be) cached (``split``: train, val or test:<benchmark>)."""
        if key is None:
            key = cache_key(self.inputs.fingerprint, self._examples(split), split)
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", split)
        return _as_path(self.cfg.cache_dir, "data.cache_dir") / "features" / f"{slug}-{key[:32]}.arrow"

    def _featurized(self, split: str) -> Dataset | list[dict[str, Any]]:
        if split not in self._features:
            self._features[split] = self._featurize(split)
        return self._features[split]

    def _featurize(self, split: str) -> Dataset | list[dict[str, Any]]:
        """Map ``inputs.featurize`` over the split, or load the cached result without calling it.

        Rows keep the example fields (``prompt_id``, ``scores``, …) next to the features, so ``collate``
        always has them; the format is plain Python so ``collate`` gets lists and builds the tensors.
        """
        examples = self._examples(split)
        if not examples:
            return []
        key = cache_key(self.inputs.fingerprint, examples, split)
        path = self.cache_file(split, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _featurising_progress(split, len(examples), cached=path.exists()):
            dataset = Dataset.from_list([example_row(ex) for ex in examples]).map(
                self.inputs.featurize,
                cache_file_name=str(path),
                load_from_cache_file=True,
                new_fingerprint=key,
                desc=f"Featurising {split} ({len(examples)} prompts)",
            )
        if len(dataset) != len(examples):
            raise LookaheadError(f"feature cache {path} holds {len(dataset)} rows, expected {len(examples)}")
        return dataset.with_format(None)

    # ------------------------------------------------------------------ dataloaders

    def _shuffle_seed(self) -> int:
        """The explicit seed, else Lightning's global seed, else torch's initial seed."""
        if self._seed is not None:
            return self._seed
        env = os.environ.get("PL_GLOBAL_SEED")
        return int(env) if env is not None else torch.initial_seed()

    def _collate(self, train: bool) -> Any:
        """The input builder's collate in the training layout or the routing layout."""
        return functools.partial(self.inputs.collate, train=True) if train else self.inputs.collate

    def features(self, split: str) -> Dataset | list[dict[str, Any]]:
        """The cached features of ``split`` (train, val or test:<benchmark>), in the split's item order."""
        return self._featurized(split)

    def _loader(self, split: str, *, train: bool) -> DataLoader:
        cfg = self.cfg
        if train and self._world_size() == 1:
            return self._resumable_loader(split)
        generator = None
        if train:
            generator = torch.Generator()
            generator.manual_seed(self._shuffle_seed())
        if train and cfg.length_grouped:
            raise LookaheadError("data.length_grouped=true supports one device for now; drop it for DDP runs")
        return DataLoader(
            self._featurized(split),  # type: ignore[arg-type]
            batch_size=cfg.batch_size if train else cfg.eval_batch_size,
            shuffle=train,
            generator=generator,
            drop_last=False,
            collate_fn=self._collate(train),
            num_workers=cfg.num_workers,
            persistent_workers=train and cfg.num_workers > 0,
        )

    def _world_size(self) -> int:
        trainer = getattr(self, "trainer", None)
        return 1 if trainer is None else trainer.world_size

    def _resumable_loader(self, split: str) -> ResumableLoader:
        """One device: an order that a mid-epoch checkpoint records and a resume continues batch for batch
        (under DDP, Lightning's ``DistributedSampler`` orders the epoch and a resume restarts it)."""
        cfg = self.cfg
        data = self._featurized(split)
        if cfg.length_grouped:
            lengths = [len(p) for p in data["prompt"]]  # characters: a tokenizer-free proxy for the prompt length
            plan = length_grouped_batches(lengths, cfg.batch_size)
        else:
            plan = shuffled_batches(len(data), cfg.batch_size)
        sampler = ResumableBatchSampler(plan, -(-len(data) // cfg.batch_size), self._shuffle_seed())
        return ResumableLoader(
            data,
            sampler,
            self._training_progress,
            collate_fn=self._collate(True),
            num_workers=cfg.num_workers,
            persistent_workers=cfg.num_workers > 0,
        )

    def _training_progress(self) -> tuple[int, int]:
        """The epoch being trained and how many of its batches the trainer has taken (what a checkpoint resumes)."""
        trainer = self.trainer
        if trainer is None:  # iterated outside a fit (a notebook, a test): the order starts at its beginning
            return 0, 0
        return trainer.current_epoch, trainer.fit_loop.epoch_loop.batch_progress.current.ready

    def train_dataloader(self) -> DataLoader:
        """Shuffled with a generator seeded from the global seed, so runs repeat epoch by epoch."""
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        """Validation batches also carry ``row`` (each prompt's position in the split), so per-benchmark validation
        metrics can rebuild the score matrix in split order, DDP padding and interleaving included."""
        cfg = self.cfg
        return DataLoader(
            _Positioned(self._featurized("val")),  # type: ignore[arg-type]
            batch_size=cfg.eval_batch_size,
            shuffle=False,
            collate_fn=functools.partial(_collate_with_rows, self.inputs.collate),
            num_workers=cfg.num_workers,
        )

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per benchmark, in :attr:`test_names` order (dataloader_idx = position)."""
        return [self._loader(f"test:{name}", train=False) for name in self.test_names]

    def predict_dataloader(self) -> list[DataLoader]:
        """The test loaders, for ``trainer.predict`` (score matrices without metrics)."""
        return self.test_dataloader()


@contextlib.contextmanager
def _featurising_progress(split: str, prompts: int, *, cached: bool) -> Iterator[None]:
    """``datasets``' bar on a terminal; otherwise (stdout a log file) no bar and a line before and after featurising.

    Training reports on stdout (``progress.py``), so its featurising lines go there too; a split read from
    the cache prints nothing.
    """
    from lightning_lookahead.progress import is_terminal

    if cached or is_terminal(sys.stdout):
        yield
        return
    import datasets

    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    print(f"[data] featurising {split} ({prompts} prompts)", flush=True)
    start = time.monotonic()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()
    print(f"[data] featurised {split} ({prompts} prompts) in {time.monotonic() - start:.1f} s", flush=True)


class _Positioned(torch.utils.data.Dataset):
    """A feature list whose items are ``(position, features)``."""

    def __init__(self, data: Dataset | list[dict[str, Any]]) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[int, dict[str, Any]]:
        return index, self.data[index]


def _collate_with_rows(collate: Any, items: list[tuple[int, dict[str, Any]]]) -> dict[str, torch.Tensor]:
    """The input builder's routing-layout collate plus ``row``."""
    batch = collate([features for _, features in items])
    batch["row"] = torch.tensor([index for index, _ in items], dtype=torch.long)
    return batch
