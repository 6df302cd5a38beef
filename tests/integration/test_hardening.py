"""Hardening, against a real `gateway serve` process in front of the emulator.

- fuzzing (hypothesis, raw httpx: malformed input is the point, not an SDK call): random
  and malformed bodies, content types and headers never get a 500 or a hang from the
  gateway — a correct relay, or a well-formed Anthropic error;
- schemathesis on the gateway's own documented endpoints (/openapi.json);
- secrets: a run with a provider key configured and a client key passed through, errors
  and streams included, never shows either key in stdout/stderr, the call log, /metrics,
  response headers or bodies;
- no SSRF: Host, absolute-URI request targets, X-Forwarded-Host and Forwarded never move
  a request off the configured upstream;
- upstream SSE split at random points, or damaged (broken JSON, stray bytes), reaches the
  client byte for byte, metered where it can be, and never turns into a 500.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import socket
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.harness import free_port
from tests.integration.scripted_upstream import ScriptedUpstream, scripted_upstream
from tests.integration.servers import emulator, gateway, metric

MODEL = "claude-sonnet-4-6"
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TIMEOUT = httpx.Timeout(10.0)  # a hang fails the example instead of the suite


@pytest.fixture(scope="module")
def fuzz_client(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=TIMEOUT) as client:
        yield client


def assert_well_formed(response: httpx.Response, sent: object) -> None:
    """No 500 of the gateway's own; any error is Anthropic's error JSON."""
    assert response.status_code != 500, (response.text, sent)
    if response.status_code >= 400:
        body = response.json()
        assert body["type"] == "error", body
        assert isinstance(body["error"]["type"], str)
        assert isinstance(body["error"]["message"], str)
    assert response.headers.get("x-gateway-request-id", "").startswith("gw_")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "", "tool"]), "content": json_values}
)
near_valid_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from([MODEL, "", "claude-nope", "claude-haiku-4-5"]) | json_values,
        "max_tokens": st.integers(-5, 100) | json_values,
        "messages": st.lists(message, max_size=3) | json_values,
        "stream": st.booleans() | json_values,
        "system": json_values,
        "tools": json_values,
        "temperature": json_values,
        "cache_control": json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_valid_bodies.map(lambda v: json.dumps(v).encode()),
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "",
        "application/x-www-form-urlencoded",
        "APPLICATION/JSON",
        "application/jsonx",
    ]
)
header_text = st.text(alphabet=string.ascii_letters + string.digits + " -_.;=/,:", max_size=40).map(
    str.strip
)  # edge whitespace is not a header value: httpx refuses to send it
extra_headers = st.dictionaries(
    st.sampled_from(
        [
            "anthropic-version",
            "anthropic-beta",
            "x-gateway-step",
            "x-api-key",
            "accept",
            "accept-encoding",
            "x-emulator-now",
            "content-encoding",
            "x-custom",
        ]
    ),
    header_text,
    max_size=4,
)


@FUZZ
@given(
    path=st.sampled_from(["/v1/messages", "/v1/messages/count_tokens"]),
    body=bodies,
    content_type=content_types,
    headers=extra_headers,
)
def test_fuzzed_requests_get_a_relay_or_an_anthropic_error(
    fuzz_client: httpx.Client, path: str, body: bytes, content_type: str, headers: dict[str, str]
) -> None:
    sent = {"x-api-key": "sk-ant-fuzz", "anthropic-version": "2023-06-01", **headers}
    sent["content-type"] = content_type
    # A connection per example: an idle keep-alive closing under a loaded machine is not a find.
    sent["connection"] = "close"
    try:
        response = fuzz_client.post(path, content=body, headers=sent)
    except httpx.TransportError as error:  # a dropped or hung connection is a failure too
        raise AssertionError((path, body, sent)) from error
    assert_well_formed(response, (path, body, sent))
    if response.status_code == 200 and "text/event-stream" not in response.headers.get(
        "content-type", ""
    ):
        assert isinstance(response.json(), dict)


@FUZZ
@given(
    method=st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    path=st.sampled_from(["/v1/messages", "/v1/models", "/v1/messages/count_tokens"]),
    query=st.text(alphabet=string.ascii_letters + "=&%?/@:", max_size=30),
)
def test_fuzzed_methods_and_queries_never_fail_inside_the_gateway(
    fuzz_client: httpx.Client, method: str, path: str, query: str
) -> None:
    response = fuzz_client.request(method, f"{path}?{query}", headers={"x-api-key": "sk-ant-fuzz"})
    assert response.status_code != 500, response.text


@pytest.mark.parametrize(
    "raw",
    [
        b"POST /v1/messages HTTP/1.1\r\nhost: a\r\ncontent-length: 10\r\n\r\n{",  # short body
        b"POST /v1/messages HTTP/1.1\r\nhost: a\r\ncontent-length: x\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"BREW /v1/messages HTCPCP/1.0\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS client hello
    ],
)
def test_malformed_http_is_answered_or_closed_never_hung(gateway_url: str, raw: bytes) -> None:
    host, port = gateway_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)  # the client has no more to say
        answer = b""
        while chunk := sock.recv(65536):  # a hang raises socket.timeout after 5 s
            answer += chunk
    assert not answer.startswith(b"HTTP/1.1 500"), answer


# --- schemathesis: the gateway's own documented endpoints ----------------------------------


def test_documented_endpoints_conform_to_their_schema(gateway_url: str) -> None:
    """Every operation in /openapi.json, with generated inputs, answers as documented.
    (schemathesis' pytest plugin is driven by hand: it does not load on this pytest.)"""
    schema = schemathesis.openapi.from_url(gateway_url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/healthz", "/readyz", "/metrics"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None)
        def conforms(case: Any) -> None:
            case.call_and_validate(timeout=10)

        conforms()


# --- secrets -----------------------------------------------------------------------------


def test_keys_never_appear_in_any_output(tmp_path: Path) -> None:
    client_key = "sk-ant-client-" + secrets.token_hex(16)
    provider_key = "sk-ant-provider-" + secrets.token_hex(16)
    keys = [client_key, provider_key, client_key[-16:], provider_key[-16:]]
    allowed = json.dumps([client_key, provider_key])
    call_log = tmp_path / "calls.jsonl"
    seen: list[str] = []
    with emulator(env={"GATEWAY_EMULATOR__API_KEYS": allowed}) as upstream:
        port = free_port()
        env = {
            "GATEWAY_SERVER__START_EMULATOR": "false",
            "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": upstream,
            "GATEWAY_PROVIDERS__ANTHROPIC__EMULATOR": "true",
            "GATEWAY_PROVIDERS__ANTHROPIC__API_KEY": provider_key,
            "GATEWAY_METERING__CALL_LOG": str(call_log),
            "GATEWAY_SERVER__MAX_BODY_BYTES": "5000",
        }
        log = tmp_path / "gateway.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                url = f"http://127.0.0.1:{port}"
                _wait_ready(url)
                seen += _traffic(url, client_key)
                seen.append(httpx.get(url + "/metrics").text)
            finally:
                process.terminate()
                process.wait(timeout=15)
        seen.append(log.read_text(errors="replace"))
        seen.append(call_log.read_text())
    assert json.loads(call_log.read_text().splitlines()[0])["request_id"]
    everything = "\n".join(seen)
    for key in keys:
        assert key not in everything


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise TimeoutError(url)


def _traffic(url: str, key: str) -> list[str]:
    """Successes, streams, and every kind of error, with the key sent both ways it can be."""
    ok = {"model": MODEL, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
    auth = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    bearer = {"authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"}
    wrong = {"x-api-key": key + "x", "anthropic-version": "2023-06-01"}
    calls: list[tuple[str, dict[str, str], Any]] = [
        ("/v1/messages", auth, ok),
        ("/v1/messages", auth, {**ok, "stream": True}),
        ("/v1/messages", bearer, ok),
        ("/v1/messages", wrong, ok),  # 401 upstream
        ("/v1/messages", auth, {**ok, "model": "no-such-model"}),
        ("/v1/messages", auth, b"{not json"),
        ("/v1/messages", {**auth, "content-type": "text/plain"}, b"hi"),
        ("/v1/messages", auth, {**ok, "system": "x" * 6000}),  # 413
        ("/v1/messages", {**auth, "x-emulator-fault": "529"}, ok),
        ("/v1/messages", {**auth, "x-emulator-fault": "429"}, {**ok, "stream": True}),
        ("/v1/messages", {**auth, "x-emulator-fault": "stream-error"}, {**ok, "stream": True}),
        ("/v1/messages", {**auth, "x-emulator-fault": "cut"}, {**ok, "stream": True}),
        ("/v1/messages/count_tokens", auth, {"model": MODEL, "messages": ok["messages"]}),
        ("/v1/models", auth, None),
    ]
    seen = []
    statuses: set[int] = set()
    with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
        for path, headers, body in calls:
            if body is None:
                request = client.build_request("GET", path, headers=headers)
            elif isinstance(body, bytes):
                request = client.build_request(
                    "POST",
                    path,
                    content=body,
                    headers={"content-type": "application/json", **headers},
                )
            else:
                request = client.build_request("POST", path, json=body, headers=headers)
            try:
                response = client.send(request)
                seen += [response.text, repr(response.headers.multi_items())]
                statuses.add(response.status_code)
            except httpx.RemoteProtocolError as cut:  # the cut stream
                seen.append(str(cut))
    # The run covered what it claims: relays that reached upstream, and each kind of error.
    assert statuses >= {200, 400, 401, 404, 413, 415, 429, 529}, statuses
    return seen


# --- SSRF ----------------------------------------------------------------------------------


class Decoy:
    """A listener that must never be reached: it counts every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


def test_the_request_never_chooses_the_upstream(emulator_url: str) -> None:
    decoy = Decoy()
    elsewhere = f"127.0.0.1:{decoy.port}"
    body = json.dumps(
        {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    ).encode()
    common = (
        b"x-api-key: sk-ant-ssrf\r\nanthropic-version: 2023-06-01\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n" % len(body)
    )
    heads = [
        b"POST /v1/messages HTTP/1.1\r\nhost: " + elsewhere.encode() + b"\r\n",
        b"POST http://" + elsewhere.encode() + b"/v1/messages HTTP/1.1\r\nhost: a\r\n",
        b"POST /v1/messages HTTP/1.1\r\nhost: a\r\nx-forwarded-host: "
        + elsewhere.encode()
        + b"\r\n"
        + b"x-forwarded-proto: http\r\nforwarded: host="
        + elsewhere.encode()
        + b"\r\n",
        b"POST /v1/messages?u=http://"
        + elsewhere.encode()
        + b"/&@"
        + elsewhere.encode()
        + b" HTTP/1.1\r\nhost: a\r\n",
        b"POST /v1/%6Dessages HTTP/1.1\r\nhost: a\r\n",
    ]
    with gateway(emulator_url) as url:
        host, port = url.removeprefix("http://").split(":")
        for head in heads:
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(head + common + b"\r\n" + body)
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            status = answer.split(b"\r\n", 1)[0]
            assert status in (b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found"), (head, answer[:300])
    decoy.sock.close()
    assert decoy.connections == 0


# --- upstream SSE, chunked and malformed at random -------------------------------------

STREAM = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1",'
    b'"model":"claude-sonnet-4-6","usage":{"input_tokens":12,"output_tokens":1}}}\n\n'
    b"event: ping\ndata: {}\n\n"
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"Hello"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    b'"usage":{"output_tokens":7}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)
# Damage a provider (or a proxy before it) could do: broken JSON, unknown shapes, bare
# fields, stray line ends, bytes that are not UTF-8.
DAMAGE = st.sampled_from(
    [
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":\n\n',
        b"event: message_delta\ndata: [1, 2\n\n",
        b'event: message_delta\ndata: {"usage": "lots"}\n\n',
        b'event: error\ndata: {"error": 42}\n\n',
        b"data: \xff\xfe\n\n",
        b"\r\r\n\n",
        b": a comment\n",
        b"event: \n",
        b'event: message_start\ndata: {"type":"message_start","message":null}\n\n',
    ]
)


@pytest.fixture(scope="module")
def scripted_gateway() -> Iterator[tuple[str, ScriptedUpstream]]:
    with scripted_upstream() as (upstream_url, upstream), gateway(upstream_url) as url:
        yield url, upstream


def _relay(url: str, upstream: ScriptedUpstream, chunks: list[bytes]) -> httpx.Response:
    upstream.script.chunks = chunks
    body = {"model": MODEL, "max_tokens": 5, "stream": True, "messages": []}
    headers = {"x-api-key": "sk-ant-fuzz", "anthropic-version": "2023-06-01"}
    with httpx.Client(timeout=TIMEOUT) as client:
        response = client.post(url + "/v1/messages", json=body, headers=headers)
    return response


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


@FUZZ
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=40))
def test_a_stream_split_anywhere_is_relayed_byte_for_byte_and_metered(
    scripted_gateway: tuple[str, ScriptedUpstream], cuts: list[int]
) -> None:
    url, upstream = scripted_gateway
    before = metric(url, "gateway_tokens_total", type="output")
    response = _relay(url, upstream, _split(STREAM, cuts))
    assert response.status_code == 200
    assert response.content == STREAM
    assert metric(url, "gateway_tokens_total", type="output") == before + 7


@FUZZ
@given(
    damage=st.lists(DAMAGE, min_size=1, max_size=4),
    at=st.integers(min_value=0, max_value=6),
    cuts=st.lists(st.integers(min_value=0, max_value=len(STREAM) + 200), max_size=20),
)
def test_a_malformed_stream_is_relayed_as_it_came_never_a_500(
    scripted_gateway: tuple[str, ScriptedUpstream], damage: list[bytes], at: int, cuts: list[int]
) -> None:
    url, upstream = scripted_gateway
    events = STREAM.split(b"\n\n")
    damaged = b"\n\n".join(events[:at]) + b"\n\n" + b"".join(damage) + b"\n\n".join(events[at:])
    response = _relay(url, upstream, _split(damaged, cuts))
    assert response.status_code == 200
    assert response.content == damaged  # the client sees what upstream sent, unchanged
    assert httpx.get(url + "/healthz", timeout=TIMEOUT).status_code == 200
