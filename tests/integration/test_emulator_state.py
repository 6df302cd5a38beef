"""/emulator/state: what the soak (bench/soak.py) reads from the emulator — streams still
open, responses paced, and faults injected by kind, whether asked for by header or by rate."""

from __future__ import annotations

import contextlib
import json

import httpx

from tests.integration.servers import emulator

HEADERS = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
BODY = {
    "model": "claude-haiku-4-5",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": "hi"}],
}


def test_state_counts_the_faults_injected_by_kind() -> None:
    rates = json.dumps({"529": 1.0})  # every request without a fault header gets a 529
    with emulator(env={"GATEWAY_EMULATOR__FAULT_RATES": rates}) as url:
        assert httpx.get(url + "/emulator/state").json()["faults"] == {}
        assert httpx.post(url + "/v1/messages", headers=HEADERS, json=BODY).status_code == 529
        cut = {**HEADERS, "x-emulator-fault": "cut"}
        with httpx.stream("POST", url + "/v1/messages", headers=cut, json=BODY) as response:
            assert response.status_code == 200  # cut mid-body: headers first
            with contextlib.suppress(httpx.TransportError):
                response.read()
        once = {**HEADERS, "x-emulator-fault": "500;count=1;id=a"}
        assert httpx.post(url + "/v1/messages", headers=once, json=BODY).status_code == 500
        assert httpx.post(url + "/v1/messages", headers=once, json=BODY).status_code == 200
        state = httpx.get(url + "/emulator/state").json()
    assert state["faults"] == {"529": 1, "cut": 1, "500": 1}
    assert state["open_streams"] == 0
