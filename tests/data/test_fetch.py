"""`data fetch`: verification, atomic writes, missing files, HTTP retries, and the packaged manifest."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lightning_lookahead.data.families import blocked_by
from lightning_lookahead.data.fetch import LEDGER, PARTIAL_DIR, GitHubSource, MirrorSource, fetch
from lightning_lookahead.data.manifest import ManifestEntry, load_manifest
from lightning_lookahead.errors import DataError


def _entry(path: str, payload: bytes, *, with_sha256: bool = True) -> ManifestEntry:
    blob = hashlib.sha1(f"blob {len(payload)}\0".encode() + payload).hexdigest()
    sha256 = hashlib.sha256(payload).hexdigest() if with_sha256 else None
    return ManifestEntry(path=path, size=len(payload) if with_sha256 else None, git_blob_sha1=blob, sha256=sha256)


@pytest.fixture
def mirror(tmp_path: Path) -> tuple[Path, list[ManifestEntry]]:
    """A two-file mirror in the compressed_data/ layout and its manifest."""
    root = tmp_path / "mirror"
    files = {
        "test/GSM8k/m.json.gz": gzip.compress(b'{"accuracy": 50.0}'),
        "train/SelfOSSInstructSC2_filtered2/eval_ids.json.gz": gzip.compress(b'["a", "b"]'),
    }
    entries = []
    for rel, payload in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(payload)
        entries.append(_entry(rel, payload))
    return root, entries


def _leftovers(data_dir: Path) -> list[str]:
    return sorted(
        str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if p.suffix == ".tmp" or PARTIAL_DIR in p.parts
    )


def test_fetch_verifies_decompresses_and_skips_on_second_run(mirror, tmp_path):
    root, entries = mirror
    data_dir = tmp_path / "data"
    report = fetch(data_dir, MirrorSource(root), manifest=entries, progress=False)
    assert sorted(report.fetched) == sorted(e.path for e in entries)
    assert (data_dir / "test/GSM8k/m.json").read_bytes() == b'{"accuracy": 50.0}'
    assert (data_dir / "train/SelfOSSInstructSC2_filtered2/eval_ids.json").read_text() == '["a", "b"]'
    assert (data_dir / LEDGER).exists() and _leftovers(data_dir) == []
    again = fetch(data_dir, MirrorSource(root), manifest=entries, progress=False)
    assert again.fetched == [] and sorted(again.up_to_date) == sorted(e.path for e in entries)


def test_fetch_refetches_a_deleted_file(mirror, tmp_path):
    root, entries = mirror
    data_dir = tmp_path / "data"
    fetch(data_dir, MirrorSource(root), manifest=entries, progress=False)
    (data_dir / "test/GSM8k/m.json").unlink()
    report = fetch(data_dir, MirrorSource(root), manifest=entries, progress=False)
    assert report.fetched == ["test/GSM8k/m.json.gz"]


def test_hash_mismatch_is_an_error_and_leaves_nothing(mirror, tmp_path):
    root, entries = mirror
    (root / entries[0].path).write_bytes(gzip.compress(b'{"accuracy": 99.0}'))  # same size class, other bytes
    data_dir = tmp_path / "data"
    with pytest.raises(DataError, match=r"test/GSM8k/m\.json\.gz: (size|sha256)"):
        fetch(data_dir, MirrorSource(root), manifest=entries, progress=False)
    assert not (data_dir / "test/GSM8k/m.json").exists()
    assert _leftovers(data_dir) == []


def test_git_blob_sha1_is_checked_when_sha256_is_unknown(mirror, tmp_path):
    root, entries = mirror
    good = entries[0]
    wrong = ManifestEntry(good.path, None, "0" * 40, None)
    with pytest.raises(DataError, match="git blob sha1"):
        fetch(tmp_path / "data", MirrorSource(root), manifest=[wrong], progress=False)


def test_truncated_gzip_with_matching_hashes_is_rejected(tmp_path):
    root = tmp_path / "mirror"
    payload = gzip.compress(b"x" * 10_000)[:-12]  # cut: the hashes below describe the cut file
    (root / "test/MBPP").mkdir(parents=True)
    (root / "test/MBPP/a.json.gz").write_bytes(payload)
    data_dir = tmp_path / "data"
    with pytest.raises(DataError, match=r"test/MBPP/a\.json\.gz: not a valid gzip file"):
        fetch(data_dir, MirrorSource(root), manifest=[_entry("test/MBPP/a.json.gz", payload)], progress=False)
    assert not (data_dir / "test/MBPP/a.json").exists()
    assert _leftovers(data_dir) == []


def test_files_absent_from_the_source_are_reported_with_what_they_block(mirror, tmp_path):
    root, entries = mirror
    absent = _entry("train/UltraFeedback/instructions.jsonl.gz", b"never written", with_sha256=False)
    report = fetch(tmp_path / "data", MirrorSource(root), manifest=[*entries, absent], progress=False)
    assert report.missing == [absent.path]
    text = report.summary()
    assert "train/UltraFeedback/instructions.jsonl.gz" in text
    assert "family 'chat' with data.protocol=paper" in text and "kfold" in text


def test_blocked_by_names_families_and_benchmarks():
    blocked = blocked_by(["train/OpenMathInstruct2_filtered2/responses/x.jsonl.gz", "test/MATH/y.json.gz"])
    assert any("family 'math' with data.protocol=paper" in b for b in blocked)
    assert any("'all' test benchmarks MATH" in b for b in blocked)
    assert blocked_by(["test/AlpacaEval/instructions.jsonl.gz"])[0].startswith("family 'chat' test benchmarks")


def test_missing_mirror_dir_is_a_clear_error(tmp_path):
    from lightning_lookahead.errors import LookaheadError

    with pytest.raises(LookaheadError, match=r"mirror directory .* does not exist"):
        MirrorSource(tmp_path / "nope")


class _FlakyHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory, failing the first request for each path with 503 to exercise retries."""

    seen: set[str] = set()

    def do_GET(self) -> None:
        if self.path not in self.seen:
            self.seen.add(self.path)
            self.send_error(503)
            return
        super().do_GET()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_mirror(mirror) -> Iterator[tuple[str, list[ManifestEntry]]]:
    """A real HTTP server on loopback serving the mirror under /<repo>/<commit>/compressed_data/."""
    root, entries = mirror
    served = root.parent / "served" / "owner" / "repo" / "c0ffee" / "compressed_data"
    served.parent.mkdir(parents=True)
    root.rename(served)
    _FlakyHandler.seen = set()

    def handler(*args, **kwargs):
        return _FlakyHandler(*args, directory=str(root.parent / "served"), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", entries
    finally:
        server.shutdown()
        server.server_close()


def test_http_source_retries_and_reports_404_as_missing(http_mirror, tmp_path):
    base_url, entries = http_mirror
    absent = _entry("test/MT-Bench/question.jsonl.gz", b"absent", with_sha256=False)
    source = GitHubSource(repo="owner/repo", commit="c0ffee", base_url=base_url, timeout=5, retries=3, backoff=0)
    source.session.mount("http://", source.session.get_adapter("https://"))
    report = fetch(tmp_path / "data", source, manifest=[*entries, absent], progress=False)
    assert sorted(report.fetched) == sorted(e.path for e in entries)
    assert report.missing == [absent.path]
    assert (tmp_path / "data/test/GSM8k/m.json").read_bytes() == b'{"accuracy": 50.0}'


def test_packaged_manifest_matches_the_shared_copy(real_data):
    entries = load_manifest()
    assert len(entries) == 145
    assert sum(e.sha256 is not None for e in entries) == 124
    shared = load_manifest(real_data / "MANIFEST.tsv")
    assert entries == shared


def test_real_mirror_files_verify(real_data, tmp_path):
    report = fetch(tmp_path / "data", MirrorSource(real_data), only=["test/MT-Bench", "test/HumanEval"], progress=False)
    assert len(report.fetched) == 13 + 1 + 12 and report.missing == []
