"""Split protocols on the fixture tree (exact contents) and on the shipped data (paper sizes, kfold folds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lightning_lookahead.data.benchmarks import load_benchmark, load_eval_ids, load_train_set, split_train_val
from lightning_lookahead.data.config import DataConfig, KFoldConfig
from lightning_lookahead.data.families import FAMILY_BENCHMARKS, FAMILY_TRAIN_SETS
from lightning_lookahead.data.schema import TRAIN_SETS, RoutingExample
from lightning_lookahead.data.splits import RoutingSplits, make_splits
from lightning_lookahead.errors import LookaheadError

SELFOSS = "SelfOSSInstructSC2_filtered2"
OPENMATH = "OpenMathInstruct2_filtered2"


def keys(items: list[RoutingExample]) -> list[tuple[str, str]]:
    return [(ex.benchmark, ex.prompt_id) for ex in items]


def all_test(splits: RoutingSplits) -> list[tuple[str, str]]:
    return [k for items in splits.test.values() for k in keys(items)]


def kfold(family: str, k: int = 3, fold: int = 0, seed: int = 42, val_fraction: float = 0.1, **kw) -> DataConfig:
    return DataConfig(
        family=family, protocol="kfold", kfold=KFoldConfig(k=k, fold=fold, seed=seed, val_fraction=val_fraction), **kw
    )


# --------------------------------------------------------------------------- paper protocol, fixtures


def test_paper_code_on_fixtures(fixture_root: Path) -> None:
    splits = make_splits(DataConfig(family="code"), fixture_root)
    expected_train, expected_val = split_train_val(
        load_train_set(SELFOSS, fixture_root), load_eval_ids(SELFOSS, fixture_root)
    )
    assert keys(splits.train) == keys(expected_train)
    assert keys(splits.val) == keys(expected_val)
    assert [ex.prompt_id for ex in splits.val] == load_eval_ids(SELFOSS, fixture_root)
    assert splits.test_names == ["HumanEval", "MBPP"]
    for name in splits.test_names:
        assert keys(splits.test[name]) == keys(load_benchmark(name, fixture_root))
    assert not splits.test_capped


def test_paper_all_concatenates_in_family_order(fixture_root: Path) -> None:
    splits = make_splits(DataConfig(family="all"), fixture_root)
    order = list(dict.fromkeys(ex.benchmark for ex in splits.train))
    assert order == list(FAMILY_TRAIN_SETS["all"])
    assert list(dict.fromkeys(ex.benchmark for ex in splits.val)) == list(FAMILY_TRAIN_SETS["all"])
    assert splits.test_names == list(FAMILY_BENCHMARKS["all"])


def test_paper_keeps_tied_training_prompts(data_copy: Path) -> None:
    """All-equal scores carry no routing signal, but the paper trains on them; so do we."""
    train_ids = [ex.prompt_id for ex in make_splits(DataConfig(family="code"), data_copy).train]
    tied = train_ids[0]
    for path in (data_copy / "train" / SELFOSS / TRAIN_SETS[SELFOSS]).glob("*.jsonl"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for row in rows:
            if row["prompt_id"] == tied:
                row["score"] = 0.5
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    splits = make_splits(DataConfig(family="code"), data_copy)
    assert [ex.prompt_id for ex in splits.train] == train_ids
    assert len(set(splits.train[0].scores)) == 1


def test_paper_missing_training_files_name_them_and_kfold(data_copy: Path) -> None:
    score_dir = data_copy / "train" / OPENMATH / TRAIN_SETS[OPENMATH]
    for path in score_dir.glob("*.jsonl"):
        path.unlink()
    with pytest.raises(LookaheadError) as err:
        make_splits(DataConfig(family="math"), data_copy)
    message = str(err.value)
    assert f"train/{OPENMATH}/{TRAIN_SETS[OPENMATH]}/Yi-1.5-34B-Chat.jsonl" in message
    assert "data.protocol=kfold" in message
    make_splits(kfold("math"), data_copy)  # the suggested alternative works


def test_missing_benchmark_file_is_reported(data_copy: Path) -> None:
    (data_copy / "test" / "MBPP" / "results" / "Yi-1.5-34B-Chat.json").unlink()
    with pytest.raises(LookaheadError, match=r"test/MBPP/results/Yi-1\.5-34B-Chat\.json"):
        make_splits(DataConfig(family="code"), data_copy)


def test_missing_data_dir(tmp_path: Path) -> None:
    with pytest.raises(LookaheadError, match=r"data\.data_dir"):
        make_splits(DataConfig(), tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("field", "value", "key", "hint"),
    [("family", "cod", "data.family", "'code'"), ("protocol", "kfolds", "data.protocol", "'kfold'")],
)
def test_unknown_names_suggest(fixture_root: Path, field: str, value: str, key: str, hint: str) -> None:
    with pytest.raises(LookaheadError) as err:
        make_splits(DataConfig(**{field: value}), fixture_root)
    assert key in str(err.value) and f"did you mean {hint}" in str(err.value)


@pytest.mark.parametrize(
    ("kf", "key"),
    [
        (KFoldConfig(k=3, fold=3), "data.kfold.fold"),
        (KFoldConfig(k=3, fold=-1), "data.kfold.fold"),
        (KFoldConfig(k=1, fold=0), "data.kfold.k"),
        (KFoldConfig(k=3, val_fraction=1.0), "data.kfold.val_fraction"),
        (KFoldConfig(k=5, fold=0), "data.kfold.k"),  # fixture benchmarks hold 3 items: fewer than 5 folds
    ],
)
def test_kfold_settings_are_validated(fixture_root: Path, kf: KFoldConfig, key: str) -> None:
    with pytest.raises(LookaheadError, match=key.replace(".", r"\.")):
        make_splits(DataConfig(family="code", protocol="kfold", kfold=kf), fixture_root)


@pytest.mark.parametrize(("field", "value"), [("max_train_prompts", 0), ("max_eval_prompts", -3)])
def test_caps_are_validated(fixture_root: Path, field: str, value: int) -> None:
    with pytest.raises(LookaheadError, match=f"data.{field}"):
        make_splits(DataConfig(**{field: value}), fixture_root)


# --------------------------------------------------------------------------- kfold protocol, fixtures


def test_kfold_folds_partition_and_stratify(fixture_root: Path) -> None:
    k = 3
    pooled = {name: keys(load_benchmark(name, fixture_root)) for name in FAMILY_BENCHMARKS["all"]}
    everything = [key for items in pooled.values() for key in items]
    empty = {
        (ex.benchmark, ex.prompt_id)
        for name in pooled
        for ex in load_benchmark(name, fixture_root)
        if "" in ex.responses
    }
    assert empty  # the fixtures hold one (MT-Bench), so the rule is exercised
    dropped_somewhere = False
    seen: list[tuple[str, str]] = []
    for fold in range(k):
        splits = make_splits(kfold("all", k=k, fold=fold, val_fraction=0.2), fixture_root)
        test, train, val = all_test(splits), keys(splits.train), keys(splits.val)
        assert splits.test_names == list(FAMILY_BENCHMARKS["all"])
        for name, items in splits.test.items():  # stratified: every fold tests every benchmark, evenly
            n = len(pooled[name])
            assert n // k <= len(items) <= -(-n // k)
            assert all(ex.benchmark == name for ex in items)
            assert keys(items) == [key for key in pooled[name] if key in set(keys(items))]  # file order kept
        assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
        dropped = set(everything) - set(train + val + test)
        assert dropped <= empty  # only training prompts with an empty response are dropped (paper rule)
        assert len(val) == round(0.2 * (len(everything) - len(test)))
        dropped_somewhere |= bool(dropped)
        seen += test
    assert sorted(seen) == sorted(everything) and len(set(seen)) == len(seen)
    assert dropped_somewhere


def test_kfold_is_deterministic(fixture_root: Path) -> None:
    a = make_splits(kfold("all"), fixture_root)
    b = make_splits(kfold("all"), fixture_root)
    assert (keys(a.train), keys(a.val), all_test(a)) == (keys(b.train), keys(b.val), all_test(b))


def test_kfold_zero_val_fraction(fixture_root: Path) -> None:
    splits = make_splits(kfold("code", val_fraction=0.0), fixture_root)
    assert splits.val == [] and len(splits.train) == 4


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def real_code_paper(real_data: Path) -> RoutingSplits:
    return make_splits(DataConfig(family="code"), real_data)


@pytest.mark.real_data
def test_real_paper_code_sizes(real_code_paper: RoutingSplits, real_data: Path) -> None:
    assert len(real_code_paper.train) == 3335
    assert len(real_code_paper.val) == 1000
    assert {name: len(items) for name, items in real_code_paper.test.items()} == {"HumanEval": 164, "MBPP": 257}
    assert {ex.prompt_id for ex in real_code_paper.val} == set(load_eval_ids(SELFOSS, real_data))
    assert real_code_paper.summary() == "train 3335, val 1000, test HumanEval 164, MBPP 257"


@pytest.mark.real_data
def test_real_paper_math_needs_kfold(real_data: Path) -> None:
    with pytest.raises(LookaheadError) as err:
        make_splits(DataConfig(family="math"), real_data)
    message = str(err.value)
    assert f"train/{OPENMATH}/{TRAIN_SETS[OPENMATH]}/Qwen2.5-Coder-7B-Instruct.jsonl" in message
    assert "data.protocol=kfold" in message


@pytest.mark.real_data
def test_real_kfold_code(real_data: Path) -> None:
    k = 5
    folds = [make_splits(kfold("code", k=k, fold=f), real_data) for f in range(k)]
    for name, n in {"HumanEval": 164, "MBPP": 257}.items():
        sizes = [len(s.test[name]) for s in folds]
        assert sum(sizes) == n and max(sizes) - min(sizes) <= 1
        ids = [ex.prompt_id for s in folds for ex in s.test[name]]
        assert len(set(ids)) == n
    first = folds[0]
    assert len(first.val) == round(0.1 * (421 - len(all_test(first))))
    assert not set(keys(first.train)) & set(keys(first.val))
    # per-benchmark validation share follows the pool (stratified)
    val_he = sum(ex.benchmark == "HumanEval" for ex in first.val)
    rest_he, rest = 164 - len(first.test["HumanEval"]), 421 - len(all_test(first))
    assert abs(val_he - len(first.val) * rest_he / rest) <= 1
    again = make_splits(kfold("code", k=k, fold=0), real_data)
    assert all_test(again) == all_test(first) and keys(again.val) == keys(first.val)
    other = make_splits(kfold("code", k=k, fold=0, seed=7), real_data)
    assert all_test(other) != all_test(first) and keys(other.val) != keys(first.val)


@pytest.mark.real_data
def test_real_kfold_benchmark_folds_do_not_depend_on_family(real_data: Path) -> None:
    """A benchmark's fold is a function of (seed, benchmark, item) only, so code and all agree on HumanEval."""
    code = make_splits(kfold("code", k=5, fold=2), real_data)
    every = make_splits(kfold("all", k=5, fold=2), real_data)
    assert keys(code.test["HumanEval"]) == keys(every.test["HumanEval"])


