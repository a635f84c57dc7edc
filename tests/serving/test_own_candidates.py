"""Serving and calibrating a router trained on one's own models, whose names no price table knows.

docs/own-models.md, step 6 verbatim: ``lookahead serve --checkpoint runs/mine --backends endpoints.yaml`` for a
router over ``mathbot``, ``codebot`` and ``chatbot``. The commands run in process (``lookahead serve``'s
``serving.serve`` is swapped for one that keeps the spec its options became, and the test serves that spec as every
worker does: ``build_app(spec)`` on a real uvicorn, the router loaded in the app's lifespan); the client is the real
``openai`` one, the backends the stub of the server tests.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest
from own_dataset_kit import BEST, TOPICS, rows, train_mlc_router
from stub_backend import create_stub_app, running

from lightning_lookahead import serving
from lightning_lookahead.cli import main
from lightning_lookahead.serving.launch import ServeSpec, build_app

#: The kit's candidates under names of one's own (none of them in the shipped price table).
RENAME = {"frontier-api": "mathbot", "coder-7b": "codebot", "local-llama": "chatbot"}
CANDIDATES = ["mathbot", "chatbot", "codebot"]  # the order the dataset first names them
#: Recorded completion tokens per candidate in the kit's rows (20 + the candidate's index there).
RECORDED = {"mathbot": 20.0, "chatbot": 21.0, "codebot": 22.0}
CODE_PROMPT = "fix this python class 7"
START_S = 30


def _renamed(row: dict) -> dict:
    out = dict(row)
    for key in ("responses", "scores", "tokens"):
        out[key] = {RENAME[c]: v for c, v in row[key].items()}
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLC router on the tiny BERT, trained on the kit's 3-domain dataset with the candidates renamed."""
    items = [_renamed(r) for r in rows(24)]
    return train_mlc_router(tmp_path_factory.mktemp("own-candidates"), items, epochs=5, lr=0.01)


@pytest.fixture(scope="module")
def stub_url() -> Iterator[str]:
    with running(create_stub_app()) as url:
        yield url


def endpoints(directory: Path, stub_url: str, costs: dict[str, float]) -> Path:
    """A backends file for the three candidates on the stub; ``costs`` (USD per request) on the ones it names."""
    path = directory / "endpoints.yaml"
    lines = ["backends:"]
    for name in CANDIDATES:
        cost = f", cost: {costs[name]}" if name in costs else ""
        lines.append(f"  {name}: {{base_url: '{stub_url}/{name}/v1'{cost}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def own_prices(directory: Path, names: list[str]) -> Path:
    path = directory / "my_prices.yaml"
    path.write_text("models:\n" + "".join(f"  {n}: {{input: 1.0, output: 2.0}}\n" for n in names))
    return path


def serve_spec(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> ServeSpec:
    """What ``lookahead <argv>`` hands ``serving.serve`` (after its own checks), without blocking on a port."""
    specs: list[ServeSpec] = []
    monkeypatch.setattr(serving, "serve", specs.append)
    assert main(argv) == 0
    (spec,) = specs
    return spec


@contextmanager
def served(spec: ServeSpec) -> Iterator[openai.OpenAI]:
    """The spec served as one worker of ``lookahead serve`` does, once ``/ready``; an openai client for it."""
    failures: list[str] = []
    with running(build_app(spec, on_load_error=failures.append)) as url:
        deadline = time.monotonic() + START_S
        while httpx.get(f"{url}/ready", timeout=10).status_code != 200:
            assert not failures, failures
            assert time.monotonic() < deadline, "the router did not load"
            time.sleep(0.05)
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10.0)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def answered_by(client: openai.OpenAI, model: str, text: str = CODE_PROMPT) -> str:
    reply = client.chat.completions.create(model=model, messages=user(text))
    return reply.choices[0].message.content.partition("|")[0]


def startup_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "have no cost" in r.getMessage()]


def test_the_export_carries_the_datasets_recorded_response_lengths(trained: Path) -> None:
    meta = json.loads((trained / "export" / "router.json").read_text())
    assert meta["candidates"] == CANDIDATES
    assert meta["response_tokens"] == pytest.approx(RECORDED)  # the endpoints' counts, not a tokenizer's


def test_step_6_verbatim_with_a_cost_on_every_backend(trained, stub_url, tmp_path, monkeypatch, caplog) -> None:
    caplog.set_level(logging.INFO, logger="lightning_lookahead.serving")
    costs = {"mathbot": 1e-2, "codebot": 1e-3, "chatbot": 1e-4}  # USD per request: 10, 1 and 0.1 per 1,000
    backends = endpoints(tmp_path, stub_url, costs)
    spec = serve_spec(monkeypatch, ["serve", "--checkpoint", str(trained), "--backends", str(backends)])
    with served(spec) as client:
        assert answered_by(client, "router") == RENAME[BEST["code"]] == "codebot"
        assert answered_by(client, "router:λ=0") == "codebot"
        assert answered_by(client, "router:λ=10") == "chatbot"  # 1 − 10·(1 − 0.1) < 0: the cheapest wins
        assert answered_by(client, "mathbot") == "mathbot"
    assert startup_lines(caplog) == []


