"""A router name → a local folder: a path as it is, else a Hugging Face Hub id through ``snapshot_download``
(which honours ``HF_HUB_OFFLINE``, ``HF_HUB_CACHE`` and the local cache)."""

from __future__ import annotations

from pathlib import Path

from lightning_lookahead.errors import LookaheadError


def is_hub_id(name_or_path: str | Path) -> bool:
    """True for ``org/name`` that is no local path: what :func:`resolve_router_path` looks up on the Hub."""
    name = str(name_or_path)
    return not Path(name).expanduser().exists() and name.count("/") == 1 and not name.startswith((".", "/", "~"))


def resolve_router_path(name_or_path: str | Path) -> Path:
    """A local folder or file as it is; ``org/name`` (no such local path) downloaded, or found in the Hub cache."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    name = str(name_or_path)
    if not is_hub_id(name):
        raise LookaheadError(f"router path {path} does not exist (and {name!r} is not a Hub id like org/name)")
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:
        raise LookaheadError(f"{name!r} is not a local path; loading from the Hub needs huggingface_hub") from None
    try:
        return Path(snapshot_download(repo_id=name))
    except LocalEntryNotFoundError:
        raise LookaheadError(
            f"router path {path} does not exist, and Hub id {name!r} is not in the local Hub cache while the Hub "
            "cannot be reached (HF_HUB_OFFLINE?)"
        ) from None
    except (HfHubHTTPError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LookaheadError(f"cannot download router {name!r} from the Hub ({first[:200]})") from None
