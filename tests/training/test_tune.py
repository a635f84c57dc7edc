"""`lookahead tune`: a real Optuna study over the debug experiment, resume, bad spaces, pruning, killed trials."""

from __future__ import annotations

import csv
import re
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import yaml
from recipe_testkit import debug_run

from lightning_lookahead.cli import main
from lightning_lookahead.config.compose import compose
from lightning_lookahead.tuning.space import parse_space
from lightning_lookahead.tuning.study import TuneSettings, _Reporter, fail_dead_trials, finished_count, open_study

SPACE = {
    "fixed": {"data.max_eval_prompts": 16},
    "params": {
        "optim.lr": {"type": "float", "low": 1.0e-5, "high": 1.0e-3, "log": True},
        "model.mlm_weight": {"type": "float", "low": 0.05, "high": 1.0},
        "data.global_batch_size": {"type": "categorical", "choices": [4, 8]},
    },
}


def _overrides(backbone: Path, data: Path, tmp: Path) -> list[str]:
    run = debug_run(backbone, data, tmp)
    return [o for o in run if not o.startswith("run_dir=")] + [
        "data.protocol=kfold",
        "data.family=all",
        "data.kfold.k=3",
    ]


def _space_file(tmp: Path, space: dict) -> Path:
    path = tmp / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def _states(study_dir: Path) -> list[str]:
    study = optuna.load_study(study_name="lookahead-tune", storage=f"sqlite:///{study_dir / 'study.db'}")
    return [t.state.name for t in study.trials]


def test_tune_writes_the_study_and_best_yaml_then_resumes_to_exactly_three(tiny_backbone, real_data, tmp_path, capsys):
    study_dir = tmp_path / "study"
    space = _space_file(tmp_path, SPACE)
    args = ["tune", "debug", *_overrides(tiny_backbone, real_data, tmp_path), "--space", str(space)]
    assert main([*args, "--trials", "2", "--study-dir", str(study_dir)]) == 0
    out = capsys.readouterr().out
    assert "objective val/avg_mu_n" in out  # the joint setting's validation mixes benchmarks
    assert len(re.findall(r"\[tune\] trial \d+ \(", out)) == 2 and "trial 0 is the experiment's own setting" in out
    for name in ("study.db", "best.yaml", "trials.csv", "trials.md", "history.png", "importances.png"):
        assert (study_dir / name).is_file(), name
    assert _states(study_dir) == ["COMPLETE", "COMPLETE"]
    assert not list(study_dir.glob("trials/*/checkpoints"))  # trials do not keep their checkpoints
    assert not list(study_dir.glob("trials/*/results.json"))  # no test stage: tuning never scores a test split

    best = yaml.safe_load((study_dir / "best.yaml").read_text())
    assert best["extends"] == "debug" and best["name"] == "debug_tuned"
    rows = list(csv.DictReader((study_dir / "trials.csv").open()))
    best_row = max(rows, key=lambda r: float(r["value"]))
    assert best["optim"]["lr"] == pytest.approx(float(best_row["optim.lr"]))
    assert best["data"]["global_batch_size"] == int(best_row["data.global_batch_size"])
    assert best["data"]["max_eval_prompts"] == 16  # the space's fixed values travel too
    cfg = compose(study_dir / "best.yaml", [f"run_dir={tmp_path}/best"])  # lookahead validate/train accept it
    assert cfg.optim.lr == pytest.approx(best["optim"]["lr"]) and cfg.name == "debug_tuned"

    assert main([*args, "--trials", "3", "--study-dir", str(study_dir)]) == 0
    out = capsys.readouterr().out
    assert "2 of 3 trials finished" in out and len(re.findall(r"\[tune\] trial \d+ \(", out)) == 1
    assert len(_states(study_dir)) == 3 and finished_count(_load(study_dir)) == 3
    assert main([*args, "--trials", "3", "--study-dir", str(study_dir)]) == 0  # nothing left: no new trial
    assert len(_states(study_dir)) == 3


