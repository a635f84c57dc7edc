"""The server in production shape, through the real ``openai`` client against real uvicorn servers on loopback:
metrics, opt-in scores, named calibrations, readiness while the router loads, and bounded load (503 + Retry-After)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from stub_backend import KeywordRouter, create_stub_app, free_port, running

from lightning_lookahead.costs.rules import DecisionRule
from lightning_lookahead.errors import LookaheadError
from lightning_lookahead.inference.calibrations import Calibration, save_calibration
from lightning_lookahead.serving import Backend, LoadedRouter, ServerSettings, create_app
from lightning_lookahead.serving.batcher import QueueFull, RouteBatcher

CANDIDATES = ["alpha", "bravo", "charlie", "delta", "echo"]
#: The server's own costs, USD per 1,000 requests: alpha free, the others 0.1 (1e-4 USD per request).
SERVER_COSTS = (0.0, 0.1, 0.1, 0.1, 0.1)
TIMEOUT = httpx.Timeout(10.0)


@pytest.fixture(scope="module")
def stub_url() -> Iterator[str]:
    with running(create_stub_app()) as url:
        yield url


def backends(stub_url: str) -> dict[str, Backend]:
    """Every candidate on the stub (costs as SERVER_COSTS); delta is down, charlie times out after 0.5 s."""
    out = {c: Backend(c, f"{stub_url}/{c}/v1", f"upstream-{c}", timeout=5.0, cost=cost / 1000) for c, cost in
           zip(CANDIDATES, SERVER_COSTS, strict=True)}  # fmt: skip
    out["charlie"] = Backend("charlie", f"{stub_url}/charlie/v1", "upstream-charlie", timeout=0.5, cost=1e-4)
    out["delta"] = Backend("delta", f"http://127.0.0.1:{free_port()}/v1", "upstream-delta", cost=1e-4)
    return out


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10.0)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics``, parsed by prometheus_client's own parser."""
    response = httpx.get(f"{url}/metrics", timeout=TIMEOUT)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Counters are updated once a response has gone out, so a scrape right after may run a step ahead of them."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


# --- the openai client ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(stub_url: str) -> Iterator[str]:
    with running(create_app(KeywordRouter(CANDIDATES), backends(stub_url))) as url:
        yield url


def test_openai_client_non_streaming_names_the_chosen_model(server):
    raw = client(server).chat.completions.with_raw_response.create(model="router", messages=user("write code"))
    completion = raw.parse()
    assert raw.headers["x-lookahead-model"] == completion.model == "echo"
    assert completion.choices[0].message.content == "echo|write code"
    assert completion.usage is not None and completion.usage.total_tokens == 2


