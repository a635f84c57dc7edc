"""docs/own-models.md and the serving quickstart of docs/serving.md, run as a new user would run them.

The commands are read from the Markdown (the blocks marked ``<!-- tested: tests/docs/test_own_models_doc.py -->``)
and run exactly as written, in a temporary folder that holds the user's files under the names the docs use:

- ``prompts.jsonl``: arithmetic rows with their answer as ``reference``, code rows with unit tests as ``reference``
  and open-ended chat rows without one (three domains);
- ``endpoints.yaml``: three candidates named as a user would name them, ``mathbot``, ``codebot`` and ``chatbot``,
  served by one local OpenAI-compatible app on 127.0.0.1; each is right in its speciality and wrong elsewhere, and
  reports ``usage`` like a real server;
- ``judge.yaml``: a local judge on the same app that answers in the documented ``Rating: [[N]]`` form, rating a story
  high and anything else low (only chatbot writes stories);
- ``my_prices.yaml``: the user's prices in the docs/cost.md layout (the only prices anywhere: no ``--prices`` is
  added to any command).

Every command except ``lookahead serve`` runs in this process (``lightning_lookahead.cli.main``, cwd = the folder);
``lookahead serve`` blocks, so it runs as a real process of the installed ``lookahead`` script, its port taken from
the ``PORT`` environment variable (the docs' default 8000 may be taken), and is asked with the real ``openai`` client.

The serving quickstart (``lookahead serve --checkpoint runs/cpu_mlm_code --backends examples/backends.yaml``, then
its curl and Python blocks) runs against the router trained here: in the folder, ``runs/cpu_mlm_code`` is a link to
``runs/mine`` and ``examples/backends.yaml`` is the user's endpoints file, so the command runs as written. The curl
and Python blocks hard-code ``127.0.0.1:8000``; that one string is replaced by the served port (the test fails if
a block no longer contains it), nothing else is changed.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from doc_commands import ROOT, Block, commands, marked
from fastapi import FastAPI, Request

from lightning_lookahead.cli import main

sys.path.insert(0, str(ROOT / "tests" / "serving"))  # the loopback server helper
from stub_backend import free_port, running

THIS = "tests/docs/test_own_models_doc.py"
OWN_MODELS = ROOT / "docs" / "own-models.md"
SERVING = ROOT / "docs" / "serving.md"
DOC_PORT = "127.0.0.1:8000"
READY_TIMEOUT_S = 120
CANDIDATES = ["mathbot", "codebot", "chatbot"]
#: The documented steps, in order: all but the last run in this process, the last (``serve``) as a real server.
STEPS = ["data collect", "data score", "data check", "train", "evaluate", "serve"]

# --- the user's prompts and models ---------------------------------------------------------------------------------

ANIMALS = "cat dog fox owl bee cow pig hen yak eel ant bat elk emu gnu".split()
PLACES = ["the sea", "a forest", "the moon", "a city", "the desert", "a river"]
MATH_ASK = ["what is {a} plus {b}", "compute {a} + {b}", "add {a} and {b}"]
CODE_ASK = [
    "write a python function {name} that returns the sum of a and b",
    "implement a function {name}(a, b) in python returning a plus b",
]
CHAT_ASK = ["tell me a story about a {animal} in {place}", "write a short tale of a {animal} who lives in {place}"]
#: 360 rows: the seeded split leaves 252 for training, 16 steps of cpu/mlm_code's one epoch of 16 prompts at lr 5e-5,
#: enough to learn the pattern (validation Avg µn 54 after 8 steps, 100 after 16; 180 rows, 8 steps, ended at 17).
PER_DOMAIN = 120


def prompt_rows(n: int = PER_DOMAIN) -> list[dict]:
    rows = []
    for i in range(n):
        a, b = 3 + (7 * i) % 40, 2 + (11 * i) % 30
        rows.append({"id": f"math-{i}", "prompt": MATH_ASK[i % 3].format(a=a, b=b), "domain": "math",
                     "reference": str(a + b)})  # fmt: skip
    for i in range(n):
        name = f"total_{i}"
        rows.append({"id": f"code-{i}", "prompt": CODE_ASK[i % 2].format(name=name), "domain": "code",
                     "reference": f"assert {name}(2, 3) == 5\nassert {name}(-1, 1) == 0"})  # fmt: skip
    for i in range(n):
        text = CHAT_ASK[i % 2].format(animal=ANIMALS[i % len(ANIMALS)], place=PLACES[i % len(PLACES)])
        rows.append({"id": f"chat-{i}", "prompt": text, "domain": "chat"})
    return rows


def answer(model: str, prompt: str) -> str:
    """What each of the user's models says: right in its speciality, wrong (or off-topic) elsewhere."""
    numbers = [int(n) for n in re.findall(r"\d+", prompt)]
    if "function" in prompt:
        name = re.search(r"function (\w+)", prompt).group(1)
        body = "a + b" if model == "codebot" else "a - b"
        return f"```python\ndef {name}(a, b):\n    return {body}\n```"
    if len(numbers) == 2:
        total = sum(numbers) + (0 if model == "mathbot" else 1)
        return f"The answer is \\boxed{{{total}}}."
    if model == "chatbot":
        return f"Once upon a time, {prompt.lower().rstrip('.?!')}: and they lived happily ever after."
    return "I would rather not."


