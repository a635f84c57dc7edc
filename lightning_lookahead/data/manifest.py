"""The pinned list of data files, shipped with the package, that every fetched file is checked against."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lightning_lookahead.errors import DataError

#: The authors' repository and the commit whose ``compressed_data/`` the manifest describes.
UPSTREAM_REPO = "huangcb01/lookahead-routing"
UPSTREAM_COMMIT = "62ecd6e73a073329a6145856e383b3f5cbbf726d"


@dataclass(frozen=True)
class ManifestEntry:
    """One gzipped file of ``compressed_data/``: its path, and what its bytes must hash to.

    ``size`` and ``sha256`` are unknown (None) for files the manifest's authors could not see;
    the git blob sha1 is known for all of them and is checked always.
    """

    path: str
    size: int | None
    git_blob_sha1: str
    sha256: str | None

    @property
    def target(self) -> str:
        """Relative path of the decompressed file in the data dir."""
        return self.path[: -len(".gz")] if self.path.endswith(".gz") else self.path


def load_manifest(path: Path | None = None) -> list[ManifestEntry]:
    """Parse ``manifest.tsv`` (the packaged one by default)."""
    source = path or Path(str(resources.files("lightning_lookahead.data") / "manifest.tsv"))
    entries = []
    with open(source, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        expected = {"path", "size", "git_blob_sha1", "sha256"}
        if reader.fieldnames is None or not expected <= set(reader.fieldnames):
            raise DataError(source, f"manifest header should contain {sorted(expected)}, got {reader.fieldnames}")
        for lineno, row in enumerate(reader, start=2):
            size = row["size"]
            sha256 = row["sha256"]
            if len(row["git_blob_sha1"] or "") != 40:
                raise DataError(source, "git_blob_sha1 should be 40 hex digits", line=lineno)
            entries.append(
                ManifestEntry(
                    path=row["path"],
                    size=int(size) if size and size.isdigit() else None,
                    git_blob_sha1=row["git_blob_sha1"],
                    sha256=sha256 if sha256 and sha256 != "-" else None,
                )
            )
    return entries


def verify_file(path: Path, entry: ManifestEntry) -> None:
    """Check size, sha256 and git blob sha1 of a downloaded file; a DataError names the first mismatch."""
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        raise DataError(entry.path, f"size {size} B, manifest says {entry.size} B (truncated or corrupt download)")
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha256.update(chunk)
            blob.update(chunk)
    if entry.sha256 is not None and sha256.hexdigest() != entry.sha256:
        raise DataError(
            entry.path, f"sha256 {sha256.hexdigest()[:12]}… does not match the manifest's {entry.sha256[:12]}…"
        )
    if blob.hexdigest() != entry.git_blob_sha1:
        raise DataError(
            entry.path,
            f"git blob sha1 {blob.hexdigest()[:12]}… does not match the manifest's {entry.git_blob_sha1[:12]}…",
        )