def test_openai_client_streaming_with_usage(server):
    raw = client(server).chat.completions.with_raw_response.create(
        model="router", messages=user("math proof"), stream=True, stream_options={"include_usage": True}
    )
    assert raw.headers["x-lookahead-model"] == "bravo"
    chunks = list(raw.parse())
    assert {c.model for c in chunks} == {"bravo"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "bravo|math proof"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None  # OpenAI's usage chunk comes last
    assert chunks[-1].usage.completion_tokens == 3


def test_openai_client_raises_the_right_exceptions(server):
    c = client(server)
    with pytest.raises(openai.NotFoundError) as info:
        c.chat.completions.create(model="gpt-17", messages=user("x"))
    assert info.value.code == "model_not_found" and "valid: router" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        c.chat.completions.create(model="router:λ=abc", messages=user("x"))
    assert info.value.code == "invalid_model"
    with pytest.raises(openai.APIStatusError) as info:
        c.chat.completions.create(model="delta", messages=user("x"))  # nothing listens on delta's port
    assert info.value.status_code == 502 and info.value.code == "backend_unavailable"
    with pytest.raises(openai.APIStatusError) as info:
        c.chat.completions.create(model="charlie", messages=user("x"), extra_body={"stub": {"delay": 3}})
    assert info.value.status_code == 504 and info.value.code == "timeout"
    with pytest.raises(openai.InternalServerError) as info:
        c.chat.completions.create(model="router", messages=user("please explode"))
    assert info.value.status_code == 500 and info.value.code == "routing_failed"
    with pytest.raises(openai.BadRequestError) as info:
        c.chat.completions.create(model="router", messages=user("x"), extra_body={"lookahead": {"return_scorez": 1}})
    assert "lookahead.return_scorez" in info.value.message


# --- opt-in scores ----------------------------------------------------------------------------------------------


def test_scores_are_never_sent_unless_asked(server):
    raw = client(server).chat.completions.with_raw_response.create(model="router", messages=user("write code"))
    assert "x-lookahead-scores" not in raw.headers
    extra = raw.parse().model_extra or {}
    assert "lookahead" not in extra
    raw = client(server).chat.completions.with_raw_response.create(
        model="router", messages=user("write code"), stream=True
    )
    assert "x-lookahead-scores" not in raw.headers
    assert all("lookahead" not in (chunk.model_extra or {}) for chunk in raw.parse())


@pytest.mark.parametrize("ask", ["header", "body"])
def test_scores_on_request_by_header_or_body(server, ask):
    options: dict[str, Any] = (
        {"extra_headers": {"x-lookahead-return-scores": "true"}}
        if ask == "header"
        else {"extra_body": {"lookahead": {"return_scores": True}}}
    )
    raw = client(server).chat.completions.with_raw_response.create(model="router", messages=user("code"), **options)
    completion = raw.parse()
    body = (completion.model_extra or {})["lookahead"]
    assert json.loads(raw.headers["x-lookahead-scores"]) == body
    assert body["model"] == completion.model == "echo"
    assert list(body["probabilities"]) == CANDIDATES
    assert body["probabilities"]["echo"] == pytest.approx(0.9) and body["probabilities"]["alpha"] == pytest.approx(0.1)
    assert set(body["scores"]) == set(CANDIDATES) and body["route_ms"] > 0
    assert "lookahead" not in (completion.model_extra or {})["stub_extra"]  # the option is not forwarded


def test_scores_on_a_stream_come_in_the_header(server):
    raw = client(server).chat.completions.with_raw_response.create(
        model="router", messages=user("math"), stream=True, extra_headers={"x-lookahead-return-scores": "1"}
    )
    scores = json.loads(raw.headers["x-lookahead-scores"])
    assert scores["model"] == "bravo" and scores["probabilities"]["bravo"] == pytest.approx(0.9)
    assert {chunk.model for chunk in raw.parse()} == {"bravo"}
    direct = client(server).chat.completions.with_raw_response.create(
        model="alpha", messages=user("x"), extra_headers={"x-lookahead-return-scores": "true"}
    )
    assert json.loads(direct.headers["x-lookahead-scores"]) == {
        "model": "alpha", "scores": None, "probabilities": None, "route_ms": 0.0
    }  # fmt: skip
    with pytest.raises(openai.BadRequestError) as info:
        client(server).chat.completions.create(
            model="router", messages=user("x"), extra_headers={"x-lookahead-return-scores": "maybe"}
        )
    assert "x-lookahead-return-scores" in info.value.message


# --- metrics ----------------------------------------------------------------------------------------------------


def test_metrics_count_requests_errors_latencies_and_batches(stub_url):
    with running(create_app(KeywordRouter(CANDIDATES), backends(stub_url))) as url:
        c = client(url)
        for _ in range(3):
            c.chat.completions.create(model="router", messages=user("code"))
        list(c.chat.completions.create(model="router", messages=user("code"), stream=True))
        c.chat.completions.create(model="bravo", messages=user("x"))
        c.chat.completions.create(model="router:λ=10", messages=user("code"))  # alpha: cheaper by λ·0.1
        for model in ("gpt-17", "delta"):
            with pytest.raises(openai.APIStatusError):
                c.chat.completions.create(model=model, messages=user("x"))

        def counted() -> bool:
            s = scrape(url)
            return sum(v for (name, _), v in s.items() if name == "lookahead_requests_total") == 8

        eventually(counted)
        s = scrape(url)
    requests = "lookahead_requests_total"
    assert sample(s, requests, model="echo", route="router", status="200") == 4
    assert sample(s, requests, model="alpha", route="router:lambda", status="200") == 1
    assert sample(s, requests, model="bravo", route="direct", status="200") == 1
    assert sample(s, requests, model="none", route="unknown", status="404") == 1
    assert sample(s, requests, model="delta", route="direct", status="502") == 1
    assert sample(s, "lookahead_errors_total", code="model_not_found") == 1
    assert sample(s, "lookahead_errors_total", code="backend_unavailable") == 1
    assert sample(s, "lookahead_errors_total", code="timeout") == 0  # every known code has a series from the start
    assert sample(s, "lookahead_route_seconds_count") == 5  # the routed requests (direct ones are not routed)
    assert sample(s, "lookahead_route_batch_size_sum") == 5  # each prompt routed exactly once
    assert sample(s, "lookahead_upstream_headers_seconds_count", model="echo") == 4
    assert sample(s, "lookahead_upstream_seconds_count", model="echo") == 4
    assert "lookahead_upstream_seconds_count" not in {n for n, labels in s if dict(labels).get("model") == "delta"}
    assert sample(s, "lookahead_in_flight_requests") == 0 and sample(s, "lookahead_route_queue_depth") == 0
    assert sample(s, "lookahead_ready") == 1


# --- calibrations -----------------------------------------------------------------------------------------------


def calibration(name: str, rule: str, costs: tuple[float, ...], **value: float) -> Calibration:
    return Calibration(name, tuple(CANDIDATES), DecisionRule(rule, costs=costs, **value))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def calibrated(stub_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, KeywordRouter]]:
    home = tmp_path_factory.mktemp("run")
    save_calibration(home, calibration("cheap", "penalty", (0.0, 1.0, 1.0, 1.0, 1.0), lam=1.0))  # its own costs
    save_calibration(home, calibration("exact", "penalty", SERVER_COSTS, lam=10.0))  # fitted on the server's costs
    save_calibration(home, calibration("thrifty", "threshold", (5.0, 4.0, 3.0, 2.0, 1.0), tau=0.05))
    router = KeywordRouter(CANDIDATES, home=str(home))
    with running(create_app(router, backends(stub_url))) as url:
        yield url, router