JUDGE_ANSWER = re.compile(r"\[The Start of the Assistant's Answer\]\n(.*)\n\[The End of the Assistant's Answer\]", re.S)


def user_models() -> FastAPI:
    """``/<model>/v1/chat/completions`` for the three candidates and ``/judge/v1/chat/completions`` for the judge."""
    app = FastAPI()

    @app.post("/{name}/v1/chat/completions")
    async def chat(name: str, request: Request) -> dict:
        body = await request.json()
        text = body["messages"][-1]["content"]
        if name == "judge":  # the documented judge prompt: the answer between the markers, then "Rating: [[N]]"
            graded = JUDGE_ANSWER.search(text).group(1)
            rating = 9 if graded.startswith("Once upon a time") else 2
            reply = f"{'A complete story' if rating > 5 else 'No story at all'}. Rating: [[{rating}]]"
        else:
            reply = answer(name, text)
        usage = {"prompt_tokens": len(text.split()), "completion_tokens": len(reply.split())}
        choice = {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
        return {"id": f"{name}-1", "object": "chat.completion", "created": 0, "model": body.get("model", name),
                "choices": [choice], "usage": {**usage, "total_tokens": sum(usage.values())}}  # fmt: skip

    return app


def write_user_files(folder: Path, url: str) -> None:
    (folder / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in prompt_rows()))
    backends = "".join(f"  {c}:\n    base_url: {url}/{c}/v1\n" for c in CANDIDATES)
    (folder / "endpoints.yaml").write_text("backends:\n" + backends)
    (folder / "judge.yaml").write_text(f"backends:\n  judge:\n    base_url: {url}/judge/v1\n    model: fair-judge\n")
    prices = {"mathbot": (0.2, 0.6), "codebot": (0.3, 1.2), "chatbot": (1.0, 3.0)}
    lines = "".join(f"  {c}: {{input: {i}, output: {o}}}\n" for c, (i, o) in prices.items())
    (folder / "my_prices.yaml").write_text("source: my own invoices\nmodels:\n" + lines)


# --- running the documented commands -----------------------------------------------------------------------------


def lookahead_program() -> list[str]:
    """The installed ``lookahead`` script beside this interpreter, else the module it runs."""
    script = Path(sys.executable).with_name("lookahead")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "lightning_lookahead.cli"]


