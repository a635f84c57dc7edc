"""Several processes: Lightning's predict loop with DDP (gloo on CPU, NCCL on GPUs), one whole shard per step.

Rank 0 opens the parts folder, then calls ``Trainer.predict``; Lightning's subprocess launcher re-runs the same
``lookahead route ...`` command for ranks 1..N-1, which find ``LOOKAHEAD_BULK_JOB`` in their environment and, instead
of checking the log and the parts folder again, route the shards rank 0 listed there. The shard ids are the dataset;
for predict Lightning splits them with its *unrepeated* distributed sampler (rank r takes every N-th shard, no
padding duplicates), and a ``BasePredictionWriter`` writes each finished shard atomically from the rank that routed
it, so nothing is gathered and a killed run keeps every finished shard. A c10d ``TCPStore`` counts routed prompts
over all ranks for rank 0's progress (a bar, or lines without a terminal). Each process uses cores / N torch threads
(Lightning's default; set ``OMP_NUM_THREADS`` to choose).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import threading
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from torch.utils.data import DataLoader, Dataset

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.bulk.job import BulkJob, LoadRouting, local_rank, progress, rank_device, shard_text
from lightning_lookahead.inference.bulk.parts import Parts, parts_dir, read_manifest
from lightning_lookahead.inference.bulk.shard import Routing

#: Set by rank 0 for the ranks Lightning starts: the parts folder, the shards to route and the progress store.
JOB_ENV = "LOOKAHEAD_BULK_JOB"
_STORE_HOST = "127.0.0.1"
_PROGRESS_KEY = "prompts"


def is_worker() -> bool:
    """True in a process Lightning started for rank 1..N-1 of a bulk run."""
    return JOB_ENV in os.environ and local_rank() > 0


def encode_shards(shards: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` → ``"0-2,5,7-8"`` (an environment variable stays short for a big log)."""
    runs: list[list[int]] = []
    for s in shards:
        if runs and s == runs[-1][1] + 1:
            runs[-1][1] = s
        else:
            runs.append([s, s])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def decode_shards(text: str) -> list[int]:
    out: list[int] = []
    for part in filter(None, text.split(",")):
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


class _Shards(Dataset):
    """The dataset of a bulk run: the ids of the shards still to route."""

    def __init__(self, shards: list[int]) -> None:
        self.shards = shards

    def __len__(self) -> int:
        return len(self.shards)

    def __getitem__(self, i: int) -> int:
        return self.shards[i]


class _RouteShards(LightningModule):
    """A thin module around the rank's ``TrainedRouter``: a predict step routes one shard into its JSON lines."""

    def __init__(self, route) -> None:
        super().__init__()
        self.route = route

    def predict_step(self, batch: list[int], batch_idx: int) -> list[tuple[int, str]]:
        return [(int(shard), self.route(int(shard))) for shard in batch]


class _WriteShards(BasePredictionWriter):
    """Writes each finished shard from the rank that routed it; all ranks meet at the end so rank 0 can merge."""

    def __init__(self, parts: Parts) -> None:
        super().__init__(write_interval="batch")
        self.parts = parts

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        for shard, text in prediction:
            self.parts.write(shard, text)

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Lightning's own SIGTERM handler lets predict run on (and broadcasts from inside the handler, which can
        # leave the ranks hanging at the final barrier); a kill should stop a bulk run like Ctrl-C instead, keeping
        # the shards already written. Lightning puts the previous handler back when predict ends.
        signal.signal(signal.SIGTERM, signal.default_int_handler)

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        trainer.strategy.barrier("bulk-route-done")


def _quiet_lightning() -> None:
    """Lightning's per-rank banners and the one-worker-loader hint mean nothing for a route command."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")  # torch 2.13


def _predict(job: BulkJob, processes: int, routing: Routing, parts: Parts, shards: list[int], store: Any) -> Trainer:
    _quiet_lightning()
    log = parts.manifest.prompt_log()

    def count(n: int) -> None:
        store.add(_PROGRESS_KEY, n)

    module = _RouteShards(lambda shard: shard_text(routing, log, shard, count))
    trainer = Trainer(
        accelerator=job.accelerator,
        devices=processes,
        strategy="ddp",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[_WriteShards(parts)],
        default_root_dir=parts.folder,
    )
    loader = DataLoader(_Shards(shards), batch_size=1, collate_fn=list)
    trainer.predict(module, loader, return_predictions=False)
    return trainer


def _store(port: int, *, master: bool) -> Any:
    return torch.distributed.TCPStore(
        _STORE_HOST, port, None, master, timeout=timedelta(minutes=5), wait_for_workers=False
    )


def lead(job: BulkJob, processes: int, routing: Routing, parts: Parts, shards: list[int], remaining: int) -> None:
    """Rank 0: start ranks 1..processes-1 through ``Trainer.predict`` and show the progress of all of them."""
    master = _store(0, master=True)
    spec = {"parts": str(parts.folder), "processes": processes, "shards": encode_shards(shards), "port": master.port}
    os.environ[JOB_ENV] = json.dumps(spec)
    threads = os.environ.get("OMP_NUM_THREADS")
    stop = threading.Event()
    bar = progress(routing, remaining, len(shards))

    def follow() -> None:
        reader = _store(master.port, master=False)
        while not stop.wait(0.5):
            if done := int(reader.add(_PROGRESS_KEY, 0)) - bar.n:
                bar.update(done)

    watcher = threading.Thread(target=follow, name="bulk-route-progress", daemon=True)
    watcher.start()
    try:
        trainer = _predict(job, processes, routing, parts, shards, master)
    finally:
        stop.set()
        watcher.join()
        bar.update(int(master.add(_PROGRESS_KEY, 0)) - bar.n)
        bar.close()
        del os.environ[JOB_ENV]
        if threads is None:
            os.environ.pop("OMP_NUM_THREADS", None)  # Lightning set it for this run's processes only
    for proc in getattr(trainer.strategy.launcher, "procs", []):  # ranks 1..N-1 exit right after the last barrier
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)


def work(job: BulkJob, load: LoadRouting) -> int:
    """Rank 1..N-1: load the router once and route the shards Lightning's sampler gives this rank."""
    spec = json.loads(os.environ[JOB_ENV])
    folder = Path(spec["parts"])
    manifest = read_manifest(folder)
    if manifest is None or folder.resolve() != parts_dir(job.out).resolve():
        raise LookaheadError(f"rank {local_rank()}: {folder} is not the parts folder of {job.out}")
    routing = load(rank_device(job.accelerator, local_rank()))
    shards, store = decode_shards(spec["shards"]), _store(spec["port"], master=False)
    _predict(job, spec["processes"], routing, Parts(folder, manifest), shards, store)
    return 0
