"""Committed results carry no absolute path of the machine that produced them; the study writes portable configs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
#: Prefixes of machine-specific absolute paths (this checkout, temporary folders, home folders).
MACHINE_PATHS = ("/work/", "/tmp/", "/root/", "/home/")

sys.path.insert(0, str(ROOT / "benchmarks"))
import study_cpu  # noqa: E402


def _results_files() -> list[Path]:
    """Every file under docs/results/ that is or would be committed: tracked or untracked, not git-ignored (local
    leftovers such as a study's ignored trial folders are not); every file when this is not a git checkout."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", str(RESULTS)],
            capture_output=True,
            cwd=ROOT,
            check=True,
            timeout=60,
        ).stdout
        files = [ROOT / name for name in listed.decode().split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        files = [p for p in RESULTS.rglob("*") if p.is_file()]
    return [f for f in files if f.is_file()]


def test_no_committed_result_holds_an_absolute_path_of_this_machine() -> None:
    markers = {*MACHINE_PATHS, f"{ROOT}/"}
    home = os.path.expanduser("~")
    if home not in ("", "/"):
        markers.add(f"{home}/")
    found = []
    for path in _results_files():
        data = path.read_bytes()
        found += [f"{path.relative_to(ROOT)}: {m}" for m in sorted(markers) if m.encode() in data]
    assert not found, "absolute paths in committed results (make them repository-relative):\n" + "\n".join(found)


def test_the_results_folder_is_scanned() -> None:
    names = {p.name for p in _results_files()}
    assert {"config.yaml", "results.json", "scores.npz"} <= names


ROOT_PATH, HOME = Path("/srv/checkout"), Path("/users/ada")
CONFIG = """name: cpu_mlm_all
run_dir: /srv/checkout/runs/study/mlm-n3072-s42
model:
  kind: mlm
  backbone: /users/ada/.cache/lightning_lookahead/models/warm-minilm-07a5
data:
  candidates:
  - Yi-1.5-34B-Chat
  data_dir: {data_dir}
  cache_dir: /srv/checkout/.cache/lookahead
  dataset: null
logger:
  wandb:
    tags: []
  other: /opt/models/x
"""


@pytest.mark.parametrize("data_dir", ["/srv/checkout/data", "/mnt/shared/lookahead-data"])
def test_portable_config_rewrites_path_values_only(data_dir: str) -> None:
    text = CONFIG.format(data_dir=data_dir)
    got = study_cpu.portable_config(text, ROOT_PATH, HOME)
    expected = (
        CONFIG.format(data_dir="data")
        .replace("/srv/checkout/runs/study/", "runs/study/")
        .replace("/users/ada/.cache/", "~/.cache/")
        .replace("cache_dir: /srv/checkout/.cache/lookahead", "cache_dir: .cache/lookahead")
    )
    assert got == expected
    assert "other: /opt/models/x\n" in got  # a path of neither the checkout nor the home folder stays


def test_the_study_commits_a_portable_config(tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    (work / "r").mkdir(parents=True)
    config = f"run_dir: {study_cpu.ROOT}/runs/study/r\ndata:\n  data_dir: {study_cpu.ROOT}/data\n"
    (work / "r" / "config.yaml").write_text(config)
    (work / "r" / "results.json").write_text("{}\n")
    study_cpu.commit_files(study_cpu.Run("r", "cpu/mlm_all"), work, out)
    assert (out / "r" / "config.yaml").read_text() == "run_dir: runs/study/r\ndata:\n  data_dir: data\n"
    assert (out / "r" / "results.json").read_text() == "{}\n"
