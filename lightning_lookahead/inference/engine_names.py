"""The routing forward paths a trained router can run on (``--engine``); no torch here, so the CLI parser is light.

Each engine computes the same routing logits as ``fp32`` up to its numerics; docs/benchmarks.md has the measured
speed and decision agreement of each against ``fp32`` on the quickstart router.
"""

from __future__ import annotations

#: Every engine ``TrainedRouter.from_checkpoint(engine=...)``, ``route --engine`` and ``serve --engine`` accept.
ENGINES: tuple[str, ...] = ("fp32", "bf16", "int8", "compile", "onnx", "onnx-int8")
#: The engine used when none is named.
DEFAULT_ENGINE = "fp32"
