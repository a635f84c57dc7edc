"""The routing server against stub backends on loopback: real uvicorn servers, real HTTP, bounded timeouts."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from stub_backend import KeywordRouter, create_stub_app, free_port, running

from lightning_lookahead.serving import Backend, ServerSettings, create_app

CANDIDATES = ["alpha", "bravo", "charlie", "delta", "echo"]
MAX_BODY = 16 * 1024
HTTP_TIMEOUT = httpx.Timeout(10.0)


@pytest.fixture(scope="module")
def stub_url() -> Iterator[str]:
    with running(create_stub_app()) as url:
        yield url


def make_backends(stub_url: str, *, costs: bool = True, keys: dict[str, str] | None = None) -> dict[str, Backend]:
    backends = {}
    for i, name in enumerate(CANDIDATES):
        backends[name] = Backend(
            name=name,
            base_url=f"{stub_url}/{name}/v1",
            upstream_model=f"upstream-{name}",
            timeout=5.0,
            cost=(0.0 if i == 0 else 1e-4) if costs else None,  # USD per request: 0.1 per 1,000
            api_key=(keys or {}).get(name),
        )
    # charlie answers slowly enough to test timeouts; delta is down (nothing listens on its port)
    backends["charlie"] = Backend("charlie", f"{stub_url}/charlie/v1", "upstream-charlie", timeout=0.5, cost=1e-4)
    backends["delta"] = Backend("delta", f"http://127.0.0.1:{free_port()}/v1", "upstream-delta", cost=1e-4)
    if not costs:
        backends = {
            n: Backend(b.name, b.base_url, b.upstream_model, b.timeout, api_key=b.api_key) for n, b in backends.items()
        }
    return backends


@pytest.fixture(scope="module")
def router() -> KeywordRouter:
    return KeywordRouter(CANDIDATES, delay_s=0.01)


@pytest.fixture(scope="module")
def server(stub_url: str, router: KeywordRouter) -> Iterator[str]:
    """Open server (no auth), costs configured, backend key for echo."""
    app = create_app(
        router, make_backends(stub_url, keys={"echo": "backend-key-123"}), ServerSettings(max_body_bytes=MAX_BODY)
    )
    with running(app) as url:
        yield url


@pytest.fixture(scope="module")
def auth_server(stub_url: str) -> Iterator[str]:
    """Bearer auth required, no costs configured."""
    app = create_app(
        KeywordRouter(CANDIDATES), make_backends(stub_url, costs=False), ServerSettings(api_key="s3cret-token")
    )
    with running(app) as url:
        yield url


@pytest.fixture()
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=HTTP_TIMEOUT) as c:
        yield c


def chat(text: str, model: str = "router", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def post(client: httpx.Client, url: str, body: Any, **kwargs: Any) -> httpx.Response:
    return client.post(f"{url}/v1/chat/completions", json=body, **kwargs)


def sse_events(response: httpx.Response) -> list[str]:
    return [line[len("data: ") :] for line in response.text.split("\n") if line.startswith("data: ")]


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"} and error["message"]
    if code is not None:
        assert error["code"] == code
    return error["message"]


# --- routing and forwarding -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "expected"), [("write code for a heap", "echo"), ("a math puzzle", "bravo"), ("hi", "alpha")]
)
def test_routes_forwards_and_names_the_chosen_model(client, server, prompt, expected):
    response = post(client, server, chat(prompt, temperature=0.2, stub={}))
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["x-lookahead-model"] == expected
    assert body["model"] == expected
    assert body["stub_backend"] == expected
    assert body["stub_received_model"] == f"upstream-{expected}"  # the backend's own name was forwarded
    assert body["choices"][0]["message"]["content"] == f"{expected}|{prompt}"
    assert body["stub_extra"] == ["stub", "temperature"]  # unknown OpenAI fields pass through
    assert response.headers["x-request-id"]


def test_backend_key_is_sent_and_client_key_is_not(client, server, auth_server):
    assert post(client, server, chat("code please")).json()["stub_authorization"] == "Bearer backend-key-123"
    assert post(client, server, chat("hi")).json()["stub_authorization"] is None
    forwarded = post(client, auth_server, chat("hi"), headers={"authorization": "Bearer s3cret-token"}).json()
    assert forwarded["stub_authorization"] is None


def test_routes_on_the_first_user_turn(client, server):
    messages = [
        {"role": "system", "content": "be brief; math only"},
        {"role": "user", "content": [{"type": "text", "text": "write code"}, {"type": "image_url", "image_url": {}}]},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "now something else"},
    ]
    response = post(client, server, {"model": "router", "messages": messages})
    assert response.status_code == 200, response.text
    assert response.headers["x-lookahead-model"] == "echo"  # "code" is only in the first user turn


def test_streaming_is_passed_through_with_the_model_rewritten(client, server):
    with client.stream("POST", f"{server}/v1/chat/completions", json=chat("code a parser", stream=True)) as response:
        response.read()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-lookahead-model"] == "echo"
    events = sse_events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert len(chunks) == 3
    assert {c["model"] for c in chunks} == {"echo"}
    assert {c["stub_backend"] for c in chunks} == {"echo"}
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == "echo|code a parser"


def test_cost_aware_model_trades_quality_for_cost(client, server):
    assert post(client, server, chat("code", "router:λ=0")).headers["x-lookahead-model"] == "echo"
    # λ is per USD per 1,000 requests: echo costs 0.1, alpha 0. λ=5: echo 0.9 − 0.5 > alpha 0.1 → echo;
    # λ=10: echo 0.9 − 1.0 = −0.1 < alpha 0.1 → the free candidate wins
    assert post(client, server, chat("code", "router:λ=5")).headers["x-lookahead-model"] == "echo"
    assert post(client, server, chat("code", "router:λ=10")).headers["x-lookahead-model"] == "alpha"
    assert post(client, server, chat("code", "router:lambda=10")).headers["x-lookahead-model"] == "alpha"
    assert "not a number" in assert_openai_error(
        post(client, server, chat("code", "router:λ=abc")), 400, "invalid_model"
    )
    assert_openai_error(post(client, server, chat("code", "router:λ=-1")), 400, "invalid_model")


def test_cost_aware_model_without_costs_is_a_clear_400(client, auth_server):
    auth = {"authorization": "Bearer s3cret-token"}
    message = assert_openai_error(
        post(client, auth_server, chat("x", "router:λ=1"), headers=auth), 400, "costs_not_configured"
    )
    assert "cost" in message


def test_default_costs_apply_when_the_backends_file_sets_none(client, stub_url):
    # Costs from the price table and the run's response lengths (`lookahead serve`): here alpha is dear, echo free.
    dear_alpha = np.array([10.0 if name == "alpha" else 0.0 for name in CANDIDATES])
    settings = ServerSettings(default_costs=dear_alpha)
    with running(create_app(KeywordRouter(CANDIDATES), make_backends(stub_url, costs=False), settings)) as url:
        assert post(client, url, chat("hello", "router")).headers["x-lookahead-model"] == "alpha"
        assert post(client, url, chat("hello", "router:λ=1")).headers["x-lookahead-model"] == "bravo"


def test_serve_prices_new_requests_from_the_runs_response_lengths(tmp_path: Path):
    from lightning_lookahead.costs.request_costs import resolve_costs

    candidates = ["Yi-1.5-34B-Chat", "Qwen2.5-Coder-7B-Instruct"]
    lengths = {"Yi-1.5-34B-Chat": 500.0, "Qwen2.5-Coder-7B-Instruct": 500.0}
    costs = resolve_costs(candidates, {}, lengths)
    # Shipped table: 34B at 0.80 and 7B at 0.20 USD per 1M output tokens; 500 tokens → USD per 1,000 requests.
    assert costs.vector() == pytest.approx([1000 * 500 * 0.80 / 1e6, 1000 * 500 * 0.20 / 1e6])
    assert resolve_costs(candidates, {}, None).vector() is None  # no recorded lengths: no price-table costs


def test_direct_candidate_and_unknown_model(client, server, router):
    before = len(router.calls)
    response = post(client, server, chat("code", "bravo"))
    assert response.status_code == 200 and response.json()["model"] == "bravo"
    assert response.headers["x-lookahead-model"] == "bravo"
    assert len(router.calls) == before  # no routing call
    message = assert_openai_error(post(client, server, chat("x", "gpt-17")), 404, "model_not_found")
    assert "valid: router, router:λ=<value>, alpha" in message


def test_health_and_models(client, server):
    health = client.get(f"{server}/health").json()
    assert health["status"] == "ok" and health["router_kind"] == "keyword"
    assert health["candidates"] == CANDIDATES and health["cost_aware"] is True
    models = client.get(f"{server}/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["router", *CANDIDATES]


# --- malformed requests -----------------------------------------------------------------------------------------


def test_malformed_requests_get_openai_style_4xx(client, server):
    url = f"{server}/v1/chat/completions"
    headers = {"content-type": "application/json"}
    assert_openai_error(client.post(url, content=b"{not json", headers=headers), 400, "invalid_json")
    assert_openai_error(client.post(url, content=b"[1, 2]", headers=headers), 400, "invalid_json")
    assert_openai_error(client.post(url, content=b"\xff\xfe", headers=headers), 400, "invalid_json")
    message = assert_openai_error(post(client, server, {"model": "router"}), 400, "invalid_request")
    assert "messages" in message
    assert_openai_error(post(client, server, {"model": "router", "messages": []}), 400, "invalid_request")
    assert_openai_error(post(client, server, chat("x", stream="yes please")), 400, "invalid_request")
    no_user = {"model": "router", "messages": [{"role": "system", "content": "only a system prompt"}]}
    assert_openai_error(post(client, server, no_user), 400, "no_user_message")
    assert_openai_error(client.get(f"{server}/v1/nowhere"), 404)
    assert_openai_error(client.get(url), 405)


def test_oversize_body_is_413_with_or_without_content_length(client, server):
    big = chat("x" * (MAX_BODY + 10))
    assert_openai_error(post(client, server, big), 413, "request_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding chunked
        data = json.dumps(big).encode()
        for i in range(0, len(data), 4096):
            yield data[i : i + 4096]

    response = client.post(f"{server}/v1/chat/completions", content=chunks())
    assert "content-length" not in response.request.headers
    assert_openai_error(response, 413, "request_too_large")
    assert post(client, server, chat("x" * (MAX_BODY // 2))).status_code == 200  # under the limit still works


# --- backend failures -------------------------------------------------------------------------------------------


def test_backend_down_is_502(client, server):
    assert_openai_error(post(client, server, chat("x", "delta")), 502, "backend_unavailable")
    response = post(client, server, chat("x", "delta", stream=True))
    assert_openai_error(response, 502, "backend_unavailable")
    assert response.headers["x-lookahead-model"] == "delta"


def test_backend_timeout_is_504_not_a_hang(client, server):
    start = time.monotonic()
    assert_openai_error(post(client, server, chat("x", "charlie", stub={"delay": 5})), 504, "timeout")
    assert_openai_error(post(client, server, chat("x", "charlie", stream=True, stub={"delay": 5})), 504, "timeout")
    assert time.monotonic() - start < 3.0  # two calls bounded by charlie's 0.5 s timeout


def test_backend_stalling_mid_stream_ends_with_an_error_event(client, server):
    start = time.monotonic()
    response = post(client, server, chat("x", "charlie", stream=True, stub={"stall_after": 1}))
    assert time.monotonic() - start < 3.0
    assert response.status_code == 200  # headers were already sent
    events = sse_events(response)
    assert json.loads(events[0])["model"] == "charlie"
    assert json.loads(events[-1])["error"]["code"] == "timeout"


def test_backend_error_status_and_body_pass_through(client, server):
    response = post(client, server, chat("code", stub={"fail": 503}))
    assert response.status_code == 503
    assert response.headers["x-lookahead-model"] == "echo"
    assert response.json()["error"]["message"] == "stub echo failed on purpose"
    response = post(client, server, chat("code", stream=True, stub={"fail": 429}))
    assert response.status_code == 429 and "failed on purpose" in response.text


def test_router_failure_is_500(client, server):
    assert_openai_error(post(client, server, chat("please explode")), 500, "routing_failed")


# --- auth and logs ----------------------------------------------------------------------------------------------


def test_bearer_auth(client, auth_server):
    assert_openai_error(post(client, auth_server, chat("hi")), 401, "invalid_api_key")
    assert_openai_error(post(client, auth_server, chat("hi"), headers={"authorization": "Bearer nope"}), 401)
    assert_openai_error(client.get(f"{auth_server}/v1/models"), 401)
    ok = post(client, auth_server, chat("hi"), headers={"authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200 and ok.json()["model"] == "alpha"
    assert client.get(f"{auth_server}/health").status_code == 200  # open for load balancers


def test_one_log_line_per_request_without_secrets(client, server, auth_server, caplog):
    caplog.set_level(logging.INFO, logger="lightning_lookahead.serving")
    post(client, server, chat("code it"), headers={"x-request-id": "req-42"})
    post(client, auth_server, chat("hi"), headers={"authorization": "Bearer s3cret-token", "x-request-id": "req-43"})
    deadline = time.monotonic() + 2
    while sum("request_id=req-4" in r.getMessage() for r in caplog.records) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    lines = [r.getMessage() for r in caplog.records if "request_id=req-4" in r.getMessage()]
    assert len(lines) == 2
    assert "chosen=echo" in lines[0] and "upstream_status=200" in lines[0] and "route_ms=" in lines[0]
    assert "s3cret-token" not in caplog.text and "backend-key-123" not in caplog.text
    assert "code it" not in caplog.text  # prompts are not logged either


# --- load -------------------------------------------------------------------------------------------------------


def test_concurrent_load_loses_and_mixes_up_nothing(server, router):
    n, concurrency = 100, 16
    kinds = [("code", "echo"), ("math", "bravo"), ("chat", "alpha")]
    calls_before = len(router.calls)

    async def one(client: httpx.AsyncClient, gate: asyncio.Semaphore, i: int) -> tuple[int, str, str, str]:
        word, _ = kinds[i % 3]
        prompt = f"{word} marker-{i:03d}"
        stream = i % 2 == 1
        async with gate:
            response = await client.post(f"{server}/v1/chat/completions", json=chat(prompt, stream=stream))
        assert response.status_code == 200, response.text
        if stream:
            chunks = [json.loads(e) for e in sse_events(response)[:-1]]
            content = "".join(c["choices"][0]["delta"]["content"] for c in chunks)
            models = {c["model"] for c in chunks}
            assert len(models) == 1
            model = models.pop()
        else:
            content, model = response.json()["choices"][0]["message"]["content"], response.json()["model"]
        assert response.headers["x-lookahead-model"] == model
        return i, prompt, model, content

    async def main() -> list[tuple[int, str, str, str]]:
        gate = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT, limits=limits) as client:
            return await asyncio.wait_for(asyncio.gather(*(one(client, gate, i) for i in range(n))), timeout=25)

    results = asyncio.run(main())
    assert sorted(r[0] for r in results) == list(range(n))  # none lost
    for i, prompt, model, content in results:
        expected = kinds[i % 3][1]
        assert model == expected and content == f"{expected}|{prompt}"  # none mixed up
    calls = router.calls[calls_before:]
    assert sum(calls) == n  # every prompt routed exactly once
    assert max(calls) > 1  # concurrent requests shared routing calls


# --- backends.yaml ----------------------------------------------------------------------------------------------


def test_load_backends_reads_keys_costs_and_defaults(tmp_path: Path):
    from lightning_lookahead.serving import load_backends

    path = tmp_path / "backends.yaml"
    path.write_text(
        """
