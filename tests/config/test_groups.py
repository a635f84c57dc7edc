"""The benchmark family is a choice (`mlm family=math`, or the name `mlm_math`), not a file per family."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_lookahead.cli import main
from lightning_lookahead.config.compose import compose, list_experiments, to_dict
from lightning_lookahead.config.experiments import EXPERIMENTS_DIR
from lightning_lookahead.config.schema import FAMILIES
from lightning_lookahead.errors import LookaheadError

PAPER = ("mlm", "mlc", "clm", "gt")


def _plain(name: str, overrides: list[str] | None = None) -> dict:
    return to_dict(compose(name, overrides or []))


@pytest.mark.parametrize("experiment", PAPER)
@pytest.mark.parametrize("family", FAMILIES)
def test_family_name_shorthand_and_override_agree(experiment, family):
    by_name = _plain(f"{experiment}_{family}")
    assert by_name == _plain(experiment, [f"family={family}"]) == _plain(experiment, [f"data.family={family}"])
    assert by_name["data"]["family"] == family
    expected = f"gt_{family}_upper_bound" if experiment == "gt" else f"{experiment}_{family}"
    assert by_name["name"] == expected and by_name["run_dir"] == f"runs/{expected}"


def test_overrides_win_over_the_family_in_the_name():
    assert compose("mlm_math", ["family=chat"]).data.family == "chat"
    assert compose("cpu/mlm_code", ["family=math", "data.protocol=kfold"]).data.family == "math"


def test_only_real_families_and_experiments_resolve():
    with pytest.raises(LookaheadError, match="unknown experiment 'mlm_maths'; did you mean 'mlm_math'"):
        compose("mlm_maths")
    with pytest.raises(LookaheadError, match="unknown experiment 'mlx_math'"):
        compose("mlx_math")


def test_a_file_extends_a_family_name(tmp_path: Path):
    exp = tmp_path / "mine.yaml"
    exp.write_text("extends: mlc_math\ndata:\n  protocol: kfold\n")
    cfg = compose(exp)
    assert (cfg.model.kind, cfg.data.family, cfg.data.protocol) == ("mlc", "math", "kfold")


def test_no_file_shadows_a_family_choice():
    """A file ``<exp>_<family>`` beside ``<exp>`` would be a second copy of ``<exp> family=<family>``."""
    names = set(list_experiments())
    for name in names:
        base, _, family = name.rpartition("_")
        assert not (family in FAMILIES and base in names), f"{name} duplicates `{base} family={family}`"


def test_list_shows_experiments_and_families(capsys):
    assert main(["validate", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name}\n" in out for name in (*PAPER, "debug", "cpu/mlm_all"))
    assert "families: chat, math, code, all" in out and "mlm family=math" in out


def test_the_debug_experiment_is_tiny_and_offline():
    cfg = compose("debug")
    assert (cfg.model.kind, cfg.model.backbone, cfg.model.max_length, cfg.model.mask_length) == ("mlm", "minilm", 64, 4)
    assert (cfg.data.max_train_prompts, cfg.data.max_eval_prompts, cfg.data.batch_size) == (8, 4, 4)
    assert (cfg.trainer.accelerator, cfg.trainer.precision, cfg.logger.wandb.enabled) == ("cpu", "32-true", False)
    assert (EXPERIMENTS_DIR / "debug.yaml").read_text().startswith("# make train EXP=debug")
