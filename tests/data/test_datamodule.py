"""RoutingDataModule with a tiny input builder: batches, order, seeding, and the on-disk feature cache."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_lookahead.data.config import DataConfig
from lightning_lookahead.data.datamodule import RoutingDataModule, content_hash
from lightning_lookahead.data.schema import RoutingExample
from lightning_lookahead.data.splits import RoutingSplits
from lightning_lookahead.errors import LookaheadError

FIXTURE_ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "data"


class CharInputs:
    """Counts characters; ``offset`` stands for a tokenizer setting that changes the features."""

    def __init__(self, offset: int = 0) -> None:
        self.offset = offset
        self.calls = 0

    def featurize(self, example: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return {
            "prompt_chars": len(example["prompt"]) + self.offset,
            "response_chars": [len(r) for r in example["responses"]],
        }

    @property
    def fingerprint(self) -> str:
        return f"chars-v1:offset={self.offset}"

    def collate(self, features: list[dict[str, Any]], train: bool = False) -> dict[str, Any]:
        return {
            "prompt_chars": torch.tensor([f["prompt_chars"] for f in features]),
            "response_chars": torch.tensor([f["response_chars"] for f in features]),
            "scores": torch.tensor([f["scores"] for f in features], dtype=torch.float32),
            "prompt_id": [f["prompt_id"] for f in features],
        }


def config(tmp_path: Path, **kw: Any) -> DataConfig:
    kw.setdefault("data_dir", str(FIXTURE_ROOT))
    return DataConfig(cache_dir=str(tmp_path / "cache"), batch_size=2, eval_batch_size=2, **kw)


def synthetic(n: int, benchmark: str = "Synthetic") -> list[RoutingExample]:
    return [
        RoutingExample(
            prompt_id=f"{benchmark}-{i}",
            prompt="x" * (i + 1),
            responses=tuple(f"r{j}" * (i % 3) for j in range(5)),
            scores=tuple(float((i + j) % 5) for j in range(5)),
            benchmark=benchmark,
        )
        for i in range(n)
    ]


def synthetic_splits() -> RoutingSplits:
    return RoutingSplits(
        train=synthetic(40, "Train"), val=synthetic(7, "Val"), test={"A": synthetic(5, "A"), "B": synthetic(3, "B")}
    )


def ids(loader) -> list[str]:
    return [pid for batch in loader for pid in batch["prompt_id"]]


def test_dataloaders_yield_collated_batches(tmp_path: Path) -> None:
    dm = RoutingDataModule(config(tmp_path, family="code"), CharInputs(), seed=0)
    dm.setup("fit")
    assert dm.train_size == 2 and dm.val_size == 1
    batches = list(dm.train_dataloader())
    assert sum(len(b["prompt_id"]) for b in batches) == dm.train_size
    batch = batches[0]
    assert batch["scores"].shape == (len(batch["prompt_id"]), 5) and batch["scores"].dtype == torch.float32
    assert batch["response_chars"].shape == (len(batch["prompt_id"]), 5)
    val = next(iter(dm.val_dataloader()))
    assert val["prompt_id"] == [ex.prompt_id for ex in dm.splits.val]
    ex = dm.splits.val[0]
    assert val["prompt_chars"].tolist() == [len(ex.prompt)]
    assert val["scores"][0].tolist() == pytest.approx(list(ex.scores))


def test_rows_are_plain_python(tmp_path: Path) -> None:
    dm = RoutingDataModule(config(tmp_path), CharInputs(), splits=synthetic_splits())
    dm.setup("fit")
    rows = []
    dm.inputs.collate = lambda features, train=False: rows.extend(features) or {}  # type: ignore[method-assign]
    next(iter(dm.val_dataloader()))
    row = rows[0]
    assert isinstance(row["scores"], list) and isinstance(row["scores"][0], float)
    assert row["scores"] == list(synthetic(7, "Val")[0].scores)  # stored as float64: exact
    assert isinstance(row["response_chars"], list) and isinstance(row["prompt"], str)
    assert set(row) >= {"prompt_id", "prompt", "responses", "scores", "benchmark", "prompt_chars"}


def test_test_dataloaders_align_with_test_examples(tmp_path: Path) -> None:
    dm = RoutingDataModule(config(tmp_path, family="all"), CharInputs())
    dm.setup("test")
    loaders = dm.test_dataloader()
    assert dm.test_names == ["AlpacaEval", "ArenaHard", "MT-Bench", "GSM8k", "MATH", "HumanEval", "MBPP"]
    assert list(dm.test_examples) == dm.test_names and len(loaders) == len(dm.test_names)
    for name, loader in zip(dm.test_names, loaders, strict=True):
        examples = dm.test_examples[name]
        assert ids(loader) == [ex.prompt_id for ex in examples]
        scores = torch.cat([b["scores"] for b in loader])
        assert torch.equal(scores, torch.tensor([ex.scores for ex in examples], dtype=torch.float32))
    assert [ids(a) for a in dm.predict_dataloader()] == [ids(b) for b in loaders]


def test_train_shuffle_is_seeded(tmp_path: Path) -> None:
    def epochs(seed: int) -> list[list[str]]:
        dm = RoutingDataModule(config(tmp_path), CharInputs(), splits=synthetic_splits(), seed=seed)
        loader = dm.train_dataloader()
        return [ids(loader), ids(loader)]

    first = epochs(0)
    assert first == epochs(0)
    assert first[0] != first[1]  # a new order every epoch
    assert sorted(first[0]) == sorted(ex.prompt_id for ex in synthetic(40, "Train"))
    assert epochs(1) != first


def test_shuffle_seed_defaults_to_the_global_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    L.seed_everything(3, verbose=False)
    dm = RoutingDataModule(config(tmp_path), CharInputs(), splits=synthetic_splits())
    explicit = RoutingDataModule(config(tmp_path), CharInputs(), splits=synthetic_splits(), seed=3)
    assert ids(dm.train_dataloader()) == ids(explicit.train_dataloader())


def test_second_setup_reads_the_cache(tmp_path: Path) -> None:
    first = CharInputs()
    dm = RoutingDataModule(config(tmp_path, family="code"), first)
    dm.setup(None)
    n_items = dm.train_size + dm.val_size + sum(len(v) for v in dm.test_examples.values())
    assert first.calls >= n_items
    files = sorted(p.name for p in (tmp_path / "cache" / "features").iterdir())
    assert len(files) == 4 and all(name.endswith(".arrow") for name in files)  # no temporary leftovers
    assert dm.cache_file("train").name in files and dm.cache_file("test:HumanEval").name in files

    again = CharInputs()
    dm2 = RoutingDataModule(config(tmp_path, family="code"), again)
    dm2.setup(None)
    assert again.calls == 0
    assert ids(dm2.val_dataloader()) == ids(dm.val_dataloader())
    assert [b["prompt_chars"].tolist() for b in dm2.test_dataloader()[1]] == [
        b["prompt_chars"].tolist() for b in dm.test_dataloader()[1]
    ]


def test_changed_fingerprint_refeaturises(tmp_path: Path) -> None:
    dm = RoutingDataModule(config(tmp_path), CharInputs(0), splits=synthetic_splits())
    dm.setup("validate")
    other = CharInputs(100)
    dm2 = RoutingDataModule(config(tmp_path), other, splits=synthetic_splits())
    dm2.setup("validate")
    assert other.calls >= dm2.val_size
    assert dm2.cache_file("val") != dm.cache_file("val")
    chars = [b["prompt_chars"] for b in dm.val_dataloader()]
    chars2 = [b["prompt_chars"] for b in dm2.val_dataloader()]
    assert [(c + 100).tolist() for c in chars] == [c.tolist() for c in chars2]


def test_changed_content_refeaturises(tmp_path: Path) -> None:
    splits = synthetic_splits()
    dm = RoutingDataModule(config(tmp_path), CharInputs(), splits=splits)
    dm.setup("validate")
    edited = RoutingSplits(
        train=splits.train,
        val=[*splits.val[:-1], RoutingExample("Val-6", "changed", ("a",) * 5, (0.0,) * 5, "Val")],
        test=splits.test,
    )
    assert content_hash(edited.val) != content_hash(splits.val)
    inputs = CharInputs()
    dm2 = RoutingDataModule(config(tmp_path), inputs, splits=edited)
    dm2.setup("validate")
    assert inputs.calls >= len(edited.val)


def test_setup_featurises_only_what_the_stage_needs(tmp_path: Path) -> None:
    inputs = CharInputs()
    dm = RoutingDataModule(config(tmp_path), inputs, splits=synthetic_splits())
    dm.setup("test")
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "cache" / "features").iterdir()) == ["test", "test"]


def test_empty_validation_split(tmp_path: Path) -> None:
    splits = synthetic_splits()
    splits.val = []
    dm = RoutingDataModule(config(tmp_path), CharInputs(), splits=splits)
    dm.setup("fit")
    assert list(dm.val_dataloader()) == []


def test_unresolved_paths_are_reported() -> None:
    dm = RoutingDataModule(DataConfig(), CharInputs(), splits=synthetic_splits())
    with pytest.raises(LookaheadError, match=r"data\.cache_dir"):
        dm.setup("fit")


class _Probe(L.LightningModule):
    """Records what Lightning hands each step, to check the loaders under a real Trainer."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 5)
        self.seen: dict[int, list[str]] = {}
        self.trained: list[list[str]] = []

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        self.trained.append(batch["prompt_id"])
        logits = self.layer(batch["prompt_chars"].float()[:, None])
        return torch.nn.functional.mse_loss(logits, batch["scores"])

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits = self.layer(batch["prompt_chars"].float()[:, None])
        loss = torch.nn.functional.mse_loss(logits, batch["scores"])
        self.log("val_loss", loss, batch_size=len(batch["prompt_id"]))

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self.seen.setdefault(dataloader_idx, []).extend(batch["prompt_id"])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def test_runs_under_a_trainer(tmp_path: Path) -> None:
    dm = RoutingDataModule(config(tmp_path), CharInputs(), splits=synthetic_splits(), seed=0)
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    probe = _Probe()
    trainer.fit(probe, datamodule=dm)
    trainer.test(probe, datamodule=dm, verbose=False)
    assert probe.seen == {i: [ex.prompt_id for ex in dm.test_examples[n]] for i, n in enumerate(dm.test_names)}


