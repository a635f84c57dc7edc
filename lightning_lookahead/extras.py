"""The optional extras of the package and the one-line error a command gives when its extra is not installed.

The core install is the router runtime: it routes an ONNX inference bundle (numpy, onnxruntime, tokenizers), so a
serving replica installs ``[serve]`` without torch. Training and everything else on torch is the ``train`` extra;
serving, the ONNX exporter and response collection / scoring pull in their own stacks (setup.cfg
``[options.extras_require]``; ``all`` is every one of them). The commands that need one call
:func:`require_extra` first, so a missing package reads as what to install instead of an ``ImportError`` traceback
from deep inside. ``tests/test_packaging.py`` checks these names against setup.cfg.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from lightning_lookahead.errors import LookaheadError

DISTRIBUTION = "lightning-lookahead"

#: extra → the modules (import names) its commands import.
EXTRAS: dict[str, tuple[str, ...]] = {
    "train": ("torch", "lightning", "transformers", "omegaconf", "torchmetrics", "datasets", "optuna"),
    "serve": ("fastapi", "starlette", "pydantic", "anyio", "uvicorn", "httpx", "prometheus_client"),
    "onnx": ("onnx", "onnxscript"),
    "collect": ("openai", "math_verify"),
}


class MissingExtra(LookaheadError):
    """A command needs an optional extra that is not installed."""


def missing_module(modules: Sequence[str]) -> str | None:
    """The first of ``modules`` that is not installed, else None. Only looked up, not imported: the check costs
    nothing at start-up, and an installed package that fails to import shows its own error."""
    for name in modules:
        if importlib.util.find_spec(name) is None:
            return name
    return None


def require_extra(extra: str, what: str, modules: Sequence[str] | None = None) -> None:
    """Raise :class:`MissingExtra` naming ``pip install "lightning-lookahead[EXTRA]"`` unless ``what`` can run.

    ``modules``: the part of the extra ``what`` needs (default: all of it), e.g. only ``openai`` for a judge.
    """
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    missing = missing_module(EXTRAS[extra] if modules is None else modules)
    if missing is not None:
        raise MissingExtra(
            f'{what} needs the {extra} extra ({missing} is not installed): pip install "{DISTRIBUTION}[{extra}]"'
        )


#: Commands that run on the core install alone: routing, calibrating and serving a bundle, pushing a folder to the
#: Hub. Each checks the train extra itself where it goes on to a run directory (the torch path).
RUNTIME_COMMANDS = frozenset({"route", "calibrate", "serve", "push"})


def require_command_extras(command: str) -> None:
    """The ``train`` extra for every command outside :data:`RUNTIME_COMMANDS`, checked before it starts."""
    if command not in RUNTIME_COMMANDS:
        require_extra("train", f"lookahead {command}")
