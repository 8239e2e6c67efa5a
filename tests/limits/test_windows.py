"""Tier and per-surface windows, the 429 body, Retry-After and x-ratelimit-* headers, jobs_rpm."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis
from prometheus_client import REGISTRY
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from app.limits import duration
from app.routing.loader import RoutingError, parse_routing
from tests.gateway.conftest import ADMIN_KEY, Gateway, start_gateway
from tests.limits.conftest import routing_with, sub_prefix, wait_for_fresh_minute
from tests.support.servers import ServerThread

LIMITS = """
limits:
  jobs_rpm: 3
  tiers:
    basic: {rpm: 5, rpd: 500, surfaces: {images: {rpm: 2, rpd: 100}, embeddings: {rpd: 3}}}
    premium: {rpm: 300}
"""
RESET = re.compile(r"^(?:\d+h)?(?:\d+m)?\d+s$")
CHAT = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def gw(emulator: ServerThread, redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    upstream = f"{emulator.url}/v2"
    gateway = start_gateway(
        upstream, redis_url, sub_prefix(redis_prefix), admin_key=ADMIN_KEY, routing=routing_with(upstream, LIMITS)
    )
    yield gateway
    gateway.server.stop()


def post(gw: Gateway, key: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{gw.url}{path}", json=body, headers={"authorization": f"Bearer {key}"}, timeout=20)


def remaining(response: httpx.Response) -> int:
    return int(response.headers["x-ratelimit-remaining-requests"])


def limited_count(tier: str, surface: str) -> float:
    return REGISTRY.get_sample_value("dryapi_rate_limited_total", {"tier": tier, "surface": surface}) or 0.0


def test_duration_uses_openai_form() -> None:
    assert [duration(s) for s in (0.2, 12, 59.01, 63, 3600, 86399.5)] == [
        "1s",
        "12s",
        "1m0s",
        "1m3s",
        "1h0m0s",
        "24h0m0s",
    ]


def test_tier_minute_window_headers_and_429(gw: Gateway, redis_url: str) -> None:
    key = gw.issue_key("basic-chat", tier="basic").key
    wait_for_fresh_minute(redis_url)
    before = limited_count("basic", "chat")
    answers = [post(gw, key, "/v1/chat/completions", CHAT) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert [remaining(a) for a in answers] == [4, 3, 2, 1, 0]
    for answer in answers:
        assert answer.headers["x-ratelimit-limit-requests"] == "5"
        reset = answer.headers["x-ratelimit-reset-requests"]
        assert RESET.match(reset) and "h" not in reset, reset
    refused = post(gw, key, "/v1/chat/completions", CHAT)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert "5 per minute" in error["message"]
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-limit-requests"] == "5"
    assert "x-should-retry" not in refused.headers  # a later retry is the right move
    assert limited_count("basic", "chat") == before + 1


def test_surface_window_counts_on_top_of_the_tier(gw: Gateway, redis_url: str) -> None:
    key = gw.issue_key("basic-images", tier="basic").key
    wait_for_fresh_minute(redis_url)
    image = {"model": "tiny-image", "prompt": "p", "response_format": "b64_json"}
    first, second = (post(gw, key, "/v1/images/generations", image) for _ in range(2))
    assert (first.status_code, second.status_code) == (200, 200)
    # images rpm 2 is the tightest window: 1 then 0 left.
    assert (remaining(first), remaining(second)) == (1, 0)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    refused = post(gw, key, "/v1/images/generations", image)
    assert refused.status_code == 429 and "on images" in refused.json()["error"]["message"]
    # Other surfaces still have the tier's room; the refused request consumed none of it.
    chat = post(gw, key, "/v1/chat/completions", CHAT)
    assert chat.status_code == 200
    assert (chat.headers["x-ratelimit-limit-requests"], remaining(chat)) == ("5", 2)


def test_day_window_resets_at_utc_midnight(gw: Gateway) -> None:
    key = gw.issue_key("basic-embed", tier="basic").key
    answers = [post(gw, key, "/v1/embeddings", {"model": "tiny-embed", "input": "x"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3
    assert [remaining(a) for a in answers] == [2, 1, 0]  # embeddings rpd 3 is the tightest
    refused = post(gw, key, "/v1/embeddings", {"model": "tiny-embed", "input": "x"})
    assert refused.status_code == 429 and "3 per day" in refused.json()["error"]["message"]
    now = datetime.now(UTC)
    to_midnight = 86400 - (now.hour * 3600 + now.minute * 60 + now.second)
    assert abs(int(refused.headers["retry-after"]) - to_midnight) <= 3
    assert RESET.match(refused.headers["x-ratelimit-reset-requests"])


def test_error_responses_carry_the_headers(gw: Gateway) -> None:
    key = gw.issue_key("basic-errors", tier="basic").key
    bad = post(gw, key, "/v1/chat/completions", {"model": "tiny-chat", "messages": []})
    assert bad.status_code == 400 and remaining(bad) == 4
    unknown = post(gw, key, "/v1/chat/completions", {**CHAT, "model": "no-such-model"})
    assert unknown.status_code == 404 and remaining(unknown) == 3
    stream = httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={**CHAT, "stream": True},
        headers={"authorization": f"Bearer {key}"},
        timeout=20,
    )
    assert stream.status_code == 200 and remaining(stream) == 2 and "[DONE]" in stream.text


def test_unlisted_tiers_and_the_operator_are_unlimited(gw: Gateway, redis_url: str) -> None:
    issued = gw.issue_key("gold", tier="gold")  # not in limits.tiers
    for key in (issued.key, ADMIN_KEY):
        answer = post(gw, key, "/v1/chat/completions", CHAT)
        assert answer.status_code == 200
        assert not any(h.startswith("x-ratelimit") for h in answer.headers)
    client = redis.Redis.from_url(redis_url)
    try:
        # No counter exists for the unlimited key: its requests never touched the limiter.
        assert list(client.scan_iter(match=f"{gw.settings.redis_prefix}rl:*{issued.id}*")) == []
    finally:
        client.close()


def test_jobs_rpm_on_status_reads_and_websocket_opens(gw: Gateway, redis_url: str) -> None:
    wait_for_fresh_minute(redis_url)
    key = gw.issue_key("jobs-reader", tier="basic").key
    auth = {"authorization": f"Bearer {key}"}
    reads = [httpx.get(f"{gw.url}/v1/jobs/chat/no-such-job", headers=auth) for _ in range(3)]
    assert [r.status_code for r in reads] == [404] * 3
    assert [remaining(r) for r in reads] == [2, 1, 0]
    refused = httpx.get(f"{gw.url}/v1/jobs/chat/no-such-job/download", headers=auth)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-limit-requests"] == "3"

    other = gw.issue_key("ws-watcher", tier="basic").key
    ws = f"{gw.url.replace('http', 'ws')}/v1/jobs/chat/no-such-job/ws"
    codes = []
    for _ in range(4):
        with connect(ws, additional_headers={"authorization": f"Bearer {other}"}) as socket:
            with pytest.raises(ConnectionClosed) as closed:
                socket.recv(timeout=5)
            assert closed.value.rcvd is not None
            codes.append(closed.value.rcvd.code)
    assert codes == [4404, 4404, 4404, 4429]
    # Inference windows are separate from jobs_rpm.
    assert post(gw, other, "/v1/chat/completions", CHAT).status_code == 200


def test_limits_section_is_validated_with_yaml_paths() -> None:
    text = """
limits:
  jobs_rpm: 0
  tiers:
    basic: {rpm: -1, surfaces: {hologram: {rpm: 1}, images: {rpmm: 3}, chat: {rpd: 0}}}
    premium: 5
    gold: {surfaces: [1]}
"""
    with pytest.raises(RoutingError) as caught:
        parse_routing(text)
    where = [path for path, _ in caught.value.problems]
    assert where == [
        "limits.jobs_rpm",
        "limits.tiers.basic.rpm",
        "limits.tiers.basic.surfaces.hologram",
        "limits.tiers.basic.surfaces.images.rpmm",
        "limits.tiers.basic.surfaces.chat.rpd",
        "limits.tiers.premium",
        "limits.tiers.gold.surfaces",
    ]
    config = parse_routing(LIMITS).config.limits
    assert config.jobs_rpm == 3 and config.tiers["basic"].surfaces["images"].rpm == 2
    assert config.tiers["premium"].rpd is None
