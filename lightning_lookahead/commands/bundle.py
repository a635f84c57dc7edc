"""`lookahead export --format onnx` (write an inference bundle) and `lookahead push` (upload a router folder)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lightning_lookahead.errors import LookaheadError

BUNDLE_DIR = "bundle"


def _peek_kind(path: Path) -> str | None:
    """The predictor kind a run, export or bundle holds, read from its JSON/YAML without loading anything."""
    for meta in (path / "router.json", path / "export" / "router.json"):
        if meta.is_file():
            try:
                return json.loads(meta.read_text(encoding="utf-8")).get("kind")
            except (ValueError, UnicodeDecodeError, AttributeError):
                return None
    from lightning_lookahead.bundle.card import read_config

    return (read_config(path if path.is_dir() else None).get("model") or {}).get("kind")


def _read_prompts(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    from lightning_lookahead.inference.prompts import parse_prompts

    try:
        with open(path, encoding="utf-8") as fh:
            prompts = parse_prompts(fh, str(path))
    except (FileNotFoundError, IsADirectoryError):
        raise LookaheadError(f"prompt file {path} not found") from None
    if not prompts:
        raise LookaheadError(f"prompt file {path} holds no prompts")
    return prompts


def card_for(router: Any, bundle: dict[str, Any] | None = None) -> str:
    """The model card of a loaded torch router (its run's config, results and calibrations)."""
    from lightning_lookahead.bundle.card import model_card, read_json
    from lightning_lookahead.bundle.layout import CALIBRATIONS_FILE

    home = router.home
    return model_card(
        name=router.name,
        kind=router.kind,
        candidates=router.candidates,
        backbone=getattr(router.predictor.config, "backbone", None),
        run_dir=router.run_dir,
        calibrations=read_json(home / CALIBRATIONS_FILE) if home is not None else None,
        bundle=bundle,
    )


def export_bundle(args: argparse.Namespace) -> int:
    """``lookahead export RUN --format onnx [--quantize int8] [--out DIR]``."""
    from lightning_lookahead.inference.bundle_export import CHECK_PROMPTS, check_bundle_kind

    path = Path(args.path)
    if not path.exists():
        raise LookaheadError(f"router path {path} does not exist")
    kind = _peek_kind(path)
    if kind is not None:
        check_bundle_kind(str(kind))  # before anything loads or is written
    out = args.out or (path / BUNDLE_DIR if path.is_dir() else None)
    if out is None:
        raise LookaheadError(f"{path} is not a run directory; say where to write the bundle with --out DIR")
    prompts = _read_prompts(args.check_prompts) or list(CHECK_PROMPTS)

    from lightning_lookahead.inference.bundle_export import write_bundle
    from lightning_lookahead.inference.router import TrainedRouter

    router = TrainedRouter.from_checkpoint(path, checkpoint=args.checkpoint)
    check_bundle_kind(router.kind)
    quantize = args.quantize == "int8"
    precision = "int8" if quantize else "fp32"

    def card(check: Any) -> str:
        return card_for(router, {"precision": precision, "check": check.to_json()})

    check = write_bundle(router, Path(out), quantize=quantize, check_prompts=prompts, card=card, source=str(path))
    print(
        f"wrote the {precision} bundle of the {router.kind} router {router.name!r} to {out}: "
        f"{check.agreement:.1f}% decisions agree with the torch fp32 router on {check.prompts} prompts, "
        f"max score difference {check.max_score_diff:.2e}"
    )
    return 0


def write_export_card(router: Any, export_dir: Path) -> None:
    """The model card beside a torch ``export/`` (so it too can be pushed as is)."""
    from lightning_lookahead.bundle.layout import CARD_FILE
    from lightning_lookahead.data.io import write_atomic

    write_atomic(export_dir / CARD_FILE, card_for(router))


def push_folder(path: Path) -> Path:
    """The folder ``lookahead push`` uploads: a bundle or export as given, else a run's bundle/, else its export/."""
    from lightning_lookahead.bundle.layout import CARD_FILE, META_FILE

    if not path.is_dir():
        raise LookaheadError(f"{path} is not a folder (give a run directory, its bundle/ or its export/)")
    for folder in (path, path / BUNDLE_DIR, path / "export"):
        if (folder / META_FILE).is_file():
            if not (folder / CARD_FILE).is_file():
                raise LookaheadError(f"{folder} has no {CARD_FILE}; re-run `lookahead export` to write the model card")
            return folder
    raise LookaheadError(f"{path} holds no router folder (no router.json in it, its bundle/ or its export/)")


def cmd_push(args: argparse.Namespace) -> int:
    folder = push_folder(Path(args.path))
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise LookaheadError("pushing needs huggingface_hub: pip install huggingface_hub") from None
    api = HfApi()
    api.create_repo(args.repo, private=args.private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=args.repo, commit_message=f"Upload router from {folder.name}")
    print(f"pushed {folder} to https://huggingface.co/{args.repo}", file=sys.stderr)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    push = subparsers.add_parser(
        "push", help="upload a router folder (bundle or export, with its model card) to the Hub"
    )
    push.add_argument("path", help="run directory, its bundle/ or its export/")
    push.add_argument("--repo", required=True, help="Hub repository id, org/name")
    push.add_argument("--private", action="store_true", help="create the repository private")
    push.set_defaults(func=cmd_push)
