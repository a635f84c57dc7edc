"""The showcase's printed reading (its ``notes``) and docs/results.md's reading quote the 5-fold study: every number
they give is the committed table's (docs/results/kfold.md) or the paper's."""

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


def _arm(rows: dict[str, list[str]], label: str) -> list[str]:
    """The one row of the arm named ``label`` trained on whole folds (not its data-size variants)."""
    (row,) = [cells for name, cells in rows.items() if name.startswith(label) and "of the training prompts" not in name]
    return row


def _variant(rows: dict[str, list[str]], label: str, share: str) -> list[str]:
    """The row of ``label``'s data-size variant on ``share`` of the training prompts (marked † while partial)."""
    (row,) = [cells for name, cells in rows.items() if name.startswith(label) and f"{share} of the training" in name]
    return row


def _without_folds(cell: str) -> str:
    """A data-size cell's value and interval, without the folds it was scored on: ``27.9 [22.5, 33.3]``."""
    return cell.rsplit(" (", 1)[0]


def _pooled(label: str) -> list[str]:
    row = _arm(_rows(KFOLD.read_text(encoding="utf-8"), "#### Pooled over the folds"), label)
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


def _reading() -> str:
    text = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    return " ".join(text.split("### Reading the 5-fold study", 1)[1].split("\n## ", 1)[0].split())


MLM, NORM = "Lookahead-MLM (MiniLM-L6, tuned)", "Lookahead-MLM w/o response modeling"
COLUMNS = {"AlpacaEval": 2, "MT-Bench": 4, "MBPP": 8}


def test_the_results_reading_quotes_the_tables() -> None:
    reading = _reading()
    mlm = _pooled(MLM)
    assert f"pooled Avg µn {mlm[-2]} {mlm[-1]}" in reading
    for quoted, label in [("k-means", "k-means"), ("`domain` reference", "domain"), ("kNN", "kNN"), ("MLC", "MLC")]:
        assert f"{quoted} ({_pooled(label)[-2]})" in reading, label
    for comparison in ["MLM − kNN", "MLM − domain", "MLM − MLC", "MLM − w/o RM"]:
        row = _paired(comparison)
        assert f"{comparison} {row[2]} {row[3]}" in reading, comparison
    low, high = (float(x) for x in _paired("MLM − w/o RM")[3].strip("[]").split(","))
    assert f"The interval is ±{(high - low) / 2:.1f}" in reading
    paper = (ROOT.parent / "shared" / "PAPER.md").read_text(encoding="utf-8")
    ablation = re.search(r"Without response modeling.*?(−[\d.]+) \(MLM\)", paper)
    assert ablation and f"ablation: {ablation.group(1)} for MLM without it" in reading
    norm = _pooled(NORM)
    for bench, col in COLUMNS.items():
        assert f"{bench} {mlm[col].split(' / ')[1]} vs {norm[col].split(' / ')[1]}" in reading, bench


def test_the_results_reading_quotes_the_fold_spread() -> None:
    rows = _rows(KFOLD.read_text(encoding="utf-8"), "#### Per fold")
    mlm, domain = _arm(rows, MLM), _arm(rows, "domain")
    folds = [float(x) for x in mlm[1:6]]
    assert f"ranges from {min(folds):.1f} to {max(folds):.1f}" in _reading()
    below = [str(k) for k in range(5) if folds[k] < float(domain[1 + k])]
    assert f"below `domain` on folds {' and '.join(below)}" in _reading()


def test_the_results_reading_quotes_zooter_and_clm() -> None:
    reading = _reading()
    text = KFOLD.read_text(encoding="utf-8")
    zooter, mlc = _pooled("ZOOTER"), _pooled("MLC")
    assert f"falls to {zooter[-2]} (MLC {mlc[-2]})" in reading
    mu_n = {name: [row[col].split(" / ")[1] for col in (7, 8)] for name, row in (("zooter", zooter), ("mlc", mlc))}
    zh, zm = mu_n["zooter"]
    assert f"(HumanEval {zh} and MBPP {zm} against MLC's {' and '.join(mu_n['mlc'])})" in reading
    clm = _arm(_rows(text, "#### Pooled over the folds"), "Lookahead-CLM")
    assert clm[1] == "0†", "the reading says CLM ran on fold 0 only"
    assert f"Avg µn {clm[-2]} {clm[-1]} on fold 0's items" in reading
    folds = _rows(text, "#### Per fold")
    fold0 = {label: _arm(folds, label)[1] for label in (MLM, "MLC", "kNN", "domain")}
    assert (
        f"against tuned MLM {fold0[MLM]}, MLC {fold0['MLC']}, kNN {fold0['kNN']} and `domain` {fold0['domain']}"
        in reading
    )


def test_the_results_reading_quotes_the_data_size_trend() -> None:
    reading, text = _reading(), KFOLD.read_text(encoding="utf-8")
    sizes = _rows(text, "#### Data size")
    quarter, whole = sizes["¼"], sizes["all"]
    assert quarter[1].endswith("(0,1,2,3,4)") and whole[1].endswith("(0,1,2,3,4)"), "¼ and all are quoted as pooled"
    mlm_q, norm_q, mlm_a, norm_a = (_without_folds(c) for c in (quarter[1], quarter[2], whole[1], whole[2]))
    assert f"tuned MLM rises from {mlm_q} on ¼ of each fold's training prompts to {mlm_a.split(' [')[0]}" in reading
    assert f"w/o RM from {norm_q} to {norm_a.split(' [')[0]}" in reading
    effect_q, effect_a = (_without_folds(c) for c in (quarter[3], whole[3]))
    assert f"paired difference from {effect_q} at ¼ to {effect_a} at all" in reading
    half = sizes["½"]
    if half[1].endswith("(0,1,2,3,4)"):  # complete: quoted pooled, as ¼ and all are
        mlm_h, norm_h, effect_h = (_without_folds(c) for c in half[1:4])
        assert f"at ½ of each fold MLM {mlm_h} and w/o RM {norm_h}, paired {effect_h}" in reading
        return
    # partial: the ½ rows are quoted on the folds they hold so far, beside ¼ and all on the same folds
    folds = _rows(text, "#### Per fold")
    per_fold = {
        arm: [
            [float(x) if x != "–" else None for x in row[1:6]]
            for row in (_variant(folds, label, "25%"), _variant(folds, label, "50%"), _arm(folds, label))
        ]
        for arm, label in (("MLM", MLM), ("w/o RM", NORM))
    }
    done = [k for k in range(5) if all(per_fold[arm][1][k] is not None for arm in per_fold)]
    assert done, "no fold holds both ½ runs: the reading quotes none"
    names = f"fold {done[0]} only" if len(done) == 1 else f"folds {', '.join(map(str, done[:-1]))} and {done[-1]}"
    assert f"The ½ rows hold {names} so far" in reading
    means = {
        arm: " / ".join(f"{sum(size[k] for k in done) / len(done):.1f}" for size in by_size)
        for arm, by_size in per_fold.items()
    }
    assert f"MLM goes {means['MLM']} at ¼ / ½ / all and w/o RM {means['w/o RM']}." in reading
    assert f"the response-modeling effect at ½ is {_without_folds(half[3])} (paired, their items)" in reading