@pytest.mark.real_data
def test_real_caps(real_data: Path) -> None:
    full = make_splits(kfold("code"), real_data)
    capped = make_splits(kfold("code", max_train_prompts=50, max_eval_prompts=20), real_data)
    assert len(capped.train) == 50 and len(capped.val) == 20
    assert {name: len(items) for name, items in capped.test.items()} == {"HumanEval": 20, "MBPP": 20}
    assert capped.test_capped and "not comparable" in capped.summary()
    for sub, whole in [
        (capped.train, full.train),
        (capped.val, full.val),
        *zip(capped.test.values(), full.test.values(), strict=True),
    ]:
        assert keys(sub) == [key for key in keys(whole) if key in set(keys(sub))]  # a subset, order kept
    again = make_splits(kfold("code", max_train_prompts=50, max_eval_prompts=20), real_data)
    assert keys(again.train) == keys(capped.train) and all_test(again) == all_test(capped)
    other = make_splits(kfold("code", max_train_prompts=50, max_eval_prompts=20, subset_seed=1), real_data)
    assert keys(other.train) != keys(capped.train)


def test_caps_larger_than_splits_change_nothing(fixture_root: Path) -> None:
    full = make_splits(DataConfig(family="code"), fixture_root)
    capped = make_splits(DataConfig(family="code", max_train_prompts=100, max_eval_prompts=100), fixture_root)
    assert keys(capped.train) == keys(full.train) and all_test(capped) == all_test(full)
    assert not capped.test_capped
