"""One loader for every command that routes: a bundle folder (or a Hub id of one) gives the torch-free
:class:`~lightning_lookahead.bundle.router.BundleRouter`, anything else the torch
:class:`~lightning_lookahead.inference.router.TrainedRouter`.

``route`` (single and bulk), ``calibrate`` and ``serve``'s workers call it, so a bundle is accepted, and a
torch-only option on one refused, the same way in every command (``TrainedRouter.from_pretrained`` keeps its own
dispatch: its torch default engine is fp32, not the commands' ``auto``). Light at import: torch loads
only on the torch path, after the ``train`` extra is checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.extras import require_extra
from lightning_lookahead.inference.engine_names import DEFAULT_ENGINE

if TYPE_CHECKING:
    from lightning_lookahead.bundle.router import BundleRouter
    from lightning_lookahead.inference.router import TrainedRouter


def is_bundle_path(name_or_path: str | Path) -> bool:
    """True for a bundle folder, or a Hub id that resolves to one (a missing path is left to the loader's error)."""
    from lightning_lookahead.bundle.hub import resolve_router_path
    from lightning_lookahead.bundle.layout import is_bundle

    try:
        return is_bundle(resolve_router_path(name_or_path))
    except LookaheadError:
        return False


def load_router(
    name_or_path: str | Path,
    *,
    device: str = "cpu",
    engine: str = DEFAULT_ENGINE,
    what: str = "routing",
    **torch_options: Any,
) -> TrainedRouter | BundleRouter:
    """The router at ``name_or_path`` (folder, run directory, ``.ckpt`` or Hub id).

    A bundle runs its ``model.onnx`` on the CPU, so a ``device`` or ``engine`` other than the defaults is refused in
    one line; the torch path needs the ``train`` extra (``what`` names the command in that error).
    """
    from lightning_lookahead.bundle.hub import resolve_router_path
    from lightning_lookahead.bundle.layout import is_bundle

    path = resolve_router_path(name_or_path)
    if is_bundle(path):
        if engine != DEFAULT_ENGINE or device != "cpu":
            raise LookaheadError(f"{path} is an ONNX bundle: it runs its model.onnx on the CPU; drop --engine/--device")
        from lightning_lookahead.bundle.router import BundleRouter

        return BundleRouter(path)
    require_extra("train", f"{what} on a run directory or checkpoint (an ONNX bundle routes without it)")
    from lightning_lookahead.inference.router import TrainedRouter

    return TrainedRouter.from_checkpoint(path, device=device, engine=engine, **torch_options)