def test_calibrations_are_listed_and_answer_with_their_own_rule_and_costs(calibrated):
    url, router = calibrated
    models = client(url).models.list()
    assert [m.id for m in models.data] == ["router", "router:cheap", "router:exact", "router:thrifty", *CANDIDATES]
    detail = (models.data[1].model_extra or {})["lookahead"]
    assert detail["rule"] == "penalty" and detail["lam"] == 1.0
    c = client(url)

    def chosen(model: str, text: str) -> str:
        return c.chat.completions.create(model=model, messages=user(text)).model

    # "code" → echo (p 0.9) by argmax; λ=1 with echo costing 1 more than alpha: 0.9 − 1 < 0.1 → alpha
    assert chosen("router", "code") == "echo"
    assert chosen("router:cheap", "code") == "alpha"
    assert router.rules[-1] == ("penalty", 1.0, 0.5)
    # the server's own costs give echo only 0.1 more than alpha: router:λ=1 keeps echo (0.8 > 0.1)
    assert chosen("router:λ=1", "code") == "echo"
    # τ = 0.05: every candidate qualifies, so the cheapest by the calibration's costs (echo) answers "math" too
    assert chosen("router:thrifty", "math") == "echo"
    assert router.rules[-1] == ("threshold", 0.0, 0.05)
    with pytest.raises(openai.NotFoundError) as info:
        chosen("router:chep", "code")
    assert "did you mean 'cheap'" in info.value.message