def test_step_6_verbatim_without_any_cost(trained, stub_url, tmp_path, monkeypatch, caplog) -> None:
    caplog.set_level(logging.INFO, logger="lightning_lookahead.serving")
    backends = endpoints(tmp_path, stub_url, {})
    spec = serve_spec(monkeypatch, ["serve", "--checkpoint", str(trained), "--backends", str(backends)])
    with served(spec) as client:
        assert answered_by(client, "router") == "codebot"
        assert answered_by(client, "chatbot") == "chatbot"
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="router:λ=0.5", messages=user(CODE_PROMPT))
        health = httpx.get(str(client.base_url).replace("/v1/", "/health"), timeout=10).json()
    assert info.value.code == "costs_not_configured"
    assert "'mathbot', 'chatbot', 'codebot' (not in the shipped price table) have none" in info.value.message
    assert "--prices FILE" in info.value.message
    assert health["cost_aware"] is False
    (line,) = startup_lines(caplog)
    assert line.startswith("3 of 3 candidates have no cost: 'mathbot', 'chatbot', 'codebot' (not in the shipped")
    assert "router:λ=... answers 400 costs_not_configured" in line


def test_a_cost_on_some_backends_and_prices_for_the_rest(trained, stub_url, tmp_path, monkeypatch, caplog) -> None:
    caplog.set_level(logging.INFO, logger="lightning_lookahead.serving")
    backends = endpoints(tmp_path, stub_url, {"mathbot": 1e-2, "codebot": 1e-3})
    argv = ["serve", "--checkpoint", str(trained), "--backends", str(backends)]
    with served(serve_spec(monkeypatch, argv)) as client:
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="router:λ=0.5", messages=user(CODE_PROMPT))
        assert answered_by(client, "router") == "codebot"
    assert info.value.code == "costs_not_configured" and "'chatbot' (not in the shipped price table) has none" in (
        info.value.message
    )
    (line,) = startup_lines(caplog)
    assert line.startswith("1 of 3 candidates have no cost: 'chatbot' (not in the shipped price table)")

    caplog.clear()
    prices = own_prices(tmp_path, ["chatbot"])  # 2 USD per 1M output tokens × 21 recorded tokens: 0.042 per 1,000
    with served(serve_spec(monkeypatch, [*argv, "--prices", str(prices)])) as client:
        assert answered_by(client, "router:λ=10") == "chatbot"
    assert startup_lines(caplog) == []


def test_a_missing_price_file_is_one_line_before_the_router_loads(trained, stub_url, tmp_path, capsys) -> None:
    backends = endpoints(tmp_path, stub_url, {})
    argv = ["serve", "--checkpoint", str(trained), "--backends", str(backends), "--prices", str(tmp_path / "no.yaml")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"error: price file {tmp_path / 'no.yaml'} not found\n"


# --- lookahead calibrate ----------------------------------------------------------------------------------------


@pytest.fixture()
def run(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained run (calibrate writes calibrations.json into it)."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


@pytest.fixture()
def prompt_log(tmp_path: Path) -> Path:
    path = tmp_path / "log.jsonl"
    prompts = [f"{p} {i}" for i in range(20) for p in (TOPICS["code"][i % 3], TOPICS["math"][i % 3], "say hi")]
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    return path


def suggested_serve(out: str) -> list[str]:
    match = re.search(r"^serve: `([^`]+)`", out, re.MULTILINE)
    assert match, out
    return shlex.split(match[1])


def test_calibrate_without_costs_says_how_to_give_them(run, prompt_log, capsys) -> None:
    argv = ["calibrate", "--checkpoint", str(run), "--prompts", str(prompt_log), "--target-share", "codebot=0.2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "error: no cost for 'mathbot', 'chatbot', 'codebot' (not in the shipped price table): "
    )
    assert "--backends FILE" in err and "--prices FILE" in err
    assert not (run / "calibrations.json").exists()


def test_calibrate_with_prices_suggests_a_serve_command_that_works(
    run, prompt_log, stub_url, tmp_path, monkeypatch, capsys
) -> None:
    prices = own_prices(tmp_path, CANDIDATES)
    argv = ["calibrate", "--checkpoint", str(run), "--prompts", str(prompt_log), "--prices", str(prices)]
    assert main([*argv, "--target-share", "codebot=0.2"]) == 0
    command = suggested_serve(capsys.readouterr().out)
    assert command[:2] == ["lookahead", "serve"] and command[command.index("--prices") + 1] == str(prices)
    backends = endpoints(tmp_path, stub_url, {})  # the FILE of the suggestion: where the candidates are served
    command[command.index("FILE")] = str(backends)
    with served(serve_spec(monkeypatch, command[1:])) as client:
        assert answered_by(client, "router:share") in CANDIDATES
        assert answered_by(client, "router:λ=0") == "codebot"  # --prices prices every candidate: λ works too


def test_calibrate_with_backend_costs_suggests_that_backends_file(
    run, prompt_log, stub_url, tmp_path, monkeypatch, capsys
) -> None:
    backends = endpoints(tmp_path, stub_url, {"mathbot": 1e-2, "codebot": 1e-3, "chatbot": 1e-4})
    argv = ["calibrate", "--checkpoint", str(run), "--prompts", str(prompt_log), "--backends", str(backends)]
    assert main([*argv, "--target-share", "codebot=0.2"]) == 0
    out = capsys.readouterr().out
    assert f"the `cost` of the backends in {backends}" in out
    command = suggested_serve(out)
    assert command[command.index("--backends") + 1] == str(backends) and "--prices" not in command
    with served(serve_spec(monkeypatch, command[1:])) as client:
        assert answered_by(client, "router:share") in CANDIDATES
