"""One composer of the ``data:`` section: training (``compose``), fitted references (``evaluate --fit-*``) and
``evaluate --dataset`` all go through :func:`compose_data` and agree on a shipped experiment's data section."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from lightning_lookahead.commands import evaluate
from lightning_lookahead.config import compose as compose_module
from lightning_lookahead.config.compose import compose, compose_data, to_dict
from lightning_lookahead.data.config import DataConfig
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.routers.fitted import fit_data_config

EXPERIMENT = "cpu/mlm_code"


def _dotlist(node: dict, prefix: str = "") -> list[str]:
    out: list[str] = []
    for key, value in node.items():
        if isinstance(value, dict):
            out += _dotlist(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={'null' if value is None else value}")
    return out


def _spy(monkeypatch) -> list[DataConfig]:
    """Record every DataConfig compose_data returns, wherever it is called from."""
    seen: list[DataConfig] = []
    real = compose_module.compose_data

    def recording(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(compose_module, "compose_data", recording)
    monkeypatch.setattr("lightning_lookahead.routers.fitted.compose_data", recording)
    return seen


def test_training_and_fitted_references_compose_the_same_data_section(monkeypatch) -> None:
    seen = _spy(monkeypatch)
    trained = compose(EXPERIMENT).data
    assert seen == [trained] and isinstance(trained, DataConfig)  # compose's data section is compose_data's
    plain = to_dict(trained)
    fixed = {k: plain.pop(k) for k in ("data_dir", "candidates", "family", "protocol")}
    fitted = fit_data_config(
        fixed["data_dir"],
        fixed["candidates"],
        family=fixed["family"],
        protocol=fixed["protocol"],
        overrides=_dotlist(plain),
    )
    assert len(seen) == 2 and fitted == trained
    assert compose_data(trained) == trained == compose_data(to_dict(trained))  # a composed section recomposes as is


def test_evaluate_dataset_composes_through_it_with_nested_keys(monkeypatch, tmp_path: Path) -> None:
    seen = _spy(monkeypatch)
    args = argparse.Namespace(benchmarks="all", dataset=str(tmp_path / "missing.jsonl"), candidates=None)
    args.fit_set = ["dataset_test_fraction=0.3", "data.kfold.k=3"]
    with pytest.raises(LookaheadError, match="file not found"):  # composed first, then the file is read
        evaluate._own_dataset(args, [])
    (data,) = seen
    assert (data.dataset, data.dataset_test_fraction, data.kfold.k) == (args.dataset, 0.3, 3)


def test_its_mistakes_name_the_flag_and_the_key() -> None:
    with pytest.raises(LookaheadError, match=r"^--fit-set: data\.batch_size: must be ≥ 1, got 0$"):
        compose_data({"dataset": "x.jsonl"}, ["batch_size=0"], source="--dataset", overrides_source="--fit-set")
    with pytest.raises(LookaheadError, match=r"^--fit-set: data\.dataset_test_fraction: with data\.dataset_val"):
        compose_data({}, ["dataset_val_fraction=0.5", "dataset_test_fraction=0.5"], overrides_source="--fit-set")