def test_calibration_with_other_costs_is_warned_about_at_start(stub_url, tmp_path: Path, caplog):
    save_calibration(tmp_path, calibration("cheap", "penalty", (0.0, 1.0, 1.0, 1.0, 1.0), lam=1.0))
    save_calibration(tmp_path, calibration("exact", "penalty", SERVER_COSTS, lam=10.0))
    caplog.set_level(logging.WARNING, logger="lightning_lookahead.serving")
    create_app(KeywordRouter(CANDIDATES, home=str(tmp_path)), backends(stub_url))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "calibration 'cheap'" in warnings[0] and "own costs" in warnings[0]
    (tmp_path / "calibrations.json").write_text('{"version": 1, "calibrations": {"x": {"rule": "penalty"}}}')
    with pytest.raises(LookaheadError, match=r"calibrations\.json.*missing field"):
        create_app(KeywordRouter(CANDIDATES, home=str(tmp_path)), backends(stub_url))


def test_batcher_groups_by_decision_rule_and_bounds_its_queue():
    costs = tuple(SERVER_COSTS)

    async def main() -> tuple[list[int], list[str], bool]:
        router = KeywordRouter(CANDIDATES, delay_s=0.3)
        batcher = RouteBatcher(router, max_batch=32, max_queue=3)
        batcher.start()
        first = asyncio.create_task(batcher.route("hi"))
        while not router.calls:  # the router is busy with the first prompt: the others queue up
            await asyncio.sleep(0.005)
        same_a = DecisionRule("penalty", 10.0, 0.5, costs)
        same_b = DecisionRule("penalty", 10.0, 0.5, tuple(list(costs)))  # equal by value, from another request
        other = DecisionRule("threshold", tau=0.05, costs=costs)
        asks = (("code", same_a), ("math", same_b), ("x", other))
        queued = [asyncio.create_task(batcher.route(text, rule)) for text, rule in asks]
        await asyncio.sleep(0)  # let them enqueue
        try:
            await batcher.route("one too many")
            refused = False
        except QueueFull:
            refused = True
        decisions = await asyncio.gather(first, *queued)
        await batcher.stop()
        return router.calls, [d.model for d in decisions], refused

    calls, models, refused = asyncio.run(main())
    assert refused
    assert calls == [1, 2, 1]  # after the first call: one call per distinct rule
    assert models == ["alpha", "alpha", "alpha", "alpha"]


# --- readiness while the router loads ---------------------------------------------------------------------------


def test_ready_is_503_until_a_slow_load_finishes(stub_url):
    gate = threading.Event()

    def slow_loader() -> LoadedRouter:
        assert gate.wait(10)
        return LoadedRouter(KeywordRouter(CANDIDATES), backends(stub_url))

    try:
        with running(create_app(loader=slow_loader)) as url:
            health = httpx.get(f"{url}/health", timeout=TIMEOUT)
            assert health.status_code == 200 and health.json()["status"] == "ok"  # liveness answers at once
            assert health.json()["ready"] is False and health.json()["router_kind"] is None
            ready = httpx.get(f"{url}/ready", timeout=TIMEOUT)
            assert ready.status_code == 503 and ready.json()["status"] == "loading" and ready.headers["retry-after"]
            with pytest.raises(openai.APIStatusError) as info:
                client(url).chat.completions.create(model="router", messages=user("code"))
            assert info.value.status_code == 503 and info.value.code == "not_ready"
            assert int(info.value.response.headers["retry-after"]) > 0
            assert httpx.get(f"{url}/v1/models", timeout=TIMEOUT).status_code == 503
            assert sample(scrape(url), "lookahead_ready") == 0
            gate.set()
            eventually(lambda: httpx.get(f"{url}/ready", timeout=TIMEOUT).status_code == 200)
            assert client(url).chat.completions.create(model="router", messages=user("code")).model == "echo"
            assert sample(scrape(url), "lookahead_ready") == 1
            assert sample(scrape(url), "lookahead_errors_total", code="not_ready") == 2
    finally:
        gate.set()


