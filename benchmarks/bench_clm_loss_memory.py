"""Peak memory of the CLM response loss (forward + backward), one-shot vs in chunks, at SmolLM2's vocabulary.

    python benchmarks/bench_clm_loss_memory.py --positions 8192 --chunks 0,2048

Each setting runs in its own process: the peak resident set (VmHWM) minus the resident set just before the loss,
so only what the loss and its backward allocate counts. ``0`` is the one-shot loss (one chunk of all positions).
Prints one JSON line per setting.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def _vm(field: str) -> float:
    """A /proc/self/status field in MiB (VmRSS, VmHWM)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(positions: int, chunk: int, hidden: int, vocab: int) -> dict[str, float]:
    """Loss + backward of ``positions`` states through a tied (vocab, hidden) head; peak MiB above the start."""
    import torch

    from lightning_lookahead.models.clm.chunked_loss import chunked_cross_entropy

    torch.manual_seed(0)
    head = torch.nn.Linear(hidden, vocab, bias=False)
    states = torch.randn(positions, hidden, requires_grad=True)
    targets = torch.randint(0, vocab, (positions,))
    before = _vm("VmRSS")
    start = time.perf_counter()
    loss = chunked_cross_entropy(head, states, targets, chunk or positions)
    loss.backward()
    return {
        "positions": positions,
        "chunk": chunk or positions,
        "vocab": vocab,
        "loss": round(float(loss), 6),
        "seconds": round(time.perf_counter() - start, 2),
        "peak_above_start_mib": round(_vm("VmHWM") - before),
        "one_copy_of_fp32_logits_mib": round(positions * vocab * 4 / 2**20),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=8192)
    parser.add_argument("--chunks", default="0,2048", help="comma-separated; 0 = one-shot")
    parser.add_argument("--hidden", type=int, default=576)
    parser.add_argument("--vocab", type=int, default=49152)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.positions, args.child, args.hidden, args.vocab)))
        return
    for chunk in (int(c) for c in args.chunks.split(",")):
        cmd = [sys.executable, __file__, "--positions", str(args.positions), "--hidden", str(args.hidden)]
        cmd += ["--vocab", str(args.vocab), "--child", str(chunk)]
        print(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
