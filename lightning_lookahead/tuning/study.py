"""``lookahead tune``: an Optuna study over an experiment's recipe, stored in SQLite so a killed tune resumes.

Each trial is one ``lookahead train`` of the experiment with the trial's overrides, composed and checked by the same
typed config, fitted without its test stage (tuning never scores a test split). The objective is the best value of
a validation metric (``val/avg_mu_n`` by default where there are several benchmarks or domains) over the run's
validations, the value its checkpoint selection keeps; every validation reports it to the pruner.

Resuming: the study is ``DIR/study.db`` (``load_if_exists``). Finished trials (complete or pruned) count toward
``--trials``; a trial whose process died is marked failed and does not count; the sampler's seed moves on with the
number of trials already in the study, so a resumed study does not redraw the same first points.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.tuning.space import SearchSpace, lookup, override

if TYPE_CHECKING:
    from lightning_lookahead.config.schema import ExperimentConfig

STUDY_FILE = "study.db"
STUDY_NAME = "lookahead-tune"
PRUNERS = ("median", "hyperband", "none")
#: Trial states (names) that count toward --trials.
FINISHED = ("COMPLETE", "PRUNED")
#: A tune stops (exit 2) after this many failed trials in a row: the cause is not the trial's values.
MAX_FAILURES_IN_A_ROW = 3


@dataclass
class TuneSettings:
    """What ``lookahead tune`` was asked for."""

    experiment: str
    overrides: list[str]
    space: SearchSpace
    study_dir: Path
    trials: int
    metric: str
    timeout: float | None = None
    pruner: str = "median"
    seed: int = 0
    keep_checkpoints: bool = False
    #: The run name best.yaml gives (the tuned experiment's, with ``_tuned``).
    name: str = "tuned"
    extra_callbacks: Sequence[Any] = field(default_factory=tuple)


def _pruner(name: str) -> Any:
    import optuna

    if name == "median":  # prune from the second validation on, once two trials have finished
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto")
    if name == "none":
        return optuna.pruners.NopPruner()
    raise LookaheadError(f"--pruner: {name!r} is not one of {', '.join(PRUNERS)}")


def open_study(settings: TuneSettings) -> Any:
    """Create or load ``DIR/study.db``; the study's metric and experiment must match a resumed one's."""
    import optuna

    settings.study_dir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{(settings.study_dir / STUDY_FILE).resolve()}"
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # one line per trial is ours
    existing = _count_trials(storage)
    sampler = optuna.samplers.TPESampler(
        seed=settings.seed + existing, n_startup_trials=min(10, max(3, settings.trials // 3))
    )
    study = optuna.create_study(
        storage=storage,
        study_name=STUDY_NAME,
        direction="maximize",
        sampler=sampler,
        pruner=_pruner(settings.pruner),
        load_if_exists=True,
    )
    recorded = study.user_attrs
    mine = {"experiment": settings.experiment, "metric": settings.metric, "space": settings.space.keys}
    if recorded:
        for key, value in mine.items():
            if recorded.get(key) != value:
                raise LookaheadError(
                    f"{settings.study_dir / STUDY_FILE} holds a study with {key}={recorded.get(key)!r}, not "
                    f"{value!r}; use another --study-dir"
                )
    else:
        for key, value in mine.items():
            study.set_user_attr(key, value)
        study.set_user_attr("overrides", list(settings.overrides))
    return study


def _count_trials(storage: str) -> int:
    import optuna

    try:
        return len(optuna.load_study(study_name=STUDY_NAME, storage=storage).trials)
    except KeyError:  # no study yet
        return 0


def fail_dead_trials(study: Any) -> int:
    """Mark failed the running trials whose process on this host is gone (a tune killed mid-trial)."""
    from optuna.trial import TrialState

    failed = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        host, pid = trial.user_attrs.get("host"), trial.user_attrs.get("pid")
        if host == socket.gethostname() and pid is not None and not _alive(int(pid)):
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            failed += 1
    return failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def finished_count(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=tuple(TrialState[name] for name in FINISHED)))


def enqueue_baseline(study: Any, settings: TuneSettings, cfg: ExperimentConfig) -> bool:
    """A new study's first trial is the experiment's own setting, when it lies inside the space."""
    from lightning_lookahead.config.compose import to_dict

    if study.trials:
        return False
    plain = to_dict(cfg)
    values = {p.key: lookup(plain, p.key) for p in settings.space.params}
    if not all(p.contains(values[p.key]) for p in settings.space.params):
        return False
    study.enqueue_trial(values, user_attrs={"baseline": True})
    return True


class _Reporter:
    """A Lightning callback: the monitored metric to the trial after every validation; prunes when told to."""

    def __init__(self, trial: Any, metric: str) -> None:
        self.trial, self.metric = trial, metric
        self.validations = 0
        self.values: list[float] = []

    def callback(self) -> Any:
        from lightning.pytorch.callbacks import Callback

        reporter = self

        class TrialReporter(Callback):
            def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
                if trainer.sanity_checking:
                    return
                reporter.report(trainer)

        return TrialReporter()

    def report(self, trainer: Any) -> None:
        import optuna

        value = trainer.callback_metrics.get(self.metric)
        if value is None:
            raise LookaheadError(
                f"--metric {self.metric} was not logged at validation (logged: "
                f"{', '.join(sorted(k for k in trainer.callback_metrics if k.startswith('val/')))})"
            )
        self.validations += 1
        value = float(value)
        self.values.append(value)
        if math.isfinite(value):
            self.trial.report(value, step=self.validations)
        finished = trainer.global_step >= trainer.estimated_stepping_batches  # its last validation: keep it
        if not finished and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at validation {self.validations} ({self.metric} {value:.4f})")


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors included) to ``path`` for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def trial_overrides(settings: TuneSettings, params: dict[str, Any], number: int) -> list[str]:
    """A trial's overrides: the command line's, the space's fixed ones, the trial's values, its own run folder."""
    run_dir = trial_dir(settings, number)
    return [
        *settings.overrides,
        *settings.space.fixed_overrides(),
        *(override(k, v) for k, v in params.items()),
        f"run_dir={run_dir}",
        f"monitor={settings.metric}",
        "resume=null",
    ]


def trial_dir(settings: TuneSettings, number: int) -> Path:
    return (settings.study_dir / "trials" / f"{number:03d}").resolve()


def _fit(settings: TuneSettings, params: dict[str, Any], number: int, callbacks: list[Any]) -> dict[str, Any]:
    """Compose the trial's experiment like `lookahead train` and fit it without the test stage."""
    from lightning_lookahead.config.compose import compose
    from lightning_lookahead.training.recipe import run_experiment

    cfg = compose(settings.experiment, trial_overrides(settings, params, number))
    cfg.name = f"{cfg.name}-trial{number:03d}"
    if cfg.logger.wandb.enabled:
        cfg.logger.wandb.group = cfg.logger.wandb.group or f"tune-{settings.study_dir.name}"
        cfg.logger.wandb.tags = [*cfg.logger.wandb.tags, "tune"]
    return run_experiment(cfg, extra_callbacks=callbacks, test=False)


