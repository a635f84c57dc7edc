"""The run name of an experiment trained on a user's dataset comes from the file, unless a name was chosen."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_lookahead.config.compose import compose


@pytest.mark.parametrize(
    ("experiment", "overrides", "name", "run_dir"),
    [
        # the default name (the experiment's path) gets the file's stem
        ("cpu/mlm_code", ["data.dataset=mine.jsonl"], "cpu_mlm_code_mine", "runs/cpu_mlm_code_mine"),
        ("cpu/mlm_all", ["data.dataset=/data/scored.jsonl.gz"], "cpu_mlm_all_scored", "runs/cpu_mlm_all_scored"),
        ("cpu/mlc_code", ["data.dataset=folder/mine/"], "cpu_mlc_code_mine", "runs/cpu_mlc_code_mine"),
        # mlm.yaml's `name: mlm_${data.family}`: the family is unused with a dataset, the file takes its place
        ("mlm", ["data.dataset=mine.jsonl"], "mlm_mine", "runs/mlm_mine"),
        ("mlm_math", ["data.dataset=mine.parquet"], "mlm_mine", "runs/mlm_mine"),
        ("gt", ["data.dataset=mine.jsonl"], "gt_mine_upper_bound", "runs/gt_mine_upper_bound"),
        # a name the experiment file writes out is kept
        ("cpu/gt_code", ["data.dataset=mine.jsonl"], "cpu_gt_code_upper_bound", "runs/cpu_gt_code_upper_bound"),
        # the command line's name or run_dir: nothing renamed
        ("cpu/mlm_code", ["data.dataset=mine.jsonl", "name=mine_run"], "mine_run", "runs/mine_run"),
        ("cpu/mlm_code", ["data.dataset=mine.jsonl", "run_dir=runs/mine"], "cpu_mlm_code", "runs/mine"),
        ("mlm", ["data.dataset=mine.jsonl", "run_dir=runs/mine"], "mlm_code", "runs/mine"),
        # no dataset: the paper's names, as before
        ("cpu/mlm_code", [], "cpu_mlm_code", "runs/cpu_mlm_code"),
        ("mlm", ["family=math"], "mlm_math", "runs/mlm_math"),
    ],
)
def test_a_dataset_run_is_named_after_its_file(experiment, overrides, name, run_dir):
    cfg = compose(experiment, overrides)
    assert (cfg.name, cfg.run_dir) == (name, run_dir)


def test_a_dataset_named_in_the_experiment_file_names_the_run_too(tmp_path: Path):
    exp = tmp_path / "mine_exp.yaml"
    exp.write_text("extends: cpu/mlc_code\ndata:\n  dataset: prompts/support.jsonl\n")
    assert compose(exp).name == "mine_exp_support"
    named = tmp_path / "named.yaml"
    named.write_text("extends: cpu/mlc_code\nname: support_router\ndata:\n  dataset: support.jsonl\n")
    assert compose(named).name == "support_router"


def test_dataset_run_name_rules():
    from lightning_lookahead.config.compose import dataset_run_name

    assert dataset_run_name("cpu_mlm_code", "cpu_mlm_code", False, "a/b/mine.json") == "cpu_mlm_code_mine"
    assert dataset_run_name("zooter_${data.family}", "zooter", True, "x.jsonl") == "zooter_x"
    assert dataset_run_name("fixed", "exp", True, "x.jsonl") == "fixed"
