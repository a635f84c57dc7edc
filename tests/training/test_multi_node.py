"""`lookahead train debug trainer.num_nodes=2` as two torchrun "machines" of one process each on 127.0.0.1 (gloo, CPU):
both ranks finish as one job and end with the same weights, which are the weights node 0 checkpointed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from recipe_testkit import debug_run

#: Runs `lookahead` (lightning_lookahead.cli.main) with one more callback through the recipe's own extension point
#: (run_experiment's extra_callbacks): each rank writes its weights' fingerprint when training ends, since only rank
#: 0 writes checkpoints.
LAUNCHED = textwrap.dedent(
    """
    import json, os, sys
    import lightning as L
    from lightning_lookahead import cli
    from lightning_lookahead.training import recipe
    sys.path.insert(0, os.environ["FINGERPRINT_DIR"])
    from fingerprint import state_hash

    class Fingerprint(L.Callback):
        def on_train_end(self, trainer, module):
            out = {"rank": trainer.global_rank, "world_size": trainer.world_size, "num_nodes": trainer.num_nodes,
                   "global_step": trainer.global_step, "weights": state_hash(module.state_dict())}
            path = os.path.join(os.environ["FINGERPRINT_DIR"], f"rank{trainer.global_rank}.json")
            with open(path, "w") as fh:
                json.dump(out, fh)

    run = recipe.run_experiment
    recipe.run_experiment = lambda cfg, extra=(), **kw: run(cfg, [*extra, Fingerprint()], **kw)
    sys.exit(cli.main())
    """
)
FINGERPRINT = textwrap.dedent(
    """
    import hashlib

    import torch

    def state_hash(state):
        digest = hashlib.sha256()
        for name in sorted(state):
            t = state[name].detach().cpu().contiguous()
            digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        return digest.hexdigest()
    """
)
TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _node(rank: int, port: int, tmp: Path, backbone: Path, data: Path) -> list[str]:
    """One machine's command: torchrun (its module form, this interpreter) around `lookahead train debug`."""
    node = tmp / f"node{rank}"  # each machine its own disk: run folder and feature cache
    overrides = [
        *debug_run(backbone, data, node),
        "trainer.num_nodes=2",
        "trainer.strategy=ddp",
        "data.max_train_prompts=16",  # 8 per rank: two optimiser steps of 2 × 4 prompts
        "data.global_batch_size=8",
        "logger.csv=false",
    ]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1"]
    torchrun += ["--node-rank", str(rank), "--master-addr", "127.0.0.1", "--master-port", str(port)]
    return [*torchrun, str(tmp / "launched.py"), "train", "debug", *overrides]


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_debug_experiment_on_two_nodes_ends_with_the_same_weights(tiny_backbone, real_data, tmp_path):
    (tmp_path / "launched.py").write_text(LAUNCHED)
    (tmp_path / "fingerprint.py").write_text(FINGERPRINT)
    env = {
        **os.environ,
        "FINGERPRINT_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
        "WANDB_MODE": "disabled",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }
    port = _free_port()
    logs = [open(tmp_path / f"node{rank}.log", "w") for rank in (0, 1)]  # noqa: SIM115 (closed below)
    procs = [
        subprocess.Popen(
            _node(rank, port, tmp_path, tiny_backbone, real_data),
            stdout=logs[rank],
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # killpg reaches torchrun's worker too
        )
        for rank in (0, 1)
    ]
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if any(p.poll() not in (None, 0) for p in procs):  # one machine failed: the other would wait forever
                time.sleep(5)
                break
            time.sleep(0.5)
    finally:
        _stop(procs)
        for log in logs:
            log.close()
    tails = "\n".join(
        f"--- node {rank} (exit {p.returncode}) ---\n{(tmp_path / f'node{rank}.log').read_text()[-3000:]}"
        for rank, p in enumerate(procs)
    )
    failed = f"a node failed (or ran past {TIMEOUT_S} s and was stopped):\n{tails}"
    assert [p.returncode for p in procs] == [0, 0], failed

    prints = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [(p["rank"], p["world_size"], p["num_nodes"]) for p in prints] == [(0, 2, 2), (1, 2, 2)]
    assert prints[0]["global_step"] == prints[1]["global_step"] == 2
    assert prints[0]["weights"] == prints[1]["weights"], "the two ranks ended with different weights"

    # what node 0 saved (rank 0 alone saves checkpoints) is what both ranks hold
    sys.path.insert(0, str(tmp_path))
    try:
        from fingerprint import state_hash
    finally:
        sys.path.remove(str(tmp_path))
    last = torch.load(tmp_path / "node0" / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == 2 and state_hash(last["state_dict"]) == prints[0]["weights"]
    results = json.loads((tmp_path / "node0" / "run" / "results.json").read_text())
    assert results["test"][0]["router"] == "debug"