def test_a_failed_load_is_reported(stub_url):
    heard: list[str] = []

    def broken() -> LoadedRouter:
        raise LookaheadError("backends.yaml: no backend for candidate 'echo'")

    with running(create_app(loader=broken, on_load_error=heard.append)) as url:
        eventually(lambda: bool(heard))
        ready = httpx.get(f"{url}/ready", timeout=TIMEOUT)
        health = httpx.get(f"{url}/health", timeout=TIMEOUT)
        chat = httpx.post(f"{url}/v1/chat/completions", json={"model": "router", "messages": user("x")})
    assert heard == ["backends.yaml: no backend for candidate 'echo'"]
    assert ready.status_code == 503 and ready.json()["status"] == "failed" and "echo" in ready.json()["error"]
    assert health.status_code == 503 and health.json()["status"] == "failed"
    assert chat.status_code == 503 and "failed to load" in chat.json()["error"]["message"]


# --- bounded load -----------------------------------------------------------------------------------------------


def test_overload_is_503_with_retry_after_and_the_server_recovers(stub_url):
    settings = ServerSettings(max_in_flight=3)
    with running(create_app(KeywordRouter(CANDIDATES), backends(stub_url), settings)) as url:

        async def main() -> tuple[list[httpx.Response], list[Any], bool, httpx.Response]:
            async with httpx.AsyncClient(timeout=TIMEOUT) as http:
                body = {"model": "router", "messages": user("hi"), "stub": {"delay": 1.5}}
                slow = [asyncio.create_task(http.post(f"{url}/v1/chat/completions", json=body)) for _ in range(3)]
                deadline = time.monotonic() + 5
                while (await http.get(f"{url}/health")).json()["in_flight"] < 3:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.02)
                oai = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
                refused: list[Any] = [await http.post(f"{url}/v1/chat/completions", json=body)]
                try:
                    await oai.chat.completions.create(model="router", messages=user("hi"))
                except openai.APIStatusError as exc:
                    refused.append(exc)
                answered_while_full = not any(t.done() for t in slow)
                done = list(await asyncio.gather(*slow))
                after = await http.post(f"{url}/v1/chat/completions", json={"model": "router", "messages": user("hi")})
                await oai.close()
            return done, refused, answered_while_full, after

        done, refused, answered_while_full, after = asyncio.run(main())
        eventually(lambda: sample(scrape(url), "lookahead_in_flight_requests") == 0)
        s = scrape(url)
    plain, from_openai = refused
    assert plain.status_code == 503 and plain.json()["error"]["code"] == "overloaded"
    assert plain.headers["retry-after"] == "1"
    assert isinstance(from_openai, openai.APIStatusError) and from_openai.status_code == 503
    assert from_openai.code == "overloaded" and from_openai.response.headers["retry-after"] == "1"
    assert answered_while_full  # refused at once, not queued behind the slow ones
    assert [r.status_code for r in done] == [200, 200, 200]
    assert after.status_code == 200  # recovered
    assert sample(s, "lookahead_errors_total", code="overloaded") == 2
    assert sample(s, "lookahead_requests_total", model="none", route="unrouted", status="503") == 2


def test_a_full_routing_queue_is_503(stub_url):
    router = KeywordRouter(CANDIDATES, delay_s=0.5)
    with running(create_app(router, backends(stub_url), ServerSettings(max_queue=1))) as url:

        async def main() -> list[int]:
            async with httpx.AsyncClient(timeout=TIMEOUT) as http:
                body = {"model": "router", "messages": user("hi")}
                first = asyncio.create_task(http.post(f"{url}/v1/chat/completions", json=body))
                while not router.calls:  # the router is busy with the first request
                    await asyncio.sleep(0.005)
                second = asyncio.create_task(http.post(f"{url}/v1/chat/completions", json=body))
                while (await http.get(f"{url}/health")).json()["queue_depth"] < 1:
                    await asyncio.sleep(0.005)
                third = await http.post(f"{url}/v1/chat/completions", json=body)
                assert third.json()["error"]["code"] == "overloaded" and third.headers["retry-after"] == "1"
                return [third.status_code, *(r.status_code for r in await asyncio.gather(first, second))]

        assert asyncio.run(main()) == [503, 200, 200]