@contextlib.contextmanager
def serving(argv: list[str], cwd: Path, log: Path) -> Iterator[str]:
    """``lookahead serve ...`` as written, as a real process on a free ``PORT``; yields its URL once /ready is 200."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log.open("w") as out:
        proc = subprocess.Popen([*lookahead_program(), *argv[1:]], cwd=cwd, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            assert proc.poll() is None, f"{' '.join(argv)} exited {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"{' '.join(argv)} not ready in {READY_TIMEOUT_S} s:\n{log.read_text()}"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def at_port(text: str, url: str, where: str) -> str:
    """``text`` with the docs' ``127.0.0.1:8000`` pointed at ``url`` (it must be there)."""
    assert DOC_PORT in text, f"{where}: the test expects the block to name {DOC_PORT}"
    return text.replace(DOC_PORT, url.removeprefix("http://"))


def curl(argv: list[str]) -> dict:
    """Run a curl command; without curl on the machine, send the same request (URL, -H, -d) with httpx."""
    if shutil.which("curl"):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
        return json.loads(done.stdout)
    url = next(a for a in argv if a.startswith("http"))
    headers = dict(h.split(": ", 1) for flag, h in itertools.pairwise(argv) if flag == "-H")
    data = next(d for flag, d in itertools.pairwise(argv) if flag == "-d")
    return httpx.post(url, headers=headers, content=data, timeout=60).json()


def step_name(argv: list[str]) -> str:
    """``data collect``, ``train``, ...: the subcommand a documented command runs."""
    return " ".join(argv[1:3] if argv[1] == "data" else argv[1:2])


def own_models_blocks() -> list[Block]:
    found = marked(OWN_MODELS, THIS)
    assert found, f"no block of {OWN_MODELS.name} is marked <!-- tested: {THIS} -->"
    return found


def serving_blocks() -> dict[str, Block]:
    """The serving quickstart: its serve command, its curl command and its Python block."""
    found = marked(SERVING, THIS)
    langs = [b.lang for b in found]
    assert langs == ["bash", "bash", "python"], f"{SERVING.name}: marked blocks {langs}, expected serve, curl, python"
    return dict(zip(("serve", "curl", "python"), found, strict=True))


# --- the test ------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_own_models_doc_and_the_serving_quickstart_run_as_written(tmp_path, monkeypatch, capsys) -> None:
    steps = [argv for block in own_models_blocks() for argv in commands(block)]
    assert [step_name(argv) for argv in steps] == STEPS
    quickstart = serving_blocks()
    (serve_quickstart,) = commands(quickstart["serve"])
    (curl_quickstart,) = commands(quickstart["curl"], programs=("curl",))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PORT", raising=False)
    times: dict[str, float] = {}
    with running(user_models()) as models_url:
        write_user_files(tmp_path, models_url)
        for argv in steps[:-1]:  # collect, score, check, train, evaluate
            start = time.monotonic()
            code = main(argv[1:])
            out = capsys.readouterr()
            times[step_name(argv)] = time.monotonic() - start
            assert code == 0, f"{' '.join(argv)} exited {code}:\n{out.out[-3000:]}\n{out.err[-3000:]}"
            check_step(argv, tmp_path, out.out + out.err)
        # the quickstart's names, standing for the user's files: the router trained above, the user's endpoints
        (tmp_path / "runs" / "cpu_mlm_code").symlink_to("mine")
        (tmp_path / "examples").mkdir()
        shutil.copy(tmp_path / "endpoints.yaml", tmp_path / "examples" / "backends.yaml")
        start = time.monotonic()
        with (
            serving(steps[-1], tmp_path, tmp_path / "serve.log") as url,
            serving(serve_quickstart, tmp_path, tmp_path / "quickstart.log") as quick_url,
        ):
            times["serve (both ready)"] = time.monotonic() - start
            check_served_router(url)
            check_quickstart(quick_url, curl_quickstart, quickstart["python"])
    log = (tmp_path / "serve.log").read_text()
    assert "3 of 3 candidates have no cost" in log, log  # said once at start-up, and the server still routed
    print({k: round(v, 1) for k, v in times.items()})  # shown with -s: where the time goes