def _load(study_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="lookahead-tune", storage=f"sqlite:///{study_dir / 'study.db'}")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"optim.lrr": {"type": "float", "low": 1e-5, "high": 1e-3}}, "params.optim.lrr="),
        ({"optim.lr": {"type": "float", "low": -1.0, "high": 1e-3}}, "params.optim.lr=-1.0: optim.lr: must be > 0"),
        ({"model.pooling": {"type": "categorical", "choices": ["cls", "mean"]}}, "params.model.pooling="),
        ({"optim.lr": {"type": "float", "low": 1e-3, "high": 1e-5}}, "params.optim.lr: low 0.001 is above high"),
        ({"optim.lr": {"type": "uniform", "low": 1e-5, "high": 1e-3}}, "params.optim.lr.type: 'uniform' is not one"),
    ],
)
def test_a_bad_space_is_one_line_exit_2_and_nothing_written(
    params, expected, tiny_backbone, real_data, tmp_path, capsys
):
    space = _space_file(tmp_path, {"params": params})
    study_dir = tmp_path / "study"
    args = ["tune", "debug", *_overrides(tiny_backbone, real_data, tmp_path), "--space", str(space)]
    assert main([*args, "--trials", "2", "--study-dir", str(study_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {space}: ") and expected in err, err
    assert not study_dir.exists()


def test_a_key_set_on_the_command_line_is_not_searched():
    space = parse_space(SPACE, "space.yaml")
    pinned_space, pinned = space.pinned_by(["model.mlm_weight=0.0", "data.max_eval_prompts=8"])
    assert pinned == ["model.mlm_weight"]
    assert pinned_space.keys == ["optim.lr", "data.global_batch_size"] and pinned_space.fixed == {}


class _FakeTrainer(SimpleNamespace):
    """What the reporter reads of a Lightning trainer."""


def _settings(tmp: Path, trials: int = 8) -> TuneSettings:
    return TuneSettings(
        experiment="debug",
        overrides=[],
        space=parse_space(SPACE, "space.yaml"),
        study_dir=tmp / "study",
        trials=trials,
        metric="val/avg_mu_n",
    )


def test_the_median_pruner_stops_a_trial_below_the_median_but_never_at_its_last_validation(tmp_path):
    study = open_study(_settings(tmp_path))
    for value in (50.0, 60.0):  # two finished trials: the pruner's start-up
        trial = study.ask()
        for step in (1, 2, 3):
            trial.report(value, step)
        study.tell(trial, value)

    def validate(trial, value, step, total=100):
        reporter = _Reporter(trial, "val/avg_mu_n")
        trainer = _FakeTrainer(
            callback_metrics={"val/avg_mu_n": value}, global_step=step, estimated_stepping_batches=total
        )
        for _ in range(step):
            reporter.report(trainer)

    good = study.ask()
    validate(good, 70.0, 3)  # above the median: runs on
    bad = study.ask()
    validate(bad, 10.0, 1)  # the first validation is warm-up: no pruning yet
    with pytest.raises(optuna.TrialPruned):
        validate(study.ask(), 10.0, 2)
    validate(study.ask(), 10.0, 2, total=2)  # the trial's last validation: it has run its budget, keep it


def test_a_trial_whose_process_died_is_marked_failed_and_does_not_count(tmp_path):
    study = open_study(_settings(tmp_path))
    done = study.ask()
    study.tell(done, 1.0)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = study.ask()
    killed.set_user_attr("host", socket.gethostname())
    killed.set_user_attr("pid", dead.pid)
    alive = study.ask()  # another worker's running trial (this process) stays running
    alive.set_user_attr("host", socket.gethostname())
    alive.set_user_attr("pid", __import__("os").getpid())
    assert fail_dead_trials(study) == 1
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "RUNNING"]
    assert finished_count(study) == 1


def test_a_resumed_study_must_keep_its_objective(tmp_path):
    open_study(_settings(tmp_path))
    other = _settings(tmp_path)
    other.metric = "val/reward"
    with pytest.raises(Exception, match="holds a study with metric='val/avg_mu_n'"):
        open_study(other)


def test_tune_on_your_own_dataset_optimises_the_domains_macro_mu_n(tiny_backbone, tmp_path, capsys):
    from own_dataset_kit import rows, write_jsonl

    dataset = write_jsonl(tmp_path / "mine.jsonl", rows(12))
    space = _space_file(
        tmp_path, {"params": {"optim.lr": {"type": "float", "low": 1.0e-4, "high": 3.0e-3, "log": True}}}
    )
    run = [o for o in debug_run(tiny_backbone, tmp_path, tmp_path) if not o.startswith("run_dir=")]
    args = ["tune", "debug", *run, f"data.dataset={dataset}", "model.kind=mlc", "model.max_length=32"]
    args += ["data.max_train_prompts=null", "data.max_eval_prompts=null", "--space", str(space)]
    assert main([*args, "--trials", "2", "--study-dir", str(tmp_path / "study"), "--pruner", "none"]) == 0
    out = capsys.readouterr().out
    assert "objective val/avg_mu_n" in out  # code, math and chat domains
    best = yaml.safe_load((tmp_path / "study" / "best.yaml").read_text())
    assert best["data"]["dataset"] == str(dataset) and best["model"]["kind"] == "mlc"
    assert _states(tmp_path / "study") == ["COMPLETE", "COMPLETE"]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--trials", "0"], "--trials: must be ≥ 1, got 0"),
        (["--trials", "2", "--timeout", "0"], "--timeout: must be > 0"),
    ],
)
def test_bad_trial_counts_and_timeouts_are_one_line(flags, expected, tmp_path, capsys):
    study_dir = tmp_path / "study"
    assert main(["tune", "debug", *flags, "--study-dir", str(study_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {expected}" or (len(err.splitlines()) == 1 and expected in err), err
    assert not study_dir.exists()