defaults: {timeout: 12}
backends:
  a: {base_url: "http://127.0.0.1:1/v1", model: org/a, api_key_env: A_KEY, cost: 0.002}
  b:
    base_url: "https://api.example.com/v1"
    timeout: 3
    cost: {usd_per_1m_output_tokens: 0.6, expected_output_tokens: 500}
  unused: {base_url: "http://127.0.0.1:2/v1"}
"""
    )
    backends = load_backends(path, ["a", "b"], environ={"A_KEY": "sk-abc"})
    assert list(backends) == ["a", "b"]
    a, b = backends["a"], backends["b"]
    assert (a.upstream_model, a.timeout, a.cost, a.api_key) == ("org/a", 12.0, 0.002, "sk-abc")
    assert (b.upstream_model, b.timeout, b.api_key) == ("b", 3.0, None)
    assert b.cost == pytest.approx(0.0003)
    assert b.chat_url == "https://api.example.com/v1/chat/completions"
    assert "sk-abc" not in repr(a)


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        (
            "backends:\n  alpah: {base_url: 'http://h/v1'}\n  b: {base_url: 'http://h/v1'}\n",
            {},
            "no backend for candidate 'alpha' (did you mean 'alpah'?)",
        ),
        ("backends:\n  alpha: {base_url: 'ftp://h'}\n  b: {base_url: 'http://h/v1'}\n", {}, "base_url"),
        (
            "backends:\n  alpha: {base_url: 'http://h/v1', api_key_env: NOPE}\n  b: {base_url: 'http://h/v1'}\n",
            {},
            "NOPE",
        ),
        (
            "backends:\n  alpha: {base_url: 'http://h/v1', cost: -1}\n  b: {base_url: 'http://h/v1'}\n",
            {},
            "backends.alpha.cost",
        ),
        (
            "backends:\n  alpha: {base_url: 'http://h/v1', timout: 3}\n  b: {base_url: 'http://h/v1'}\n",
            {},
            "did you mean 'timeout'",
        ),
        ("backends:\n  alpha: {base_url: 'http://h/v1', timeout: -1}\n  b: {base_url: 'http://h/v1'}\n", {}, "timeout"),
        ("- not a mapping\n", {}, "`backends:`"),
    ],
)
def test_load_backends_errors_name_the_file_and_the_problem(tmp_path: Path, text, environ, expected):
    from lightning_lookahead.errors import LookaheadError
    from lightning_lookahead.serving import load_backends

    path = tmp_path / "backends.yaml"
    path.write_text(text)
    with pytest.raises(LookaheadError) as info:
        load_backends(path, ["alpha", "b"], environ=environ)
    assert str(path) in str(info.value) and expected in str(info.value)
    assert "\n" not in str(info.value)


def test_cost_is_optional_per_backend(tmp_path: Path):
    """A candidate without a `cost` is priced from the price table, if that names it (no all-or-none rule)."""
    from lightning_lookahead.backends import candidate_costs
    from lightning_lookahead.serving import load_backends

    path = tmp_path / "backends.yaml"
    path.write_text("backends:\n  alpha: {base_url: 'http://h/v1', cost: 0.001}\n  b: {base_url: 'http://h/v1'}\n")
    backends = load_backends(path, ["alpha", "b"], environ={})
    assert (backends["alpha"].cost, backends["b"].cost) == (0.001, None)
    assert candidate_costs(backends, ["alpha", "b"]) is None


def test_example_backends_file_covers_the_paper_pool():
    from lightning_lookahead.backends import candidate_costs
    from lightning_lookahead.data.schema import PAPER_CANDIDATES
    from lightning_lookahead.serving import load_backends

    example = Path(__file__).resolve().parents[2] / "examples" / "backends.yaml"
    # Loads with no environment variables set: the README's `lookahead serve` command must work as written.
    backends = load_backends(example, PAPER_CANDIDATES, environ={})
    costs = candidate_costs(backends, PAPER_CANDIDATES)
    assert costs is not None and costs.shape == (len(PAPER_CANDIDATES),) and (costs > 0).all()


# --- a real (tiny, untrained) router ----------------------------------------------------------------------------


def test_real_router_export_routes_like_router_route(tmp_path: Path, stub_url: str, capsys):
    """A tiny MLC router exported and loaded with TrainedRouter.from_checkpoint: the server's picks (micro-batched,
    concurrent) equal a direct ``TrainedRouter.route`` call on the same prompts."""
    import torch
    from tiny_models import save_tiny_bert

    from lightning_lookahead.inference import TrainedRouter, export_router
    from lightning_lookahead.models.registry import build_predictor

    words = ["write", "code", "solve", "math", "story", "about", "a", "cat", "sort", "list", "x"]
    candidates = ["m0", "m1", "m2", "m3", "m4"]
    prompts = [f"{a} {b}" for a in words for b in words][:16]
    (tmp_path / "bert").mkdir()
    backbone = save_tiny_bert(tmp_path / "bert", words, dropout=0.0)
    torch.manual_seed(0)
    model = {"kind": "mlc", "backbone": str(backbone), "max_length": 32}
    predictor = build_predictor(model, candidates)
    head = predictor.network.head
    with torch.no_grad():  # an untrained tiny encoder barely tells prompts apart: amplify and centre the logits
        head.output.weight.mul_(100)
        head.output.bias.sub_(torch.from_numpy(TrainedRouter(predictor).score(prompts).mean(0)))
    router = TrainedRouter.from_checkpoint(export_router(predictor, tmp_path / "run" / "export", name="tiny"))
    decisions = router.route(prompts)
    expected = [d.model for d in decisions]
    assert len(set(expected)) >= 3  # the check below can tell routes apart
    # batch composition changes padding, hence float noise: only clear-cut decisions must match exactly
    clear = [sorted(d.scores.values())[-1] - sorted(d.scores.values())[-2] > 1e-3 for d in decisions]

    backends = {c: Backend(c, f"{stub_url}/{c}/v1", f"upstream-{c}") for c in candidates}
    with running(create_app(router, backends)) as url:

        async def main() -> list[str]:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
                responses = await asyncio.gather(
                    *(client.post(f"{url}/v1/chat/completions", json=chat(p)) for p in prompts)
                )
            return [r.json()["stub_backend"] for r in responses]

        served = asyncio.run(main())
        health = httpx.get(f"{url}/health", timeout=HTTP_TIMEOUT).json()
    assert sum(clear) >= 12
    assert [s for s, ok in zip(served, clear, strict=True) if ok] == [
        e for e, ok in zip(expected, clear, strict=True) if ok
    ]
    assert health["router_kind"] == "mlc" and health["candidates"] == candidates

    # what every worker of `lookahead serve` runs: the export (with its engine), the backends, the run's calibrations
    from lightning_lookahead.costs.rules import DecisionRule
    from lightning_lookahead.inference.calibrations import Calibration, save_calibration
    from lightning_lookahead.serving import ServeSpec
    from lightning_lookahead.serving.launch import load_router

    save_calibration(
        tmp_path / "run",
        Calibration("cheap", tuple(candidates), DecisionRule("penalty", lam=0.5, costs=(0, 1, 1, 1, 1))),
    )
    full = tmp_path / "backends-all.yaml"
    full.write_text("backends:\n" + "".join(f"  {c}: {{base_url: '{stub_url}/{c}/v1'}}\n" for c in candidates))
    loaded = load_router(ServeSpec(checkpoint=str(tmp_path / "run"), backends=str(full), engine="fp32"))
    assert loaded.router.engine == "fp32" and list(loaded.backends) == candidates
    with running(create_app(loader=lambda: loaded)) as url:
        deadline = time.monotonic() + 10
        while httpx.get(f"{url}/ready", timeout=HTTP_TIMEOUT).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        models = [m["id"] for m in httpx.get(f"{url}/v1/models", timeout=HTTP_TIMEOUT).json()["data"]]
        body = chat(prompts[0], "router:cheap", lookahead={"return_scores": True})
        response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=HTTP_TIMEOUT)
    assert models == ["router", "router:cheap", *candidates]
    assert response.status_code == 200, response.text
    scores = response.json()["lookahead"]
    assert list(scores["scores"]) == candidates and scores["model"] == response.headers["x-lookahead-model"]
    assert scores["scores"] == pytest.approx(decisions[0].scores, abs=1e-4)  # the router's own scores for it

    # `lookahead serve` loads the same export and refuses a backends file that misses a candidate, before serving
    from lightning_lookahead.cli import main as cli_main

    partial = tmp_path / "backends.yaml"
    partial.write_text(
        "backends:\n" + "".join(f"  {c}: {{base_url: 'http://127.0.0.1:1/v1'}}\n" for c in candidates[:4])
    )
    export_dir = str(tmp_path / "run" / "export")
    assert cli_main(["serve", "--checkpoint", export_dir, "--backends", str(partial)]) == 2
    assert f"{partial}: no backend for candidate 'm4'" in capsys.readouterr().err
    args = ["serve", "--checkpoint", export_dir, "--backends", str(partial), "--api-key-env", "LOOKAHEAD_TEST_UNSET"]
    assert cli_main(args) == 2
    assert "LOOKAHEAD_TEST_UNSET" in capsys.readouterr().err
