"""What a tune leaves in its folder: ``best.yaml`` (an experiment), the trials table, and Optuna's plots."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from lightning_lookahead.data.io import write_atomic
from lightning_lookahead.tuning.space import SearchSpace
from lightning_lookahead.tuning.study import FINISHED


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"optim.lr": 1e-4}`` → ``{"optim": {"lr": 1e-4}}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _dotlist(overrides: list[str]) -> dict[str, Any]:
    """Command-line overrides as values (YAML-parsed, as OmegaConf reads them)."""
    out = {}
    for item in overrides:
        key, _, text = item.partition("=")
        key = "data.family" if key == "family" else key  # the command line's shorthand
        out[key] = yaml.safe_load(text) if text else None
    return out


def best_experiment(
    study: Any, experiment: str, overrides: list[str], space: SearchSpace, metric: str, name: str
) -> str:
    """``best.yaml``: ``extends`` the tuned experiment, with the command line's, the fixed and the best values."""
    best = study.best_trial
    settings = {**_dotlist(overrides), **space.fixed, **best.params}
    settings = {k: v for k, v in settings.items() if k not in ("run_dir", "resume", "name")}
    done = [t for t in study.trials if t.state.name in FINISHED]
    header = [
        f"# The best recipe `lookahead tune {experiment}` found: trial {best.number} of {len(done)} finished trials,",
        f"# {metric} = {best.value:.4f} (the best value over its validations; no test split was read).",
        f"# Search space: {space.source}. Train it: lookahead train <this file>",
    ]
    body = {"extends": experiment, "name": name, **_nest(settings)}
    return "\n".join(header) + "\n" + yaml.safe_dump(body, sort_keys=False, default_flow_style=False)


def trial_rows(study: Any, space: SearchSpace) -> list[dict[str, Any]]:
    """One row per trial: number, state, value, validations, seconds and the searched values."""
    rows = []
    for t in study.trials:
        value = t.value
        last = t.intermediate_values.get(t.last_step) if t.last_step is not None else None
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name.lower(),
                "value": value,
                "last_reported": last,
                "validations": t.user_attrs.get("validations", len(t.intermediate_values)),
                "seconds": round(t.duration.total_seconds(), 1) if t.duration else None,
                "baseline": bool(t.user_attrs.get("baseline", False)),
                **{key: t.params.get(key) for key in space.keys},
            }
        )
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def trials_markdown(rows: list[dict[str, Any]], metric: str, space: SearchSpace, title: str) -> str:
    """The trials table, best first among the complete ones."""
    columns = ["trial", "state", "value", "last_reported", "validations", "seconds", *space.keys]
    ranked = sorted(rows, key=lambda r: (r["value"] is None, -(r["value"] or 0.0), r["trial"]))
    lines = [
        f"# {title}",
        "",
        f"Objective: {metric} (maximised; the best value over each trial's validations). A pruned trial's `value` is "
        "the one Optuna records for it, its last report; a failed trial has none; `last_reported` is the last value "
        "a trial reported before it stopped. Trial marked * is the experiment's own setting.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in ranked:
        cells = [_fmt(row[c]) for c in columns]
        if row["baseline"]:
            cells[0] += "*"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def trials_csv(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def save_plots(study: Any, folder: Path) -> list[str]:
    """Optimisation history and parameter importances as PNG (Optuna's matplotlib plots); why one is skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    notes = []
    drawings = (("history.png", plots.plot_optimization_history), ("importances.png", plots.plot_param_importances))
    for name, draw in drawings:
        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the matplotlib backend is "experimental" in Optuna's words
                axes = draw(study)
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            figure.set_size_inches(8, 5)
            figure.tight_layout()
            tmp = folder / f".{name}"
            figure.savefig(tmp, dpi=100, format="png")
            tmp.replace(folder / name)
            plt.close(figure)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:  # e.g. importances need 2+ complete trials
            notes.append(f"{name} not drawn: {exc}")
    return notes


def write_outputs(study: Any, settings: Any) -> list[str]:
    """best.yaml, trials.csv, trials.md and the plots; returns notes on what was skipped."""
    folder: Path = settings.study_dir
    rows = trial_rows(study, settings.space)
    title = f"lookahead tune {settings.experiment} {' '.join(settings.overrides)}".strip()
    write_atomic(folder / "trials.csv", trials_csv(rows))
    write_atomic(folder / "trials.md", trials_markdown(rows, settings.metric, settings.space, title))
    notes = []
    if any(t.state.name == "COMPLETE" for t in study.trials):
        text = best_experiment(
            study, settings.experiment, settings.overrides, settings.space, settings.metric, settings.name
        )
        write_atomic(folder / "best.yaml", text)
    else:
        notes.append("best.yaml not written: no trial completed")
    notes += save_plots(study, folder)
    return notes
