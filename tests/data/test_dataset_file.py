"""Your own dataset file: every row checked with a located one-line error, drops counted, three input formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from own_dataset_kit import CANDIDATES, rows, write_jsonl

from lightning_lookahead.cli import main
from lightning_lookahead.data.config import DataConfig
from lightning_lookahead.data.dataset_file import read_dataset
from lightning_lookahead.data.dataset_splits import dataset_splits, load_dataset_file
from lightning_lookahead.data.splits import make_splits
from lightning_lookahead.errors import LookaheadError


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
    assert "dropped: 1 of 12 rows: 1 where every candidate scores the same" in out


def test_rows_without_responses_are_counted_drops_per_candidate(tmp_path: Path, capsys) -> None:
    """What a partly failed collection writes: `responses: {}` and missing candidates are drops, never a refusal."""
    items = rows(4)
    items[0]["responses"] = {}  # every request of this prompt failed
    items[0]["errors"] = {c: "HTTP 503: down (5 attempts)" for c in CANDIDATES}
    del items[1]["responses"]["coder-7b"]
    items[1]["errors"] = {"coder-7b": "timed out"}
    del items[2]["responses"]["coder-7b"]
    del items[3]["responses"]["local-llama"]
    del items[4]["scores"]["frontier-api"]  # collected, not scored yet
    path = write_jsonl(tmp_path / "d.jsonl", items)
    data = read_dataset(path)
    assert data.candidates == tuple(CANDIDATES) and len(data.examples) == 7
    assert (data.dropped_rows, data.incomplete_rows) == (5, 5)
    assert data.dropped == {
        "no response from frontier-api": 1,
        "no response from local-llama": 2,
        "no response from coder-7b": 3,
        "no score for frontier-api": 1,
    }
    assert main(["data", "check", "--dataset", str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        "dropped: 5 of 12 rows: 3 no response from coder-7b, 1 no response from frontier-api, "
        "2 no response from local-llama, 1 no score for frontier-api (a row missing several candidates counts under "
        "each)"
    ) in out

    # a candidate whose every request failed still belongs to the pool: its rows are dropped, and counted
    failed = rows(2)
    for item in failed:
        del item["responses"]["coder-7b"]
        item["errors"] = {"coder-7b": "connection failed"}
    data = read_dataset(write_jsonl(tmp_path / "f.jsonl", failed))
    assert data.candidates == tuple(CANDIDATES) and not data.examples
    assert data.dropped == {"no response from coder-7b": 6}
    assert read_dataset(tmp_path / "f.jsonl", ["frontier-api", "local-llama"]).dropped_rows == 0

    # training says what it dropped, and a split left empty by the drops names them
    cfg = DataConfig(dataset=str(tmp_path / "f.jsonl"))
    empty = pytest.raises(LookaheadError, match=r"no usable train rows \(0 usable of 6; dropped 6 of 6 rows: 6 no")
    with empty, pytest.warns(UserWarning, match="dropped 6 of 6 rows: 6 no response from coder-7b"):
        dataset_splits(cfg, load_dataset_file(cfg))


@pytest.mark.parametrize("name", ["val", "validation", "valid", "dev", "Validation", " DEV "])
def test_validation_split_names(tmp_path: Path, name: str) -> None:
    items = rows(4)
    for item in items:
        item["split"] = "train"
    items[0]["split"], items[5]["split"] = name, "test"
    data = read_dataset(write_jsonl(tmp_path / "d.jsonl", items))
    assert data.splits.count("val") == 1 and data.splits[0] == "val"
    train, val, _ = dataset_splits(DataConfig(dataset=str(tmp_path / "d.jsonl")), data)
    assert [e.prompt_id for e in val] == ["code-0"] and len(train) == 10


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r.pop("prompt"), "d.jsonl:3 [prompt]: field 'prompt' must be a string or a non-empty list"),
        (lambda r: r.update(prompt=""), "d.jsonl:3 [prompt]: field 'prompt' is empty"),
        (
            lambda r: r.update(split="holdout"),
            "d.jsonl:3 [split]: split 'holdout' is not one of train, val (validation, valid, dev mean val), test",
        ),
        (lambda r: r.update(split=1), "d.jsonl:3 [split]: split 1 is not one of train, val"),
        (lambda r: r.update(id="code-0"), "d.jsonl:3 [id]: duplicate id 'code-0' (first on line 1)"),
        (lambda r: r["scores"].update({"coder-7b": "high"}), "d.jsonl:3 [scores.coder-7b]: expected a numeric score"),
        (lambda r: r["responses"].update({"coder-7b": 3}), "d.jsonl:3 [responses.coder-7b]: response of 'coder-7b'"),
        (lambda r: r.update(responses=[]), "d.jsonl:3 [responses]: field 'responses' must be a mapping"),
        (lambda r: r.pop("responses"), "d.jsonl:3 [responses]: field 'responses' must be a mapping"),
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


def _domain_rows(n: int, domains: int) -> list[dict]:
    """``n`` rows over ``domains`` domains of unequal sizes (round-robin, then the rest to the first)."""
    out = []
    for i in range(n):
        domain = f"d{i % domains}" if i < n - n // 7 else "d0"
        scores = {"a": float(i % 3), "b": 1.5}
        out.append({"id": f"r{i}", "prompt": f"p {i}", "responses": {"a": "x", "b": "y"}, "scores": scores,
                    "domain": domain})  # fmt: skip
    return out


@pytest.mark.parametrize(("n", "domains"), [(240, 3), (7, 1), (7, 3), (50, 3), (50, 4), (1001, 3), (1001, 5)])
def test_seeded_split_gives_the_documented_shares(tmp_path: Path, n: int, domains: int) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", _domain_rows(n, domains))
    data = read_dataset(path)
    assert len(data.examples) == n
    cfg = DataConfig(dataset=str(path))
    train, val, test = dataset_splits(cfg, data)
    tests = [e for items in test.values() for e in items]
    ids = [e.prompt_id for e in [*train, *val, *tests]]
    assert sorted(ids) == sorted(e.prompt_id for e in data.examples)  # every row in exactly one split
    assert abs(len(tests) - round(0.2 * n)) <= 1 and abs(len(val) - round(0.1 * n)) <= 1
    # stratified: each domain gives its own share to test, to within one row
    for domain, items in test.items():
        size = sum(e.benchmark == domain for e in data.examples)
        assert abs(len(items) - 0.2 * size) <= 1
    # deterministic by seed, in every process: the same seed gives the same split, another seed another one
    again = dataset_splits(cfg, read_dataset(path))
    assert [e.prompt_id for e in again[1]] == [e.prompt_id for e in val]
    assert {k: [e.prompt_id for e in v] for k, v in again[2].items()} == {
        k: [e.prompt_id for e in v] for k, v in test.items()
    }
    if n > 10:
        other = dataset_splits(DataConfig(dataset=str(path), dataset_split_seed=7), data)
        assert {e.prompt_id for e in other[1]} != {e.prompt_id for e in val}


def test_seeded_split_applies_the_fractions_to_rows_without_a_split(tmp_path: Path) -> None:
    items = _domain_rows(100, 2)
    for item in items[:40]:
        item["split"] = "train"
    path = write_jsonl(tmp_path / "d.jsonl", items)
    cfg = DataConfig(dataset=str(path), dataset_val_fraction=0.25, dataset_test_fraction=0.25)
    train, val, test = dataset_splits(cfg, load_dataset_file(cfg))
    assert (len(train), len(val), sum(map(len, test.values()))) == (40 + 30, 15, 15)
