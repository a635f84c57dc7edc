"""Compose-time checks: every value `train` would refuse, `validate` refuses first, on one line naming key and layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_lookahead.config.compose import compose
from lightning_lookahead.errors import LookaheadError

#: Each is refused with (key, what the line must say).
BAD_OVERRIDES = [
    ("optim.scheduler=cosin", "optim.scheduler", "not one of cosine, linear, constant; did you mean 'cosine'?"),
    ("loss.name=bcee", "loss.name", "did you mean 'bce'?"),
    ("data.family=maths", "data.family", "did you mean 'math'?"),
    ("optim.lr=-1", "optim.lr", "must be > 0, got -1"),
    ("trainer.precision=17", "trainer.precision", "17 is not one of transformer-engine"),
    ("data.batch_size=0", "data.batch_size", "must be ≥ 1, got 0"),
    ("model.backbone=nonexistent/model", "model.backbone", "is not a backbone alias (minilm, smollm2)"),
    ("trainer.num_nodes=0", "trainer.num_nodes", "must be ≥ 1, got 0"),
    ("trainer.strategy=fsdpp", "trainer.strategy", "did you mean 'fsdp'?"),
    ("trainer.fsdp.sharding_strategy=FULL", "trainer.fsdp.sharding_strategy", "not one of FULL_SHARD"),
    ("trainer.fsdp.cpu_offloads=true", "trainer.fsdp.cpu_offloads", "did you mean 'cpu_offload'?"),
]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _refused(experiment: str | Path, overrides: list[str]) -> str:
    with pytest.raises(LookaheadError) as info:
        compose(experiment, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("override", "key", "expected"), BAD_OVERRIDES)
def test_bad_values_are_refused_at_compose_time(override, key, expected):
    message = _refused("cpu/mlm_code", [override])
    assert f"{key}: " in message and expected in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["loss.threshold=1.5"], "loss.threshold: must be ≤ 1, got 1.5"),
        (["loss.temperature=0"], "loss.temperature: must be > 0"),
        (["loss.score_norm=minmax"], "did you mean 'min-max'?"),
        (["optim.warmup_ratio=1"], "optim.warmup_ratio: must be in [0, 1)"),
        (["optim.weight_decay=-0.1"], "optim.weight_decay: must be ≥ 0"),
        (["optim.eps=0"], "optim.eps: must be > 0"),
        (["optim.betas=[0.9,1.0]"], "optim.betas: each must be a number in [0, 1)"),
        (["data.protocol=kfol"], "did you mean 'kfold'?"),
        (["data.kfold.k=1"], "data.kfold.k: must be ≥ 2, got 1"),
        (["data.kfold.k=3", "data.kfold.fold=3"], "data.kfold.fold: must be < data.kfold.k (3), got 3"),
        (["data.kfold.val_fraction=1.0"], "data.kfold.val_fraction: must be in [0, 1)"),
        (["data.global_batch_size=20"], "data.global_batch_size: must be a multiple of data.batch_size (16), got 20"),
        (["data.eval_batch_size=0"], "data.eval_batch_size: must be ≥ 1"),
        (["data.num_workers=-1"], "data.num_workers: must be ≥ 0"),
        (["data.max_train_prompts=0"], "data.max_train_prompts: must be ≥ 1"),
        (["data.candidates=[a,a]"], "data.candidates: names must be distinct"),
        (["trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val: must be ≥ 0"),
        (["logger.wandb.mode=onlin"], "did you mean 'online'?"),
        (["checkpoint_every_n_steps=0"], "checkpoint_every_n_steps: must be ≥ 1"),
        (["nmae=x"], "nmae: unknown config key; did you mean 'name'?"),
        (["data=3"], "data: 3 must be a mapping"),
    ],
)
def test_ranges_sets_and_cross_field_checks(overrides, expected):
    assert expected in _refused("cpu/mlm_code", overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["trainer.precision=bf16-mixed", "trainer.precision=16", "data.max_train_prompts=null"],
        ["optim.lr=1e-4", "optim.warmup_ratio=0.1", "optim.scheduler=linear", "loss.name=forward_kl"],
        ["data.protocol=kfold", "data.kfold.k=3", "data.kfold.fold=2", "data.kfold.val_fraction=0"],
        ["trainer.devices=2", "trainer.devices=auto", "trainer.val_check_interval=100", "trainer.fast_dev_run=true"],
        ["loss.threshold=0", "model.backbone=MiniLM", "logger.wandb.mode=offline"],
    ],
)
def test_good_settings_pass(overrides):
    cfg = compose("cpu/mlm_code", overrides)
    assert cfg.data.batch_size == 16 and cfg.model.kind == "mlm"


def test_errors_name_the_layer_that_made_them(tmp_path):
    parent = _write(tmp_path / "parent.yaml", "optim:\n  scheduler: cosin\n")
    child = _write(tmp_path / "child.yaml", f"extends: {parent}\noptim:\n  scheduler: linear\n")
    assert _refused(child, []).startswith(f"{parent}: optim.scheduler: ")  # refused where it was written
    good = _write(tmp_path / "good.yaml", "data:\n  batch_size: 4\n  global_batch_size: 8\n")
    assert _refused(good, ["data.batch_size=0"]).startswith("command-line override: data.batch_size: ")


def test_cross_field_checks_see_the_composed_whole(tmp_path):
    """A file may change one side of a pair and leave the other to a later layer."""
    exp = _write(tmp_path / "e.yaml", "data:\n  batch_size: 3\n")  # 64 is not a multiple of 3 …
    assert compose(exp, ["data.global_batch_size=6"]).data.global_batch_size == 6  # … until the override


def test_values_are_typed_and_interpolations_resolved(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKAHEAD_DATA_DIR", "/somewhere/data")
    exp = _write(tmp_path / "e.yaml", "optim:\n  lr: 1e-5\n  warmup_ratio: 0\n")
    cfg = compose(exp)
    assert cfg.optim.lr == 1e-5 and isinstance(cfg.optim.warmup_ratio, float)  # YAML's "1e-5" is a number here
    assert cfg.data.data_dir == "/somewhere/data" and cfg.run_dir == "runs/e"


def test_a_kind_switch_replaces_the_model_block(tmp_path):
    exp = _write(tmp_path / "e.yaml", "extends: cpu/mlm_code\nmodel:\n  kind: mlc\n  max_length: 155\n")
    cfg = compose(exp)
    assert cfg.model.kind == "mlc" and cfg.model.max_length == 155 and not hasattr(cfg.model, "mask_length")
    switched = compose("cpu/mlm_code", ["model.kind=mlc"])  # on the command line too
    assert switched.model.kind == "mlc" and not hasattr(switched.model, "mask_length")
    assert compose("cpu/mlm_code", ["model.kind=mlm", "model.mask_length=8"]).model.max_length == 320  # same kind
