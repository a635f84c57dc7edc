"""The whole loop of docs/own-models.md with its own commands: collect → score → check → train → route → serve.

Two local "models" behind loopback OpenAI-compatible endpoints: ``mathy`` answers arithmetic right and writes broken
code, ``coder`` the other way round; the router must learn to send math to one and code to the other.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from recipe_testkit import debug_run

from lightning_lookahead.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))  # the loopback server helper
from stub_backend import running

MATH = [(f"what is {a} plus {b}", str(a + b)) for a in range(2, 8) for b in range(3, 7)]
CODE = [(f"write a function add{k} that returns a plus b", f"assert add{k}(2, 3) == 5") for k in range(24)]


def answer(model: str, prompt: str) -> str:
    """What each local model says: right in its speciality, wrong elsewhere."""
    if prompt.startswith("what is"):
        a, b = (int(w) for w in prompt.split() if w.isdigit())
        return f"The answer is \\boxed{{{a + b if model == 'mathy' else a + b + 1}}}."
    name = prompt.split()[3]
    body = "a + b" if model == "coder" else "a - b"
    return f"```python\ndef {name}(a, b):\n    return {body}\n```"


def local_models() -> FastAPI:
    app = FastAPI()

    @app.post("/{name}/v1/chat/completions")
    async def chat(name: str, request: Request) -> dict:
        body = await request.json()
        text = answer(name, body["messages"][-1]["content"])
        usage = {"prompt_tokens": 12, "completion_tokens": len(text.split()), "total_tokens": 12 + len(text.split())}
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        return {"id": "x", "object": "chat.completion", "created": 0, "model": name, "choices": [choice],
                "usage": usage}  # fmt: skip

    return app


@pytest.mark.slow
def test_prompts_and_endpoint_urls_to_a_served_router(tmp_path: Path, capsys) -> None:
    from tiny_models import save_tiny_bert

    rows = [{"id": f"m{i}", "prompt": p, "domain": "math", "reference": r} for i, (p, r) in enumerate(MATH)]
    rows += [{"id": f"c{i}", "prompt": p, "domain": "code", "reference": r} for i, (p, r) in enumerate(CODE)]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    words = sorted({w for p, _ in MATH + CODE for w in p.split()})
    (tmp_path / "bert").mkdir()
    backbone = save_tiny_bert(tmp_path / "bert", words, dropout=0.0)
    with running(local_models()) as url:
        endpoints = tmp_path / "endpoints.yaml"
        endpoints.write_text(
            f"backends:\n  mathy: {{base_url: '{url}/mathy/v1'}}\n  coder: {{base_url: '{url}/coder/v1'}}\n"
        )
        collected, scored = tmp_path / "collected.jsonl", tmp_path / "scored.jsonl"
        assert main(["data", "collect", "--prompts", str(prompts), "--endpoints", str(endpoints),
                     "--out", str(collected), "--no-progress"]) == 0  # fmt: skip
        assert main(["data", "score", "--dataset", str(collected), "--scorer", "auto", "--out", str(scored)]) == 0
        first = json.loads(scored.read_text().splitlines()[0])
        assert first["scores"] == {"mathy": 1.0, "coder": 0.0} and first["tokens"]["mathy"]["prompt"] == 12
        assert main(["data", "check", "--dataset", str(scored)]) == 0
        assert "48 rows, 2 candidates: mathy, coder" in capsys.readouterr().out
        run = tmp_path / "run"
        train = ["train", "debug", *debug_run(backbone, tmp_path, tmp_path), f"data.dataset={scored}",
                 "model.kind=mlc", "model.max_length=32", "data.max_train_prompts=null", "data.max_eval_prompts=null",
                 "trainer.max_epochs=8", "optim.lr=0.003"]  # fmt: skip
        assert main(train) == 0
        capsys.readouterr()
        assert (
            main(
                ["route", "--checkpoint", str(run), "what is 9 plus 9", "write a function add99 that returns a plus b"]
            )
            == 0
        )
        picks = [json.loads(line)["model"] for line in capsys.readouterr().out.splitlines()]
        assert picks == ["mathy", "coder"]

        import openai

        from lightning_lookahead.inference import TrainedRouter
        from lightning_lookahead.serving import create_app, load_backends

        router = TrainedRouter.from_checkpoint(run)
        with running(create_app(router, load_backends(endpoints, router.candidates))) as served:
            client = openai.OpenAI(base_url=f"{served}/v1", api_key="unused", max_retries=0)
            reply = client.chat.completions.create(
                model="router", messages=[{"role": "user", "content": "what is 4 plus 4"}]
            )
    assert reply.choices[0].message.content == "The answer is \\boxed{8}."  # mathy answered
