"""Native route limits: per route and per group (the seeds' shared Whisper bucket), 429 in the
native envelope with Retry-After and X-RateLimit-Type."""

from __future__ import annotations

from tests.gateway.conftest import Gateway
from tests.native.conftest import Native


def test_whisper_routes_share_one_budget(native_gateway: Gateway) -> None:
    client = Native(native_gateway, native_gateway.issue_key("basic-whisper", tier="basic").key)
    first = client.submit("vid2txt", json={"model": "WhisperLargeV3", "include_ts": True,
                                           "video_url": "https://www.youtube.com/watch?v=a"})
    assert first.status_code == 200, first.text
    second = client.submit("aud2txt", json={"model": "WhisperLargeV3", "include_ts": True,
                                            "audio_url": "https://x.com/i/spaces/1AbC"})
    assert second.status_code == 429
    assert second.json() == {"data": None, "message": "Too Many Attempts.", "errors": [], "statusCode": 429}
    assert int(second.headers["retry-after"]) >= 1
    assert second.headers["x-ratelimit-type"] == "minute"
    # Another route is not in the bucket, and the tier's /v1-wide rpm does not apply to it.
    other = client.submit("txt2embedding", json={"model": "Bge_M3_INT8", "input": "hi"})
    assert other.status_code == 200, other.text


def test_request_status_has_its_own_limit(native_gateway: Gateway) -> None:
    client = Native(native_gateway, native_gateway.issue_key("basic-poller", tier="basic").key)
    request_id = client.submit("txt2embedding", json={"model": "Bge_M3_INT8", "input": "hi"}).json()["data"]
    codes = [client.status(request_id["request_id"]).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
