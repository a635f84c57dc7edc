"""Experiment composition: defaults ← YAML (+extends) ← overrides, and its one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_lookahead.cli import main
from lightning_lookahead.config.compose import compose, list_experiments
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.models.registry import PREDICTORS


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_experiment_holds_only_differences_and_overrides_win(tmp_path):
    exp = _write(tmp_path / "small.yaml", "model:\n  kind: mlc\ndata:\n  family: math\n  batch_size: 4\n")
    cfg = compose(exp, ["trainer.max_epochs=1", "data.protocol=kfold"])
    assert cfg.name == "small" and cfg.run_dir == "runs/small"
    assert (cfg.data.family, cfg.data.batch_size, cfg.data.protocol) == ("math", 4, "kfold")
    assert cfg.trainer.max_epochs == 1 and cfg.loss.name == "bce" and cfg.loss.threshold == 0.8
    assert cfg.model.kind == "mlc" and cfg.model.backbone == "minilm"  # the predictor's own defaults filled in


def test_extends_layers_files(tmp_path):
    _write(tmp_path / "parent.yaml", "data:\n  family: math\n  batch_size: 4\n")
    child = _write(tmp_path / "child.yaml", f"extends: {tmp_path / 'parent.yaml'}\ndata:\n  batch_size: 2\n")
    cfg = compose(child)
    assert (cfg.data.family, cfg.data.batch_size) == ("math", 2)


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        (
            "trainer:\n  max_epoch: 3\n",
            [],
            "bad.yaml: trainer.max_epoch: unknown config key; did you mean 'max_epochs'",
        ),
        ("", ["data.batch_sise=3"], "command-line override: data.batch_sise: unknown config key; did you mean"),
        ("data:\n  batch_size: many\n", [], "bad.yaml: data.batch_size: 'many' must be an integer"),
        ("data:\n\tfamily: code\n", [], "bad.yaml:2: invalid YAML"),
        ("model:\n  kind: mlmm\n", [], "did you mean 'mlm'?"),
        (
            "model:\n  kind: mlm\n  mask_lenght: 3\n",
            [],
            "bad.yaml: model.mask_lenght: unknown config key; did you mean",
        ),
        ("", ["trainer.max_epochs"], "expected key=value"),
    ],
)
def test_mistakes_are_one_clear_line(tmp_path, text, overrides, message):
    exp = _write(tmp_path / "bad.yaml", text)
    with pytest.raises(LookaheadError) as info:
        compose(exp, overrides)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_unknown_experiment_suggests_the_closest():
    with pytest.raises(LookaheadError, match="did you mean 'mlm_code'"):
        compose("mlm_cod")


@pytest.mark.parametrize("name", list_experiments())
def test_every_shipped_experiment_validates(name):
    cfg = compose(name)
    assert cfg.model.kind in PREDICTORS and cfg.data.family in {"chat", "math", "code", "all"}
    text = (Path(__file__).resolve().parents[2] / "experiments" / f"{name}.yaml").read_text()
    assert text.startswith(f"# make train EXP={name}"), "an experiment's header gives the command that runs it"


def test_validate_cli(capsys):
    assert main(["validate", "--all"]) == 0
    assert "ok  mlm\n" in capsys.readouterr().out
    assert main(["validate", "mlm_code", "trainer.max_epochs=1"]) == 0
    assert "max_epochs: 1" in capsys.readouterr().out
    assert main(["validate", "mlm_code", "trainer.max_epoch=1"]) == 2
    assert "did you mean 'max_epochs'" in capsys.readouterr().err
