"""Your own dataset file: every row checked with a located one-line error, drops counted, three input formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from own_dataset_kit import CANDIDATES, rows, write_jsonl

from lightning_lookahead.cli import main
from lightning_lookahead.config.schema import DataConfig
from lightning_lookahead.data.dataset_file import read_dataset
from lightning_lookahead.data.dataset_splits import dataset_splits, load_dataset_file
from lightning_lookahead.data.splits import make_splits


def test_reads_any_candidates_and_counts_what_it_drops(tmp_path: Path) -> None:
    items = rows(4)
    items[0]["scores"] = dict.fromkeys(CANDIDATES, 5.0)  # a tie: no routing signal
    items[1]["scores"]["coder-7b"] = None  # an unscored verdict
    del items[2]["responses"]["local-llama"]  # a failed collection
    data = read_dataset(write_jsonl(tmp_path / "d.jsonl", items))
    assert data.candidates == tuple(CANDIDATES) and data.rows == 12 and len(data.examples) == 9
    assert sum(data.dropped.values()) == 3
    first = data.examples[0]
    assert first.prompt == "write a function to sort a list 3" and first.benchmark == "code"
    assert data.examples[1].prompt == "solve the equation for x 0"  # the user turn of a message list
    assert read_dataset(tmp_path / "d.jsonl", ["coder-7b", "frontier-api"]).candidates == ("coder-7b", "frontier-api")


def test_data_check_prints_the_pool_splits_and_drops(tmp_path: Path, capsys) -> None:
    items = rows(4)
    items[0]["scores"] = dict.fromkeys(CANDIDATES, 1.0)
    for item in items[:3]:
        item["split"] = "test"
    path = write_jsonl(tmp_path / "d.jsonl", items)
    assert main(["data", "check", "--dataset", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"12 rows, 3 candidates: {', '.join(CANDIDATES)}" in out
    assert "usable rows by split: test 2, unassigned 9" in out
    assert "dropped: 1 where every candidate scores the same" in out


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.pop("prompt"), "d.jsonl:3 [prompt]: field 'prompt' must be a string or a non-empty list"),
        (lambda r: r.update(prompt=""), "d.jsonl:3 [prompt]: field 'prompt' is empty"),
        (lambda r: r.update(split="dev"), "d.jsonl:3 [split]: split 'dev' is not one of train, val, test"),
        (lambda r: r.update(id="code-0"), "d.jsonl:3 [id]: duplicate id 'code-0' (first on line 1)"),
        (lambda r: r["scores"].update({"coder-7b": "high"}), "d.jsonl:3 [scores.coder-7b]: expected a numeric score"),
        (lambda r: r["responses"].update({"coder-7b": 3}), "d.jsonl:3 [responses.coder-7b]: response of 'coder-7b'"),
        (lambda r: r.update(responses=[]), "d.jsonl:3 [responses]: field 'responses' must be a non-empty mapping"),
    ],
)
def test_a_bad_row_is_one_line_naming_file_line_and_field(tmp_path: Path, capsys, edit, message) -> None:
    items = rows(4)
    edit(items[2])
    path = write_jsonl(tmp_path / "d.jsonl", items)
    assert main(["data", "check", "--dataset", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err


def test_invalid_json_and_missing_file(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "d.jsonl"
    bad.write_text(json.dumps(rows(1)[0]) + "\n{not json\n")
    assert main(["data", "check", "--dataset", str(bad)]) == 2
    assert "d.jsonl:2: invalid JSON line" in capsys.readouterr().err
    assert main(["data", "check", "--dataset", str(tmp_path / "none.jsonl")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_parquet_and_datasets_folder_read_like_json_lines(tmp_path: Path) -> None:
    import datasets

    items = [
        {**r, "prompt": r["prompt"] if isinstance(r["prompt"], str) else r["prompt"][0]["content"]} for r in rows(3)
    ]
    table = datasets.Dataset.from_list(items)
    table.to_parquet(str(tmp_path / "d.parquet"))
    table.save_to_disk(str(tmp_path / "folder"))
    reference = read_dataset(write_jsonl(tmp_path / "d.jsonl", items))
    for path in (tmp_path / "d.parquet", tmp_path / "folder"):
        data = read_dataset(path)
        assert data.candidates == reference.candidates
        assert [(e.prompt_id, e.scores) for e in data.examples] == [(e.prompt_id, e.scores) for e in reference.examples]


def test_seeded_split_keeps_file_splits_and_groups_test_by_domain(tmp_path: Path) -> None:
    items = rows(20)
    items[0]["split"] = "train"
    path = write_jsonl(tmp_path / "d.jsonl", items)
    cfg = DataConfig(dataset=str(path))
    train, val, test = dataset_splits(cfg, load_dataset_file(cfg))
    assert "code-0" in {e.prompt_id for e in train}
    assert sorted(test) == ["chat", "code", "math"]
    assert len(train) + len(val) + sum(map(len, test.values())) == 60
    again = make_splits(cfg, tmp_path)  # the same split through make_splits, in any process
    assert [e.prompt_id for e in again.val] == [e.prompt_id for e in val]
