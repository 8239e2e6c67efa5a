"""RunPod's OpenAI passthrough on the emulator: JSON answers, live SSE relay, errors, hang-ups."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.emulator import EmulatorEndpoint
from tests.emulator import workers
from tests.emulator.helpers import health, new_gate, open_gate, poll, running

ENDPOINTS = {
    "vllm": EmulatorEndpoint(handler=workers.openai, concurrency=4),
    "infinity": EmulatorEndpoint(handler=workers.embeddings),
    "dicts": EmulatorEndpoint(handler=workers.dict_chunks),
}
CHAT = "/vllm/openai/v1/chat/completions"


@pytest.fixture(scope="module")
def rp() -> Iterator[httpx.Client]:
    with running(ENDPOINTS) as client:
        yield client


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


def job_with(marker: str) -> str:
    """The id of the job whose OpenAI body carried ``marker`` as its gate (once it started)."""

    def find() -> list[str]:
        return [jid for jid, seen in list(workers.SEEN.items()) if seen.get("body", {}).get("gate") == marker]

    found = poll(find, bool)
    assert len(found) == 1
    return found[0]


def test_sync_chat_unwraps_the_aggregated_list(rp: httpx.Client) -> None:
    response = rp.post(CHAT, json=chat("hi", temperature=0.5))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == {"object": "chat.completion", "model": "m", "choices": [{"message": {"content": "hi"}}]}
    models = rp.get("/vllm/openai/v1/models")
    assert models.status_code == 200 and models.json()["data"][0]["id"] == "m1"
    routes = {seen["route"] for seen in workers.SEEN.values() if "route" in seen}
    assert {"/v1/chat/completions", "/v1/models"} <= routes
    assert health(rp, "vllm")["jobs"]["completed"] >= 2  # passthrough requests are jobs too


def test_sync_embeddings_one_element_list_is_unwrapped(rp: httpx.Client) -> None:
    response = rp.post("/infinity/openai/v1/embeddings", json={"model": "e", "input": "x"})
    assert response.status_code == 200
    assert response.json()["data"][0]["embedding"] == [0.5, -0.25]


def test_stream_relays_each_piece_as_it_is_yielded(rp: httpx.Client) -> None:
    gate = new_gate()
    body = chat("hello", stream=True, gate=gate)
    with rp.stream("POST", CHAT, json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        pieces = response.iter_raw()
        first = next(pieces)
        # The handler is still blocked on the gate: this piece came before the generator finished.
        assert not workers.gate(gate).is_set()
        open_gate(gate)
        text = (first + b"".join(pieces)).decode()
    expected = "".join(workers._sse_pieces(body))
    assert first.decode() == workers._sse_pieces(body)[0] and text == expected  # verbatim, split mid-event
    assert text.endswith("data: [DONE]\n\n")


def test_stream_error_midway_becomes_an_error_event(rp: httpx.Client) -> None:
    gate = new_gate()
    with rp.stream("POST", CHAT, json=chat("break", stream=True, gate=gate)) as response:
        pieces = response.iter_raw()
        first = next(pieces)
        open_gate(gate)
        rest = b"".join(pieces).decode()
    assert first.decode().startswith("data: ")
    assert rest == 'data: {"error":{"message":"GPU fell off","type":"server_error"}}\n\n'


def test_stream_exception_becomes_an_error_event(rp: httpx.Client) -> None:
    response = rp.post(CHAT, json=chat("crash", stream=True))
    assert response.status_code == 200 and response.text.startswith("data: ") and response.text.endswith("\n\n")
    error = json.loads(response.text[len("data: ") :])["error"]
    assert error["type"] == "server_error" and error["code"] is None and error["param"] is None
    # rp_job.run_job_generator's report of an exception inside a generator
    assert error["message"].startswith("handler: worker exploded \ntraceback: ")


def test_stream_of_dict_chunks_is_sent_as_data_events(rp: httpx.Client) -> None:
    response = rp.post("/dicts/openai/v1/chat/completions", json={"stream": True})
    assert response.text == 'data: {"n":1}\n\ndata: {"n":2}\n\n'
    # A handler that does not stream answers with one event holding its (unwrapped) output.
    whole = rp.post("/infinity/openai/v1/embeddings", json={"model": "e", "stream": True})
    assert whole.text.startswith('data: {"object":"list"') and whole.text.endswith("}\n\n")


def test_handler_errors_map_to_openai_errors(rp: httpx.Client) -> None:
    invalid = rp.post(CHAT, json=chat("fail"))
    assert invalid.status_code == 400
    assert invalid.json() == {
        "error": {"type": "invalid_request_error", "message": "cannot do that", "param": "messages", "code": "x"}
    }
    crash = rp.post(CHAT, json=chat("crash"))
    assert crash.status_code == 500
    error = crash.json()["error"]
    assert error["type"] == "server_error" and error["code"] is None and error["param"] is None
    assert error["message"].startswith("handler: worker exploded")
    bad = rp.post(CHAT, content=b"[1, 2]")
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    assert rp.post("/nowhere/openai/v1/chat/completions", json=chat("x")).status_code == 404


def test_hanging_up_a_stream_cancels_the_job(rp: httpx.Client) -> None:
    gate = new_gate()
    with rp.stream("POST", CHAT, json=chat("bye", stream=True, gate=gate)) as response:
        next(response.iter_raw())
    job_id = job_with(gate)
    poll(lambda: job_id in workers.CANCELLED, bool)


def test_hanging_up_a_sync_request_cancels_the_job(rp: httpx.Client) -> None:
    gate = new_gate()
    with pytest.raises(httpx.ReadTimeout):
        rp.post(CHAT, json=chat("bye", gate=gate), timeout=httpx.Timeout(5, read=0.3))
    job_id = job_with(gate)
    poll(lambda: job_id in workers.CANCELLED, bool)
