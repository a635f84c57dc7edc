"""The showcase's printed reading quotes the 5-fold study: every number in ``notes`` is the committed table's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lightning_lookahead.config.compose import compose

ROOT = Path(__file__).resolve().parents[2]
KFOLD = ROOT / "docs" / "results" / "kfold.md"
SHOWCASE = "cpu/tuned/mlm_quick"


def _rows(text: str, heading: str) -> dict[str, list[str]]:
    """The cells of the markdown table under ``heading``, keyed by the first cell."""
    block = text.split(heading, 1)[1].split("\n#### ", 1)[0]
    rows = {}
    for line in block.splitlines():
        if line.startswith("| ") and not line.startswith("| router ") and not line.startswith("| comparison "):
            cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


def _pooled(label: str) -> list[str]:
    rows = _rows(KFOLD.read_text(encoding="utf-8"), "#### Pooled over the folds")
    (row,) = [cells for name, cells in rows.items() if name.startswith(label)]
    assert row[1] == "0,1,2,3,4", f"{label} is not pooled over all 5 folds"
    return row


def _paired(comparison: str) -> list[str]:
    rows = _rows(KFOLD.read_text(encoding="utf-8"), "#### Paired differences")
    row = rows[comparison]
    assert row[1] == "0,1,2,3,4"
    return row


def _notes() -> str:
    notes = compose(SHOWCASE).notes
    assert notes, f"{SHOWCASE} has no notes"
    return " ".join(notes.split())


@pytest.mark.parametrize(
    ("quoted", "label"),
    [
        ("Lookahead-MLM Avg µn {avg} {ci}", "Lookahead-MLM (MiniLM-L6, tuned)"),
        ("k-means {avg}", "k-means"),
        ("domain reference {avg}", "domain"),
        ("kNN {avg}", "kNN"),
        ("MLC {avg}", "MLC"),
        ("without response modeling {avg}", "Lookahead-MLM w/o response modeling"),
    ],
)
def test_the_reading_quotes_the_pooled_avg_mu_n(quoted: str, label: str) -> None:
    row = _pooled(label)
    assert quoted.format(avg=row[-2], ci=row[-1]) in _notes()


@pytest.mark.parametrize("comparison", ["MLM − w/o RM", "MLM − kNN", "MLM − domain"])
def test_the_reading_quotes_the_paired_differences(comparison: str) -> None:
    row = _paired(comparison)
    assert f"{comparison} {row[2]} {row[3]}" in _notes()


def test_the_reading_quotes_the_papers_lookahead_mlm() -> None:
    paper = (ROOT.parent / "shared" / "PAPER.md").read_text(encoding="utf-8")
    avg = re.search(r"\| \*\*Lookahead-MLM\*\* \(ModernBERT-base\) \|.*\| \*\*([\d.]+)\*\* \|", paper)
    assert avg and f"GPU-scale Lookahead-MLM reaches {avg.group(1)}" in _notes()