def make_objective(settings: TuneSettings) -> Any:
    """The Optuna objective: compose the trial's config, fit without testing, return the best validation value."""

    def objective(trial: Any) -> float:
        import optuna

        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        params = {p.key: p.suggest(trial) for p in settings.space.params}
        run_dir = trial_dir(settings, trial.number)
        if run_dir.exists():  # a stale folder (a study.db deleted by hand): never resume into it
            shutil.rmtree(run_dir)
        trial.set_user_attr("run_dir", os.path.relpath(run_dir, settings.study_dir))
        reporter = _Reporter(trial, settings.metric)
        try:
            with _output_to(run_dir / "train.log"):
                try:
                    result = _fit(settings, params, trial.number, [reporter.callback(), *settings.extra_callbacks])
                except optuna.TrialPruned:
                    raise
                except Exception as exc:  # the traceback to the trial's log, one line to the study
                    traceback.print_exc()
                    trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
                    raise
        finally:
            trial.set_user_attr("validations", reporter.validations)
            if not settings.keep_checkpoints:
                shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        best = (result.get("selection") or {}).get("best_score")
        if best is None or not math.isfinite(best):
            message = f"no finite {settings.metric} was logged"
            trial.set_user_attr("error", message)
            raise LookaheadError(f"trial {trial.number}: {message} (see {run_dir}/train.log)")
        return float(best)

    return objective