def _fit_every_step(tmp_path: Path, run: Path, ckpt: Path | None = None) -> list[list[str]]:
    """3 epochs of 20 batches with a checkpoint at every step (``step=N.ckpt``); the batches trained, in order."""
    dm = RoutingDataModule(config(tmp_path), CharInputs(), splits=synthetic_splits(), seed=0)
    save = ModelCheckpoint(dirpath=run, filename="{step}", every_n_train_steps=1, save_top_k=-1)
    trainer = L.Trainer(
        max_epochs=3,
        accelerator="cpu",
        devices=1,
        logger=False,
        callbacks=[save],
        val_check_interval=7,
        num_sanity_val_steps=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=run,
    )
    probe = _Probe()
    trainer.fit(probe, datamodule=dm, ckpt_path=ckpt)
    return probe.trained


def test_a_resume_from_any_checkpoint_trains_what_the_unbroken_run_trains(tmp_path: Path) -> None:
    """Checkpoints mid-epoch, right after a mid-epoch validation, at an epoch's end and in a later epoch: each
    resume takes the unbroken run's remaining batches, none twice and none skipped."""
    unbroken = _fit_every_step(tmp_path, tmp_path / "unbroken")
    assert len(unbroken) == 60  # 3 epochs of 20 batches
    every_id = sorted(ex.prompt_id for ex in synthetic(40, "Train"))
    assert all(sorted(i for batch in unbroken[e * 20 : (e + 1) * 20] for i in batch) == every_id for e in range(3))
    for step in (3, 7, 20, 27):
        resumed = _fit_every_step(tmp_path, tmp_path / f"from{step}", tmp_path / "unbroken" / f"step={step}.ckpt")
        assert resumed == unbroken[step:], f"resumed from step {step}"