def check_step(argv: list[str], folder: Path, output: str) -> None:
    """What each documented step must have produced."""
    step = step_name(argv)
    if step == "data collect":
        rows = [json.loads(line) for line in (folder / argv[argv.index("--out") + 1]).read_text().splitlines()]
        assert len(rows) == 3 * PER_DOMAIN and all(set(r["responses"]) == set(CANDIDATES) for r in rows)
        assert rows[0]["tokens"]["mathbot"]["completion"] > 0  # the endpoints' usage is recorded
    elif step == "data score":
        rows = {r["id"]: r for r in map(json.loads, (folder / argv[argv.index("--out") + 1]).read_text().splitlines())}
        assert rows["math-0"]["scores"] == {"mathbot": 1.0, "codebot": 0.0, "chatbot": 0.0}
        assert rows["code-0"]["scores"] == {"mathbot": 0.0, "codebot": 1.0, "chatbot": 0.0}
        assert rows["chat-0"]["scores"] == {"mathbot": 2.0, "codebot": 2.0, "chatbot": 9.0}  # the judge's ratings
    elif step == "data check":
        assert f"{3 * PER_DOMAIN} rows, 3 candidates: mathbot, codebot, chatbot" in output, output
    elif step == "train":
        results = json.loads((folder / "runs" / "mine" / "results.json").read_text())
        (router,) = (r for r in results["test"] if r["router"] == results["experiment"])
        assert router["avg_mu_n"] > 50, f"the router did not learn the pattern: {output[-2000:]}"
        assert (folder / "runs" / "mine" / "export").is_dir()
    elif step == "evaluate":
        curve = (folder / "runs" / "mine" / "cost" / "cost_quality.md").read_text()
        assert "Prices: my own invoices" in curve  # priced by the user's my_prices.yaml
        assert all(f"| {router} |" in curve for router in ("cpu_mlm_code", "fixed:chatbot", "domain", "knn:10"))
    else:
        raise AssertionError(f"no check for {step!r}")


def check_served_router(url: str) -> None:
    """Held-out questions reach the right bot through the served router, with the real openai client."""
    import openai

    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    questions = {
        "what is 123 plus 456": "mathbot",
        "write a python function total_999 that returns the sum of a and b": "codebot",
        "tell me a story about a walrus in a forest": "chatbot",
    }
    for question, bot in questions.items():
        raw = client.chat.completions.with_raw_response.create(
            model="router", messages=[{"role": "user", "content": question}]
        )
        reply = raw.parse()
        assert (raw.headers["x-lookahead-model"], reply.model) == (bot, bot), question
        assert reply.choices[0].message.content == answer(bot, question)
    costly = httpx.post(f"{url}/v1/chat/completions", json={"model": "router:λ=1", "messages": [
        {"role": "user", "content": "what is 1 plus 1"}]}, timeout=30)  # fmt: skip
    assert costly.status_code == 400 and costly.json()["error"]["code"] == "costs_not_configured"


def check_quickstart(url: str, curl_argv: list[str], python: Block) -> None:
    """The serving quickstart's curl and Python blocks against its served router (only the port pointed at it)."""
    assert sum(DOC_PORT in a for a in curl_argv) == 1, f"the curl block should name {DOC_PORT} once: {curl_argv}"
    reply = curl([a.replace(DOC_PORT, url.removeprefix("http://")) for a in curl_argv])
    question = json.loads(curl_argv[curl_argv.index("-d") + 1])["messages"][-1]["content"]
    assert reply["model"] in CANDIDATES
    assert reply["choices"][0]["message"]["content"] == answer(reply["model"], question)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(at_port(python.text, url, python.where()), python.where(), "exec"), {})
    model, _, content = printed.getvalue().rstrip("\n").partition(" ")
    question = re.search(r'"content": "([^"]+)"', python.text).group(1)
    assert model in CANDIDATES and content == answer(model, question), printed.getvalue()
