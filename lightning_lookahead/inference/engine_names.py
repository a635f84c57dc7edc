"""The routing forward paths a trained router can run on (``--engine``); no torch here, so the CLI parser is light.

Each engine computes the same routing logits as ``fp32`` up to its numerics; docs/benchmarks.md has the measured
speed and decision agreement of each against ``fp32`` on the quickstart router (``torch.compile`` and torch's
dynamic int8 were measured too and dropped: neither paid on this CPU).
"""

from __future__ import annotations

from lightning_lookahead.errors import LookaheadError

#: Every engine ``TrainedRouter.from_checkpoint(engine=...)``, ``route``, ``serve`` and ``calibrate`` accept.
#: ``auto`` is ``bf16`` where the hardware computes bf16 natively (CUDA, or a CPU with AVX-512 BF16 or AMX), else
#: ``fp32``.
ENGINES: tuple[str, ...] = ("auto", "fp32", "bf16", "onnx", "onnx-int8")
#: The engine of ``route``, ``serve`` and ``calibrate`` unless ``--engine`` names one: measured at 99.88% decision
#: agreement with fp32 and 1.9–2.4× its batch-64 throughput (docs/benchmarks.md).
DEFAULT_ENGINE = "auto"
#: The engine of the Python API and of ``evaluate --checkpoint``: the training recipe's own numerics, so a trained
#: router's evaluation reproduces the scores its run recorded.
EXACT_ENGINE = "fp32"


def unsupported(engine: str, kind: str, reason: str, *, also_unsupported: tuple[str, ...] = ()) -> LookaheadError:
    """One line: this engine cannot run this predictor kind, why, and which engines can."""
    others = [e for e in ENGINES if e not in (engine, "auto") and e not in also_unsupported]
    return LookaheadError(
        f"engine {engine!r} cannot run a {kind!r} router: {reason}; engines that can: {', '.join(others)}"
    )
