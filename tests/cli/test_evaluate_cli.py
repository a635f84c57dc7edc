"""`lookahead evaluate` end to end on the real data, pinned to METHOD.md §12, plus its bad-input paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lightning_lookahead.cli import main
from lightning_lookahead.data.schema import BENCHMARKS, PAPER_CANDIDATES

# METHOD.md §12: (AE raw WR, Arena-Hard, MT-Bench ×10, GSM8k, MATH, HumanEval, MBPP), from the shipped test data.
REFERENCE = {
    "fixed:Yi-1.5-34B-Chat": (43.58, 44.09, 78.12, 88.40, 51.90, 69.51, 70.82),
    "fixed:internlm2_5-20b-chat": (44.38, 28.30, 74.75, 89.84, 62.22, 72.56, 68.87),
    "fixed:Phi-3-medium-4k-instruct": (24.29, 33.34, 79.88, 89.08, 44.50, 74.39, 68.87),
    "fixed:Llama-3.1-8B-Instruct": (28.07, 21.22, 76.94, 81.65, 44.66, 62.20, 68.09),
    "fixed:Qwen2.5-Coder-7B-Instruct": (13.44, 35.14, 75.38, 85.75, 61.24, 87.20, 82.88),
    "oracle": (64.47, 77.09, 90.00, 97.50, 77.80, 93.90, 92.61),
}
RANDOM_MEAN_OF_SEEDS_0_TO_4 = (30.47, 31.58, 77.08, 86.90, 52.89, 72.80, 73.54)


def _row(result: dict) -> tuple[float, ...]:
    res = result["results"]
    return (
        res["AlpacaEval"]["win_rate"],
        res["ArenaHard"]["score"],
        10 * res["MT-Bench"]["score"],
        res["GSM8k"]["accuracy"],
        res["MATH"]["accuracy"],
        res["HumanEval"]["accuracy"],
        res["MBPP"]["accuracy"],
    )


@pytest.fixture(scope="module")
def all_baselines(real_data: Path, tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("eval")
    args = ["evaluate", "--data-dir", str(real_data), "--router", "oracle", "--router", "fixed:all"]
    args += [arg for seed in range(5) for arg in ("--router", f"random:{seed}")]
    args += ["--json", str(out / "r.json"), "--markdown", str(out / "r.md")]
    assert main(args) == 0
    assert (
        "| oracle | 64.47 / 100.0 | n/a | 77.09 / 100.0 | 90.00 / 100.0 | 97.50 / 100.0 | 77.80 / 100.0 | "
        "93.90 / 100.0 | 92.61 / 100.0 | 84.77 | 100.0 |" in (out / "r.md").read_text()
    )
    return json.loads((out / "r.json").read_text())


def test_fixed_and_oracle_reproduce_the_reference_table(all_baselines):
    by_name = {run["router"]: run for run in all_baselines}
    for router, expected in REFERENCE.items():
        assert _row(by_name[router]) == pytest.approx(expected, abs=0.006), router


# ../shared/PAPER.md Table 1: the single models' µn where our oracle and random equal the paper's (Arena-Hard, GSM8K,
# MATH, HumanEval, MBPP; AlpacaEval differs by LC vs raw WR, MT-Bench by the oracle 9.00 vs 8.79).
PAPER_MU_N = {
    "fixed:Yi-1.5-34B-Chat": (26.1, 13.8, -4.0, -17.7, -5.2),
    "fixed:internlm2_5-20b-chat": (-9.2, 27.4, 37.4, -3.0, -14.7),
    "fixed:Phi-3-medium-4k-instruct": (2.1, 20.2, -33.8, 5.9, -14.7),
    "fixed:Llama-3.1-8B-Instruct": (-25.1, -50.2, -33.1, -52.9, -18.4),
    "fixed:Qwen2.5-Coder-7B-Instruct": (6.1, -11.3, 33.5, 67.7, 53.0),
}


def test_single_model_mu_n_reproduces_the_papers_table_1(all_baselines):
    by_name = {run["router"]: run for run in all_baselines}
    for router, expected in PAPER_MU_N.items():
        res = by_name[router]["results"]
        got = tuple(res[b]["mu_n"] for b in ("ArenaHard", "GSM8k", "MATH", "HumanEval", "MBPP"))
        assert got == pytest.approx(expected, abs=0.1), router  # the paper prints one decimal
    assert by_name["oracle"]["avg_mu_n"] == pytest.approx(100.0)
    assert by_name["fixed:Yi-1.5-34B-Chat"]["results"]["AlpacaEval"]["mu_n_metric"] == "win_rate"  # offline: no LC


def test_random_mean_over_five_seeds_matches_reference(all_baselines):
    rows = [_row(run) for run in all_baselines if run["router"].startswith("random:")]
    assert len(rows) == 5
    means = tuple(sum(col) / 5 for col in zip(*rows, strict=True))
    assert means == pytest.approx(RANDOM_MEAN_OF_SEEDS_0_TO_4, abs=0.011)


def test_json_shape(all_baselines):
    run = all_baselines[0]
    assert run["router"] == "oracle" and list(run["results"]) == list(BENCHMARKS)
    for bench, metrics in run["results"].items():
        assert set(metrics["picks"]) == set(PAPER_CANDIDATES), bench
        assert sum(metrics["picks"].values()) == pytest.approx(1.0)
    ae = run["results"]["AlpacaEval"]
    assert ae["n"] == 805 and "lc_win_rate" in ae
    if ae["lc_win_rate"] is None:
        assert ae["lc_unavailable_reason"]
    assert run["results"]["ArenaHard"]["n"] == 499
    assert {"turn_1", "turn_2", "score"} <= set(run["results"]["MT-Bench"])
    assert run["results"]["MBPP"]["routing_accuracy"] == 100.0


def test_single_router_json_is_one_object(real_data, tmp_path):
    out = tmp_path / "one.json"
    assert (
        main(
            [
                "evaluate",
                "--data-dir",
                str(real_data),
                "--router",
                "fixed:Qwen2.5-Coder-7B-Instruct",
                "--benchmarks",
                "HumanEval,MBPP",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    payload = json.loads(out.read_text())
    assert payload["router"] == "fixed:Qwen2.5-Coder-7B-Instruct"
    assert payload["results"]["HumanEval"]["accuracy"] == pytest.approx(87.20, abs=0.006)
    assert payload["results"]["MBPP"]["picks"]["Qwen2.5-Coder-7B-Instruct"] == 1.0


def test_candidate_pool_with_an_extra_model(real_data):
    from lightning_lookahead.data.benchmarks import load_benchmark
    from lightning_lookahead.evaluation import evaluate_router
    from lightning_lookahead.routers.base import FixedRouter

    pool = (*PAPER_CANDIDATES, "gemma-2-9b-it")
    examples = {"HumanEval": load_benchmark("HumanEval", real_data, pool)}
    run = evaluate_router(FixedRouter("gemma-2-9b-it"), examples, pool)
    assert run["results"]["HumanEval"]["picks"]["gemma-2-9b-it"] == 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--router", "orcale"], "unknown router 'orcale'; did you mean 'oracle'?"),
        (["--router", "fixed:Yi-1.5-34B"], "did you mean 'Yi-1.5-34B-Chat'?"),
        (["--router", "random:x"], "the seed after 'random:' must be an integer"),
        (["--benchmarks", "GSM8K"], "unknown benchmark 'GSM8K'; did you mean 'GSM8k'?"),
        (["--candidates", "Yi-1.5-34B-Chat,Llama-3.1-8B-Instruc"], "did you mean 'Llama-3.1-8B-Instruct'?"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(real_data, tmp_path, capsys, args, message):
    out = tmp_path / "never.json"
    code = main(["evaluate", "--data-dir", str(real_data), "--benchmarks", "MT-Bench", *args, "--json", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert not out.exists()


def test_missing_data_dir_says_how_to_fetch(tmp_path, capsys):
    assert main(["evaluate", "--data-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere does not exist" in err and "lookahead data fetch" in err


def test_debug_shows_the_traceback(tmp_path):
    from lightning_lookahead.errors import LookaheadError

    with pytest.raises(LookaheadError):
        main(["--debug", "evaluate", "--data-dir", str(tmp_path / "nowhere")])


def test_data_check_reports_sizes_and_unavailable_train_sets(real_data, capsys):
    assert main(["data", "check", "--data-dir", str(real_data)]) == 0
    out = capsys.readouterr().out
    assert "MATH" in out and "5000 items" in out
    assert "SelfOSSInstructSC2_filtered2" in out and "3335 train / 1000 validation" in out
    assert "UltraFeedback" in out and "unavailable" in out


def test_fetch_cli_strict_fails_on_missing_files(real_data, tmp_path, capsys, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "test").mkdir(parents=True)
    only = ["--only", "test/MT-Bench/question.jsonl.gz"]
    assert (
        main(["data", "fetch", "--mirror", str(mirror), "--data-dir", str(tmp_path / "d"), "--no-progress", *only]) == 0
    )
    assert "1 missing from the source" in capsys.readouterr().out
    code = main(
        [
            "data",
            "fetch",
            "--mirror",
            str(mirror),
            "--data-dir",
            str(tmp_path / "d"),
            "--no-progress",
            "--strict",
            *only,
        ]
    )
    assert code == 2 and "missing" in capsys.readouterr().err
