"""The parts folder of a bulk run (``OUT.parts/``): a manifest, one finished file per shard, and the final merge.

Each shard's JSON lines are written atomically to ``NNNNN.jsonl`` as soon as they are done, so a killed run loses at
most the shards in flight. The manifest records what the parts were computed from (the input's size and sha256, the
router's files' sha256, the routing settings and the shard size); a rerun that differs in any of them would mix
two runs' decisions in one output, so it is refused with a one-line error instead. ``merge`` streams the shards
into ``OUT`` in input order through a temporary file and a rename, then removes the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lightning_lookahead.data.io import write_atomic
from lightning_lookahead.errors import DataError, LookaheadError
from lightning_lookahead.inference.bulk.source import PromptLog, ShardStart

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
_SHARD_FILE = re.compile(r"^(\d{5,})\.jsonl$")


def parts_dir(out: Path) -> Path:
    """Where a bulk run writing ``out`` keeps its finished shards."""
    return out.with_name(out.name + ".parts")


def shard_file(folder: Path, shard: int) -> Path:
    return folder / f"{shard:05d}.jsonl"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def files_sha256(path: Path) -> str:
    """One digest over a file, or over every file below a folder (relative names included, in sorted order)."""
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f.relative_to(path).as_posix().encode() + b"\0" + file_sha256(f).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Manifest:
    """What a parts folder's shards were computed from; two runs may share a folder only when these are equal."""

    input: dict[str, Any]
    router: dict[str, Any]
    settings: dict[str, Any]
    shard_size: int
    prompts: int
    json_lines: bool
    starts: list[list[int]]
    version: int = FORMAT_VERSION

    @classmethod
    def of(cls, log: PromptLog, router: Mapping[str, Any], settings: Mapping[str, Any]) -> Manifest:
        source = {"path": str(log.path.resolve()), "size": log.size, "sha256": log.sha256}
        starts = [[s.offset, s.line, s.skip] for s in log.starts]
        return cls(source, dict(router), dict(settings), log.shard_size, log.prompts, log.json_lines, starts)

    def prompt_log(self) -> PromptLog:
        """The checked input again, without rereading it (what processes other than rank 0 start from)."""
        starts = tuple(ShardStart(*s) for s in self.starts)
        return PromptLog(
            Path(self.input["path"]), self.input["size"], self.input["sha256"], self.json_lines,
            self.prompts, self.shard_size, starts,
        )  # fmt: skip

    def mismatch(self, other: Manifest) -> str | None:
        """What differs from ``other`` (the first difference, in words), or None when they may share parts."""
        if (self.input["size"], self.input["sha256"]) != (other.input["size"], other.input["sha256"]):
            return f"a different input file (sha256 {self.input['sha256'][:12]}… vs {other.input['sha256'][:12]}…)"
        if key := _first_difference(self.router, other.router):
            return f"a different router ({key} {self.router.get(key)!r} vs {other.router.get(key)!r})"
        if self.shard_size != other.shard_size:
            return f"a different --shard-size ({self.shard_size} vs {other.shard_size})"
        if key := _first_difference(self.settings, other.settings):
            return f"different routing settings ({key} {self.settings.get(key)!r} vs {other.settings.get(key)!r})"
        return None


def _first_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    return next((k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)), None)


def read_manifest(folder: Path) -> Manifest | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("version") != FORMAT_VERSION:
            raise DataError(path, f"manifest version {raw.get('version')!r}, expected {FORMAT_VERSION}")
        return Manifest(**raw)
    except (ValueError, TypeError, AttributeError) as exc:
        raise DataError(path, f"not a bulk-routing manifest ({exc}); remove {folder} or pass --restart") from None


class Parts:
    """A run's parts folder, opened against the run's manifest (created, resumed or refused)."""

    def __init__(self, folder: Path, manifest: Manifest) -> None:
        self.folder = folder
        self.manifest = manifest

    @classmethod
    def open(cls, out: Path, manifest: Manifest, *, restart: bool) -> Parts:
        """Resume ``out``'s parts folder if it was made for the same manifest, else refuse (or, with ``restart``,
        start it afresh)."""
        folder = parts_dir(out)
        if folder.exists() and not folder.is_dir():
            raise LookaheadError(f"{folder} is in the way (a file, not a folder); remove it")
        if restart and folder.exists():
            shutil.rmtree(folder)
        old = read_manifest(folder) if folder.is_dir() else None
        if old is not None:
            problem = old.mismatch(manifest)
            if problem is not None:
                raise LookaheadError(
                    f"{folder} holds shards of an earlier run with {problem}; remove {folder} or pass --restart"
                )
        elif folder.is_dir() and any(_SHARD_FILE.match(p.name) for p in folder.iterdir()):
            raise LookaheadError(f"{folder} holds shards but no {MANIFEST}; remove {folder} or pass --restart")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            write_atomic(folder / MANIFEST, json.dumps(asdict(manifest), indent=1) + "\n")
        return cls(folder, manifest)

    def done(self) -> set[int]:
        """The shards already written (by this run or an interrupted one)."""
        found = (_SHARD_FILE.match(p.name) for p in self.folder.iterdir())
        return {int(m.group(1)) for m in found if m and int(m.group(1)) < len(self.manifest.starts)}

    def write(self, shard: int, text: str) -> None:
        write_atomic(shard_file(self.folder, shard), text)

    def merge(self, out: Path) -> int:
        """Every shard into ``out`` in input order (atomically); the parts folder is removed. Returns the line count."""
        missing = sorted(set(range(len(self.manifest.starts))) - self.done())
        if missing:
            raise LookaheadError(f"{self.folder}: shards {missing[:5]} are missing; rerun the same command to finish")
        tmp = out.with_name(out.name + ".tmp")
        lines = 0
        with open(tmp, "wb") as dst:
            for shard in range(len(self.manifest.starts)):
                with open(shard_file(self.folder, shard), "rb") as src:
                    data = src.read()
                dst.write(data)
                lines += data.count(b"\n")
        if lines != self.manifest.prompts:
            tmp.unlink()
            raise LookaheadError(f"{self.folder}: the shards hold {lines} lines for {self.manifest.prompts} prompts")
        os.replace(tmp, out)
        shutil.rmtree(self.folder)
        return lines