def progress_callback(settings: TuneSettings, progress: TextIO, started: float) -> Any:
    """One plain line per finished trial: state, value, best so far, elapsed."""

    def callback(study: Any, trial: Any) -> None:
        from optuna.trial import TrialState

        done = finished_count(study)
        elapsed = time.perf_counter() - started
        took = trial.duration.total_seconds() if trial.duration else float("nan")
        if trial.state == TrialState.COMPLETE:
            what = f"{settings.metric} {trial.value:.4f}"
        elif trial.state == TrialState.PRUNED:
            last = trial.last_step
            value = trial.intermediate_values.get(last) if last is not None else None
            what = f"pruned at validation {last}" + (f" ({settings.metric} {value:.4f})" if value is not None else "")
        else:
            reason = trial.user_attrs.get("error") or "failed"
            log = trial_dir(settings, trial.number) / "train.log"
            what = f"FAILED ({str(reason).splitlines()[-1][:200]}; log {log})"
        try:
            best = f"best {study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:
            best = "no complete trial yet"
        params = ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
        print(
            f"[tune] trial {trial.number} ({done}/{settings.trials} finished): {what} · {best} · "
            f"{took:.0f} s this trial, {elapsed:.0f} s elapsed · {params}",
            file=progress,
            flush=True,
        )

    return callback


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def run_tune(
    settings: TuneSettings, cfg: ExperimentConfig, progress: TextIO | None = None, after_trial: Any = None
) -> Any:
    """Run trials until ``settings.trials`` have finished (or the timeout); returns the study.

    ``after_trial(study)`` runs after every trial (the command refreshes the table, plots and best.yaml, so a long
    tune's folder is always current).
    """
    from optuna.trial import TrialState

    out = progress or sys.stdout
    study = open_study(settings)
    failed = fail_dead_trials(study)
    done = finished_count(study)
    if failed:
        print(f"[tune] marked {failed} interrupted trial(s) failed (they do not count)", file=out, flush=True)
    todo = max(settings.trials - done, 0)
    print(
        f"[tune] {settings.experiment}: {done} of {settings.trials} trials finished in {settings.study_dir}; "
        f"running {todo} · objective {settings.metric} (maximised) · pruner {settings.pruner} · "
        f"space {settings.space.source} ({', '.join(settings.space.keys)})",
        file=out,
        flush=True,
    )
    if todo and enqueue_baseline(study, settings, cfg):
        print("[tune] trial 0 is the experiment's own setting", file=out, flush=True)
    started = time.perf_counter()
    objective = make_objective(settings)
    report = progress_callback(settings, out, started)
    failures_in_a_row = 0
    while finished_count(study) < settings.trials:
        left = None if settings.timeout is None else settings.timeout - (time.perf_counter() - started)
        if left is not None and left <= 0:
            print(f"[tune] --timeout {settings.timeout:.0f} s reached", file=out, flush=True)
            break
        study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=[report], gc_after_trial=True)
        if after_trial is not None:
            after_trial(study)
        last = study.trials[-1]
        failures_in_a_row = failures_in_a_row + 1 if last.state == TrialState.FAIL else 0
        if failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
            raise LookaheadError(
                f"{MAX_FAILURES_IN_A_ROW} trials failed in a row; see "
                f"{settings.study_dir}/trials/{last.number:03d}/train.log"
            )
    return study
