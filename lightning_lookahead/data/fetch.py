"""`lookahead data fetch`: bring the authors' benchmark files into a data directory, verified and decompressed.

Every file is staged under ``<data_dir>/.partial/``, checked against the packaged manifest, decompressed to a
temporary name and only then renamed into place, so an interrupted or failed fetch never leaves a file that
looks complete. A ledger (``.fetched.json``) records what was verified, so a second fetch only does new work.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from lightning_lookahead.data.families import blocked_by
from lightning_lookahead.data.manifest import UPSTREAM_COMMIT, UPSTREAM_REPO, ManifestEntry, load_manifest, verify_file
from lightning_lookahead.errors import DataError, LookaheadError
from lightning_lookahead.progress import counter

LEDGER = ".fetched.json"
PARTIAL_DIR = ".partial"
DEFAULT_DATA_DIR = "data"


def default_data_dir() -> Path:
    """``$LOOKAHEAD_DATA_DIR`` or ``./data``."""
    return Path(os.environ.get("LOOKAHEAD_DATA_DIR") or DEFAULT_DATA_DIR)


class MissingFromSource(Exception):
    """The source does not have this file (distinct from a corrupt or failed transfer)."""


class Source(Protocol):
    """Where compressed files come from: ``fetch(relative_path, dest, progress)`` writes the bytes to ``dest``."""

    description: str

    def fetch(self, path: str, dest: Path, progress: Callable[[int], None]) -> None: ...


@dataclass
class MirrorSource:
    """A local directory with the layout of ``compressed_data/`` (e.g. ``../shared/lookahead-data``)."""

    root: Path
    description: str = ""

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise LookaheadError(
                f"mirror directory {self.root} does not exist (check --mirror / $LOOKAHEAD_DATA_MIRROR)"
            )
        self.description = f"mirror {self.root}"

    def fetch(self, path: str, dest: Path, progress: Callable[[int], None]) -> None:
        src = self.root / path
        if not src.is_file():
            raise MissingFromSource(path)
        with open(src, "rb") as fin, open(dest, "wb") as fout:
            while chunk := fin.read(1 << 20):
                fout.write(chunk)
                progress(len(chunk))


@dataclass
class GitHubSource:
    """Raw files of the pinned upstream commit, with timeouts, retries and resumed partial downloads."""

    repo: str = UPSTREAM_REPO
    commit: str = UPSTREAM_COMMIT
    timeout: float = 30.0
    retries: int = 5
    base_url: str = "https://raw.githubusercontent.com"
    backoff: float = 1.0
    description: str = ""
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        retry = Retry(
            total=self.retries,
            backoff_factor=self.backoff,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=("GET",),
        )
        self.session.mount("https://", HTTPAdapter(max_retries=retry))
        self.description = f"github.com/{self.repo}@{self.commit[:12]}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{self.repo}/{self.commit}/compressed_data/{path}"

    def fetch(self, path: str, dest: Path, progress: Callable[[int], None]) -> None:
        have = dest.stat().st_size if dest.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with self.session.get(self.url(path), stream=True, timeout=self.timeout, headers=headers) as resp:
                if resp.status_code == 404:
                    raise MissingFromSource(path)
                if resp.status_code == 416:  # already complete
                    return
                resp.raise_for_status()
                mode = "ab" if resp.status_code == 206 else "wb"
                if mode == "ab":
                    progress(have)
                with open(dest, mode) as fout:
                    for chunk in resp.iter_content(1 << 16):
                        fout.write(chunk)
                        progress(len(chunk))
        except requests.RequestException as exc:
            raise LookaheadError(f"download of {path} failed after {self.retries} retries: {exc}") from None


@dataclass
class FetchReport:
    """What a fetch did: files newly written, files already present, and files the source lacks."""

    fetched: list[str] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"{len(self.fetched)} fetched, {len(self.up_to_date)} already up to date, "
            f"{len(self.missing)} missing from the source"
        ]
        if self.missing:
            lines.append("missing files:")
            lines += [f"  {p}" for p in self.missing]
            lines.append("these block:")
            lines += [f"  {b}" for b in blocked_by(self.missing)]
        return "\n".join(lines)


def _read_ledger(data_dir: Path) -> dict[str, str]:
    path = data_dir / LEDGER
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}  # a damaged ledger only costs re-verification


def _write_ledger(data_dir: Path, ledger: dict[str, str]) -> None:
    tmp = data_dir / (LEDGER + ".tmp")
    tmp.write_text(json.dumps(ledger, indent=0, sort_keys=True))
    os.replace(tmp, data_dir / LEDGER)


def _decompress(src: Path, dest: Path, name: str) -> None:
    """Decompress fully to ``dest`` (a temporary name); a truncated or non-gzip file is an error."""
    try:
        with gzip.open(src, "rb") as fin, open(dest, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    except (OSError, EOFError, zlib.error) as exc:
        dest.unlink(missing_ok=True)
        raise DataError(name, f"not a valid gzip file ({exc})") from None


def _selected(entries: list[ManifestEntry], only: list[str] | None) -> Iterator[ManifestEntry]:
    for entry in entries:
        if not only or any(entry.path.startswith(prefix) for prefix in only):
            yield entry


def fetch(
    data_dir: Path,
    source: Source,
    *,
    only: list[str] | None = None,
    manifest: list[ManifestEntry] | None = None,
    progress: bool = True,
) -> FetchReport:
    """Fetch, verify and decompress every manifest file (or those under the ``only`` prefixes)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = data_dir / PARTIAL_DIR
    partial.mkdir(exist_ok=True)
    ledger = _read_ledger(data_dir)
    report = FetchReport()
    entries = list(_selected(manifest or load_manifest(), only))
    todo = []
    for entry in entries:
        if ledger.get(entry.target) == entry.git_blob_sha1 and (data_dir / entry.target).is_file():
            report.up_to_date.append(entry.path)
        else:
            todo.append(entry)
    total = sum(e.size or 0 for e in todo)
    try:
        with counter(  # a bar on a terminal, else a line every $LOOKAHEAD_PROGRESS_INTERVAL seconds (stderr)
            total,
            desc=f"fetch from {source.description}",
            label="fetch",
            note=f"{len(todo)} files from {source.description}",
            unit="B",
            unit_scale=True,
            scale=1e6,
            line_unit="MB",
            disable=not progress or not todo,
        ) as bar:
            for entry in todo:
                staged = partial / entry.path.replace("/", "__")
                try:
                    source.fetch(entry.path, staged, bar.update)
                except MissingFromSource:
                    staged.unlink(missing_ok=True)
                    report.missing.append(entry.path)
                    continue
                try:
                    verify_file(staged, entry)
                except DataError:
                    staged.unlink(missing_ok=True)
                    raise
                target = data_dir / entry.target
                target.parent.mkdir(parents=True, exist_ok=True)
                unpacked = target.with_name(target.name + ".tmp")
                try:
                    _decompress(staged, unpacked, entry.path)
                    os.replace(unpacked, target)
                finally:
                    unpacked.unlink(missing_ok=True)
                    staged.unlink(missing_ok=True)
                ledger[entry.target] = entry.git_blob_sha1
                _write_ledger(data_dir, ledger)
                report.fetched.append(entry.path)
    finally:
        with contextlib.suppress(OSError):
            partial.rmdir()  # kept only while it holds a partial download to resume
    return report
