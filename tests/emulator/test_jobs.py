"""RunPod job API contract: run, runsync, status, stream, cancel, retry, purge-queue, health."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import runpod

from app.emulator import EmulatorEndpoint
from tests.emulator import workers
from tests.emulator.helpers import health, new_gate, open_gate, poll, run, running, status, wait_status

W = "tests.emulator.workers"
ENDPOINTS = {
    "sync": EmulatorEndpoint(handler=f"{W}:echo", concurrency=4),  # by "module:function"
    "async": EmulatorEndpoint(handler=workers.async_echo, concurrency=4),  # by callable
    "gen": EmulatorEndpoint(handler=workers.sync_gen, concurrency=2),
    "agen": EmulatorEndpoint(handler=workers.async_gen, concurrency=2),
    "boom": EmulatorEndpoint(handler=workers.boom),
    "errdict": EmulatorEndpoint(handler=workers.error_dict),
    "sleepy": EmulatorEndpoint(handler=workers.sleepy, concurrency=2),
    "flaky": EmulatorEndpoint(handler=workers.flaky),
    # One each for tests that count queue positions or health, so nothing else disturbs them.
    "fifo": EmulatorEndpoint(handler=workers.echo),
    "cancel-q": EmulatorEndpoint(handler=workers.echo),
    "cancel-sync": EmulatorEndpoint(handler=workers.echo),
    "purge": EmulatorEndpoint(handler=workers.echo),
    "health": EmulatorEndpoint(handler=workers.echo, concurrency=2),
    "ttl": EmulatorEndpoint(handler=workers.async_echo),
}


@pytest.fixture(scope="module")
def rp() -> Iterator[httpx.Client]:
    with running(ENDPOINTS) as client:
        yield client


def test_run_status_lifecycle(rp: httpx.Client) -> None:
    gate = new_gate()
    job_id = run(rp, "sync", {"gate": gate, "x": [1, 2]})
    assert uuid.UUID(job_id).version == 4
    running_body = wait_status(rp, "sync", job_id, "IN_PROGRESS")
    # RunPod echoes the input only while the job runs; our handler's mutation does not leak.
    assert running_body["input"] == {"gate": gate, "x": [1, 2]}
    assert "output" not in running_body and "error" not in running_body
    assert isinstance(running_body["workerId"], str) and running_body["retries"] == 0
    assert isinstance(running_body["delayTime"], int)
    time.sleep(0.05)
    open_gate(gate)
    done = wait_status(rp, "sync", job_id, "COMPLETED")
    assert done["output"] == {"echo": {"gate": gate, "x": [1, 2]}}
    assert "input" not in done and "error" not in done
    assert done["executionTime"] >= 50 and isinstance(done["delayTime"], int)
    assert done["workerId"] == running_body["workerId"]
    # RunPod's status route answers POST too (go-sdk), with the same body.
    assert rp.post(f"/sync/status/{job_id}").json() == done
    # The handler ran in a worker thread and got exactly RunPod's job keys plus the progress hook.
    assert workers.SEEN[job_id] == {"thread": "emulator-handler", "keys": ["_emulator_progress", "id", "input"]}


def test_delay_time_is_queue_wait_and_queue_is_fifo(rp: httpx.Client) -> None:
    gate1, gate2 = new_gate(), new_gate()
    first = run(rp, "fifo", {"gate": gate1})
    wait_status(rp, "fifo", first, "IN_PROGRESS")
    second, third = run(rp, "fifo", {"gate": gate2}), run(rp, "fifo", {"n": 3})
    assert status(rp, "fifo", second)["status"] == "IN_QUEUE"
    time.sleep(0.15)
    open_gate(gate1)
    b2 = wait_status(rp, "fifo", second, "IN_PROGRESS")
    assert b2["delayTime"] >= 150 and status(rp, "fifo", third)["status"] == "IN_QUEUE"
    open_gate(gate2)
    assert wait_status(rp, "fifo", second, "COMPLETED")["delayTime"] == b2["delayTime"]
    assert wait_status(rp, "fifo", third, "COMPLETED")["delayTime"] >= 150


def test_runsync_returns_the_finished_job(rp: httpx.Client) -> None:
    body = rp.post("/async/runsync", json={"input": {"a": 1}}).json()
    assert body["status"] == "COMPLETED" and body["output"] == {"echo": {"a": 1}}
    assert {"id", "delayTime", "executionTime", "workerId", "retries"} <= set(body) and "input" not in body
    assert workers.SEEN[body["id"]]["thread"].startswith("uvicorn-")  # async handlers run on the loop


def test_runsync_not_done_within_wait_returns_current_status(rp: httpx.Client) -> None:
    gate = new_gate()
    started = time.monotonic()
    body = rp.post("/sync/runsync", params={"wait": 10}, json={"input": {"gate": gate}}).json()
    assert time.monotonic() - started >= 0.95  # wait is clamped to RunPod's minimum, 1000 ms
    assert set(body) == {"id", "status"} and body["status"] in ("IN_QUEUE", "IN_PROGRESS")
    open_gate(gate)
    # js-sdk / go-sdk keep waiting with the undocumented long-poll /status-sync.
    done = rp.get(f"/sync/status-sync/{body['id']}", params={"wait": 5000}).json()
    assert done["status"] == "COMPLETED" and done["output"] == {"echo": {"gate": gate}}
    assert rp.post("/sync/runsync", params={"wait": "soon"}, json={"input": {}}).status_code == 400


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({}, "'input'"),
        ({"input": [1]}, "object"),
        ({"input": "text"}, "object"),
        ({"input": {}, "policy": {"executionTimeout": -1}}, "executionTimeout"),
        ({"input": {}, "policy": {"ttl": "soon"}}, "ttl"),
        ({"input": {}, "webhook": "ftp://x"}, "webhook"),
    ],
)
def test_bad_requests_are_400(rp: httpx.Client, payload: dict[str, Any], fragment: str) -> None:
    for route in ("run", "runsync"):
        response = rp.post(f"/sync/{route}", json=payload)
        assert response.status_code == 400 and fragment in response.json()["error"], response.text
    assert rp.post("/sync/run", content=b"{not json").status_code == 400


def test_payload_limits_are_runpods(rp: httpx.Client) -> None:
    big = b'{"input": {"x": "' + b"a" * 10_000_000 + b'"}}'  # over /run's 10 MB, under /runsync's 20 MB
    response = rp.post("/sync/run", content=big)
    assert response.status_code == 413 and "error" in response.json()
    assert rp.post("/sync/runsync", content=big).json()["status"] == "COMPLETED"


def test_unknown_endpoint_and_job_are_404(rp: httpx.Client) -> None:
    for method, path in [("POST", "/nope/run"), ("GET", "/nope/health"), ("GET", "/nope/status/x")]:
        response = rp.request(method, path, json={"input": {}})
        assert response.status_code == 404 and "endpoint not found" in response.json()["error"]
    for method, op in [("GET", "status"), ("GET", "stream"), ("POST", "cancel"), ("POST", "retry")]:
        assert rp.request(method, f"/sync/{op}/{uuid.uuid4()}").status_code == 404
    job_id = rp.post("/sync/runsync", json={"input": {}}).json()["id"]
    assert rp.get(f"/async/status/{job_id}").status_code == 404  # ids belong to their endpoint


def test_stream_chunks_are_returned_once(rp: httpx.Client) -> None:
    gate = new_gate()
    job_id = run(rp, "gen", {"gate": gate, "items": ["a", {"b": 1}, "wait", "c"]})
    seen: list[Any] = []

    def read() -> dict[str, Any]:
        body: dict[str, Any] = rp.get(f"/gen/stream/{job_id}").json()
        seen.extend(item["output"] for item in body["stream"])
        return body

    body = poll(read, lambda _: len(seen) >= 3)
    assert seen == ["a", {"b": 1}, "wait"] and body["status"] == "IN_PROGRESS"
    assert rp.post(f"/gen/stream/{job_id}").json() == {"status": "IN_PROGRESS", "stream": []}  # consumed
    open_gate(gate)
    poll(read, lambda b: b["status"] == "COMPLETED" and not b["stream"])
    assert seen == ["a", {"b": 1}, "wait", "c"]
    assert status(rp, "gen", job_id)["output"] == ["a", {"b": 1}, "wait", "c"]  # aggregated
    assert rp.get(f"/gen/stream/{job_id}").json() == {"status": "COMPLETED", "stream": []}


def test_async_generator_yielding_an_error_fails_the_job(rp: httpx.Client) -> None:
    body = rp.post("/agen/runsync", json={"input": {"items": [1, 2, {"error": {"code": 7}}, 3]}}).json()
    # rp_job.handle_job reports a yielded error as str(error): a dict arrives as its Python repr
    assert body["status"] == "FAILED" and body["error"] == "{'code': 7}" and "output" not in body
    stream = rp.get(f"/agen/stream/{body['id']}").json()["stream"]
    assert [item["output"] for item in stream] == [1, 2]
    ok = rp.post("/agen/runsync", json={"input": {"items": ["x", {"error": ""}]}}).json()
    assert ok["status"] == "COMPLETED" and ok["output"] == ["x", {"error": ""}]  # falsy error is data


def test_exception_is_a_json_string_error(rp: httpx.Client) -> None:
    body = rp.post("/boom/runsync", json={"input": {"n": 3}}).json()
    assert body["status"] == "FAILED" and "output" not in body
    assert isinstance(body["error"], str)
    info = json.loads(body["error"])
    assert info["error_type"] == "<class 'ValueError'>" and info["error_message"] == "kaboom 3"
    assert "ValueError: kaboom 3" in info["error_traceback"] and info["runpod_version"] == runpod.__version__
    assert {"hostname", "worker_id"} <= set(info)


def test_returned_error_dict_fails_with_that_value(rp: httpx.Client) -> None:
    body = rp.post("/errdict/runsync", json={"input": {}}).json()
    assert body["status"] == "FAILED" and "output" not in body
    assert body["error"] == {"type": "invalid_request_error", "message": "bad prompt", "param": "prompt"}


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ({"refresh_worker": True, "a": 1}, {"a": 1}),  # popped, as the SDK does
        ({"error": None, "a": 1}, {"a": 1}),
        ([1, "two"], [1, "two"]),
        ("text", "text"),
        (None, None),
    ],
)
def test_returned_values_become_output(rp: httpx.Client, returned: Any, expected: Any) -> None:
    body = rp.post("/sync/runsync", json={"input": {"return": returned}}).json()
    assert body["status"] == "COMPLETED" and body["output"] == expected


def test_empty_dict_output_is_completed_without_output(rp: httpx.Client) -> None:
    body = rp.post("/sync/runsync", json={"input": {"return": {"refresh_worker": False}}}).json()
    assert body["status"] == "COMPLETED" and "output" not in body  # RunPod's "no output" case


def test_progress_shows_as_output_while_in_progress(rp: httpx.Client) -> None:
    gate = new_gate()
    job_id = run(rp, "sync", {"gate": gate, "progress": 42})
    body = poll(lambda: status(rp, "sync", job_id), lambda b: "output" in b)
    assert body["status"] == "IN_PROGRESS" and body["output"] == {"progress": 42.0}
    assert body["input"] == {"gate": gate, "progress": 42}
    open_gate(gate)
    done = wait_status(rp, "sync", job_id, "COMPLETED")
    assert done["output"] == {"echo": {"gate": gate, "progress": 42}}


def test_cancel_queued_job(rp: httpx.Client) -> None:
    gate = new_gate()
    first = run(rp, "cancel-q", {"gate": gate})
    wait_status(rp, "cancel-q", first, "IN_PROGRESS")
    queued = run(rp, "cancel-q", {"never": True})
    assert rp.post(f"/cancel-q/cancel/{queued}").json() == {"id": queued, "status": "CANCELLED"}
    assert health(rp, "cancel-q")["jobs"]["inQueue"] == 0
    open_gate(gate)
    wait_status(rp, "cancel-q", first, "COMPLETED")
    body = status(rp, "cancel-q", queued)
    assert body["status"] == "CANCELLED" and "workerId" not in body and queued not in workers.SEEN


def test_cancel_running_async_job_raises_cancelled_error(rp: httpx.Client) -> None:
    job_id = run(rp, "async", {"gate": new_gate()})
    wait_status(rp, "async", job_id, "IN_PROGRESS")
    assert rp.post(f"/async/cancel/{job_id}").json() == {"id": job_id, "status": "CANCELLED"}
    poll(lambda: job_id in workers.CANCELLED, bool)
    assert status(rp, "async", job_id)["status"] == "CANCELLED"


def test_cancel_running_sync_job_abandons_its_thread(rp: httpx.Client) -> None:
    gate = new_gate()
    job_id = run(rp, "cancel-sync", {"gate": gate})
    wait_status(rp, "cancel-sync", job_id, "IN_PROGRESS")
    rp.post(f"/cancel-sync/cancel/{job_id}")
    # The one worker slot is free again although the abandoned thread still blocks.
    after = rp.post("/cancel-sync/runsync", json={"input": {"next": 1}}).json()
    assert after["status"] == "COMPLETED"
    open_gate(gate)
    time.sleep(0.05)
    body = status(rp, "cancel-sync", job_id)
    assert body["status"] == "CANCELLED" and "output" not in body  # the late result is ignored


def test_cancel_terminal_job_leaves_it(rp: httpx.Client) -> None:
    job_id = rp.post("/sync/runsync", json={"input": {}}).json()["id"]
    assert rp.post(f"/sync/cancel/{job_id}").json() == {"id": job_id, "status": "COMPLETED"}
    assert status(rp, "sync", job_id)["output"] == {"echo": {}}


def test_retry_failed_job(rp: httpx.Client) -> None:
    first = rp.post("/flaky/runsync", json={"input": {"k": "v"}}).json()
    assert first["status"] == "FAILED" and first["retries"] == 0
    job_id = first["id"]
    assert rp.post(f"/flaky/retry/{job_id}").json() == {"id": job_id, "status": "IN_QUEUE"}
    body = wait_status(rp, "flaky", job_id, "COMPLETED")
    assert body["retries"] == 1 and body["output"] == {"ok": True} and "error" not in body
    again = rp.post(f"/flaky/retry/{job_id}")
    assert again.status_code == 400 and "COMPLETED" in again.json()["error"]
    assert health(rp, "flaky")["jobs"]["retried"] == 1


def test_purge_queue_removes_only_queued_jobs(rp: httpx.Client) -> None:
    gate = new_gate()
    running_id = run(rp, "purge", {"gate": gate})
    wait_status(rp, "purge", running_id, "IN_PROGRESS")
    queued = [run(rp, "purge", {"n": n}) for n in range(2)]
    assert rp.post("/purge/purge-queue").json() == {"removed": 2, "status": "completed"}
    assert status(rp, "purge", running_id)["status"] == "IN_PROGRESS"
    assert [status(rp, "purge", q)["status"] for q in queued] == ["CANCELLED", "CANCELLED"]
    open_gate(gate)
    wait_status(rp, "purge", running_id, "COMPLETED")
    assert rp.post("/purge/purge-queue").json() == {"removed": 0, "status": "completed"}


def test_health_counts_jobs_and_workers(rp: httpx.Client) -> None:
    idle = health(rp, "health")
    assert idle["jobs"] == {"completed": 0, "failed": 0, "inProgress": 0, "inQueue": 0, "retried": 0}
    assert idle["workers"] == {"idle": 2, "running": 0, "initializing": 0, "ready": 0, "throttled": 0}
    gate = new_gate()
    ids = [run(rp, "health", {"gate": gate}) for _ in range(3)]
    busy = poll(lambda: health(rp, "health"), lambda h: h["jobs"]["inProgress"] == 2)
    assert busy["jobs"]["inQueue"] == 1
    assert busy["workers"] == {"idle": 0, "running": 2, "initializing": 0, "ready": 0, "throttled": 0}
    open_gate(gate)
    for job_id in ids:
        wait_status(rp, "health", job_id, "COMPLETED")
    rp.post("/health/runsync", json={"input": {"return": {"error": "no"}}})
    done = health(rp, "health")
    assert done["jobs"] == {"completed": 3, "failed": 1, "inProgress": 0, "inQueue": 0, "retried": 0}
    assert done["workers"] == {"idle": 2, "running": 0, "initializing": 0, "ready": 2, "throttled": 0}


def test_execution_timeout_times_out_async_and_sync_jobs(rp: httpx.Client) -> None:
    policy = {"executionTimeout": 200}
    async_id = run(rp, "async", {"gate": new_gate()}, policy=policy)
    sync_id = run(rp, "sleepy", {"s": 3}, policy=policy)
    for endpoint, job_id in (("async", async_id), ("sleepy", sync_id)):
        body = wait_status(rp, endpoint, job_id, "TIMED_OUT", "COMPLETED", "FAILED")
        assert body["status"] == "TIMED_OUT" and "output" not in body
        assert 200 <= body["executionTime"] < 2000
    assert async_id in workers.CANCELLED  # the async handler got CancelledError
    assert rp.post(f"/sleepy/retry/{sync_id}").json() == {"id": sync_id, "status": "IN_QUEUE"}
    rp.post(f"/sleepy/cancel/{sync_id}")


def test_ttl_deletes_the_job_even_mid_run(rp: httpx.Client) -> None:
    running_id = run(rp, "ttl", {"gate": new_gate()}, policy={"ttl": 300})
    wait_status(rp, "ttl", running_id, "IN_PROGRESS")
    queued_id = run(rp, "ttl", {"gate": new_gate()}, policy={"ttl": 300})
    poll(lambda: rp.get(f"/ttl/status/{running_id}").status_code, lambda code: code == 404)
    poll(lambda: rp.get(f"/ttl/status/{queued_id}").status_code, lambda code: code == 404)
    poll(lambda: running_id in workers.CANCELLED, bool)  # the running attempt was stopped
    assert health(rp, "ttl")["jobs"]["inProgress"] == 0 and health(rp, "ttl")["jobs"]["inQueue"] == 0


def test_results_expire_after_their_ttl() -> None:
    endpoints = {"e": EmulatorEndpoint(handler=workers.echo, concurrency=2)}
    with running(endpoints, run_result_ttl_s=1.2, runsync_result_ttl_s=0.2) as client:
        gate = new_gate()
        held = run(client, "e", {"gate": gate})
        time.sleep(0.3)  # longer than the runsync TTL: the clock starts at completion
        open_gate(gate)
        async_done = wait_status(client, "e", held, "COMPLETED")
        sync_id = client.post("/e/runsync", json={"input": {}}).json()["id"]
        finished = time.monotonic()
        assert status(client, "e", sync_id)["status"] == "COMPLETED"
        poll(lambda: client.get(f"/e/status/{sync_id}").status_code, lambda code: code == 404)
        if time.monotonic() - finished < 1.0:  # unless this machine is very slow
            assert status(client, "e", held) == async_done
        poll(lambda: client.get(f"/e/status/{held}").status_code, lambda code: code == 404)
        assert client.post(f"/e/retry/{held}").status_code == 404  # an expired job cannot be retried
