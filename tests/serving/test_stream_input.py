"""What the server accepts as ``stream``, and streams that a backend ends before they are complete.

The incomplete streams come from a raw-socket backend on loopback that writes its HTTP answer by hand: headers, a
couple of SSE chunks, then it closes the connection, once per way an HTTP body can end (chunked with and without
the last chunk, and close-delimited with neither ``Content-Length`` nor chunking). The client is the real ``openai``
one, which raises ``APIError`` on an OpenAI-style error event.
"""

from __future__ import annotations

import json
import logging
import socketserver
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from stub_backend import KeywordRouter, create_stub_app, running

from lightning_lookahead.serving import Backend, create_app

TIMEOUT = httpx.Timeout(10.0)
#: How the raw backend ends its answer, by candidate name (the path of its base URL).
ENDINGS = {
    "chunked-cut": "chunks, then the connection closes without the last (empty) chunk",
    "chunked-clean": "chunks and the last chunk: the body is complete, the SSE stream is not",
    "close-delimited": "HTTP/1.0-style: no Content-Length, no chunking, the body ends when the connection closes",
    "finished-close": "close-delimited, but the last chunk carries a finish_reason: a complete answer",
    "upstream-error": "close-delimited, the backend's own error event instead of [DONE]",
}


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    body = {"id": "raw", "object": "chat.completion.chunk", "created": 0, "model": "raw", "choices": [choice]}
    return f"data: {json.dumps(body)}\n\n".encode()


class _RawBackend(socketserver.BaseRequestHandler):
    """Reads one request, answers 200 text/event-stream with two chunks, then ends the way its path says."""

    def handle(self) -> None:
        sock = self.request
        data = b""
        while b"\r\n\r\n" not in data:
            more = sock.recv(65536)
            if not more:
                return
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next((int(v) for k, _, v in (x.partition(":") for x in lines[1:]) if k.lower() == "content-length"), 0)
        while len(body) < length:
            body += sock.recv(65536)
        ending = lines[0].split()[1].split("/")[1]
        events = [_chunk("Hello"), _chunk(", wor")]
        if ending == "finished-close":
            events.append(_chunk(None, "stop"))
        if ending == "upstream-error":
            error = {"error": {"message": "the model crashed", "type": "server_error", "param": None, "code": None}}
            events.append(f"data: {json.dumps(error)}\n\n".encode())
        if ending.startswith("chunked"):
            sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            for event in events:
                sock.sendall(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                time.sleep(0.02)
            if ending == "chunked-clean":
                sock.sendall(b"0\r\n\r\n")
        else:
            sock.sendall(b"HTTP/1.0 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
            for event in events:
                sock.sendall(event)
                time.sleep(0.02)
        time.sleep(0.05)  # let the last bytes go before the close


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def raw_url() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _RawBackend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def stub_url() -> Iterator[str]:
    with running(create_stub_app()) as url:
        yield url


@pytest.fixture(scope="module")
def server(raw_url: str, stub_url: str) -> Iterator[str]:
    candidates = ["stub", *ENDINGS]
    backends = {name: Backend(name, f"{raw_url}/{name}/v1", f"upstream-{name}", timeout=5.0) for name in ENDINGS}
    backends["stub"] = Backend("stub", f"{stub_url}/stub/v1", "upstream-stub", timeout=5.0)
    with running(create_app(KeywordRouter(candidates), backends)) as url:
        yield url


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10.0)


def errors(url: str, code: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=TIMEOUT).text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    return sum(s.value for s in samples if s.name == "lookahead_errors_total" and s.labels.get("code") == code)


def eventually(check: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# --- stream must be a JSON boolean ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["yes", "true", "no", "false", 1, 0, "1", None, [], {}])
def test_a_stream_that_is_not_a_boolean_is_a_400_naming_the_field(server, value):
    body = {"model": "stub", "messages": user("hi"), "stream": value}
    response = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=TIMEOUT)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and "stream" in error["message"]
    with pytest.raises(openai.BadRequestError) as info:
        client(server).chat.completions.create(model="stub", messages=user("hi"), stream=value)  # type: ignore[call-overload]
    assert info.value.code == "invalid_request" and "stream" in info.value.message


@pytest.mark.parametrize(("value", "streamed"), [(True, True), (False, False)])
def test_a_boolean_stream_is_forwarded_as_it_came(server, value, streamed):
    body = {"model": "stub", "messages": user("hi"), "stream": value}
    response = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream") is streamed
    if not streamed:
        assert response.json()["stub_received_stream"] is False and response.json()["model"] == "stub"


# --- streams that end before they are complete ------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["chunked-cut", "chunked-clean", "close-delimited"])
def test_a_stream_cut_off_by_the_backend_ends_with_an_error_event_and_is_counted(server, ending, caplog):
    caplog.set_level(logging.INFO, logger="lightning_lookahead.serving")
    before = errors(server, "backend_unavailable")
    received: list[str] = []
    stream = client(server).chat.completions.create(
        model=ending, messages=user("hi"), stream=True, extra_headers={"x-request-id": f"cut-{ending}"}
    )
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert received == ["Hello", ", wor"]  # what the backend sent got through, then the error
    assert info.value.body["code"] == "backend_unavailable"  # type: ignore[index]
    assert ending in info.value.message and "before" in info.value.message
    eventually(lambda: errors(server, "backend_unavailable") == before + 1)
    eventually(lambda: any(f"request_id=cut-{ending}" in r.getMessage() for r in caplog.records))
    line = next(r.getMessage() for r in caplog.records if f"request_id=cut-{ending}" in r.getMessage())
    assert "stream=backend_unavailable" in line and "stream=ok" not in line


def test_the_raw_events_of_a_cut_stream_end_with_one_openai_error_event(server):
    with httpx.stream(
        "POST", f"{server}/v1/chat/completions", json={"model": "close-delimited", "messages": user("hi"),
        "stream": True}, timeout=TIMEOUT,
    ) as response:  # fmt: skip
        text = response.read().decode()
    assert response.status_code == 200
    events = [e for e in text.split("\n\n") if e]
    assert len(events) == 3 and all(e.startswith("data: ") for e in events)
    assert [json.loads(e[6:])["model"] for e in events[:2]] == ["close-delimited"] * 2
    error = json.loads(events[2][6:])["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "upstream_error"


def test_a_stream_whose_last_chunk_has_a_finish_reason_is_complete(server):
    before = errors(server, "backend_unavailable")
    chunks = list(client(server).chat.completions.create(model="finished-close", messages=user("hi"), stream=True))
    assert [c.choices[0].finish_reason for c in chunks] == [None, None, "stop"]
    assert {c.model for c in chunks} == {"finished-close"}
    time.sleep(0.1)
    assert errors(server, "backend_unavailable") == before


def test_a_backends_own_error_event_is_relayed_once_and_counted_as_a_backend_error(server):
    before = errors(server, "backend_error")
    with pytest.raises(openai.APIError) as info:
        list(client(server).chat.completions.create(model="upstream-error", messages=user("hi"), stream=True))
    assert info.value.message == "the model crashed"
    eventually(lambda: errors(server, "backend_error") == before + 1)


def test_a_complete_stream_is_still_ok(server):
    before = errors(server, "backend_unavailable")
    chunks = list(client(server).chat.completions.create(model="stub", messages=user("hi"), stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "stub|hi"
    time.sleep(0.1)
    assert errors(server, "backend_unavailable") == before