def test_a_checkpoint_without_the_data_order_continues_the_seeds_order(tmp_path: Path) -> None:
    """A checkpoint written before the loader saved its state (older runs) resumes from the trainer's own batch count:
    mid-epoch and at an epoch's end it trains what the unbroken run trains, and says that it assumed the order."""
    unbroken = _fit_every_step(tmp_path, tmp_path / "unbroken")
    for step in (3, 20, 27):
        ckpt = torch.load(tmp_path / "unbroken" / f"step={step}.ckpt", weights_only=False)
        del ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"]
        old = tmp_path / f"old{step}.ckpt"
        torch.save(ckpt, old)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            resumed = _fit_every_step(tmp_path, tmp_path / f"from_old{step}", old)
        assert resumed == unbroken[step:], f"resumed from step {step}"
        said = [str(w.message) for w in caught if "holds no data order" in str(w.message)]
        epoch, taken = divmod(step, 20) if step % 20 else (step // 20 - 1, 20)
        assert len(said) == 1 and f"at epoch {epoch + 1} after {taken} batches" in said[0], (step, said)


@pytest.mark.real_data
def test_real_code_family(tmp_path: Path, real_data: Path) -> None:
    cfg = config(tmp_path, family="code", data_dir=str(real_data))
    cfg.batch_size = 64
    cfg.eval_batch_size = 128
    dm = RoutingDataModule(cfg, CharInputs(), seed=0)
    dm.setup(None)
    assert dm.train_size == 3335 and dm.val_size == 1000
    assert sum(len(b["prompt_id"]) for b in dm.train_dataloader()) == 3335
    assert [len(ids(loader)) for loader in dm.test_dataloader()] == [164, 257]


_SECOND_PROCESS = """
import sys
from lightning_lookahead.data.config import DataConfig
from lightning_lookahead.data.datamodule import RoutingDataModule

class CharInputs:
    calls = 0
    def featurize(self, example):
        CharInputs.calls += 1
        return {"prompt_chars": len(example["prompt"]), "response_chars": [len(r) for r in example["responses"]]}
    fingerprint = "chars-v1:offset=0"
    def collate(self, features, train=False):
        return features

cfg = DataConfig(family="code", data_dir=sys.argv[1], cache_dir=sys.argv[2])
dm = RoutingDataModule(cfg, CharInputs())
dm.setup(None)
row = dm.test_dataloader()[0].dataset[0]
print(CharInputs.calls, row["prompt_chars"])
"""


@pytest.mark.slow
def test_cache_is_reused_by_a_new_process(tmp_path: Path) -> None:
    """Cache names must not depend on per-process state (hash seeds, object ids)."""
    inputs = CharInputs()
    dm = RoutingDataModule(config(tmp_path, family="code"), inputs)
    dm.setup(None)
    assert inputs.calls > 0
    script = tmp_path / "second.py"
    script.write_text(textwrap.dedent(_SECOND_PROCESS))
    env = {**os.environ, "PYTHONHASHSEED": "12345", "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, str(script), str(FIXTURE_ROOT), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    calls, chars = out.stdout.split()
    assert int(calls) == 0
    assert int(chars) == len(dm.test_examples["HumanEval"][0].prompt)
