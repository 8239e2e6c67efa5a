"""Usage accounting: per key, per UTC day, per surface, counted from what the handlers return.

One Redis hash per key and day (``usage:{key_id}:{YYYY-MM-DD}``) with integer fields
``{surface}:{counter}``: requests, prompt/completion tokens (chat), input tokens
(embeddings), images and pixels (images), audio milliseconds (transcribe). Integers keep
HINCRBY exact; reports turn pixels into megapixels and milliseconds into seconds. Writes
run as detached tasks (one MULTI round trip each) so they add nothing to a response's
latency; only successful work is counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from typing import Any
from weakref import WeakKeyDictionary

import msgspec
import redis.asyncio as aioredis
import structlog

from app.errors import InvalidRequest
from app.jobs.outcome import unwrap
from app.jobs.records import JobRecord
from app.redis_guard import RedisUnavailable
from app.services import Services
from app.store import Keys
from app.upstream.sse import DONE

log = structlog.get_logger("dryapi.usage")

RETENTION_S = 400 * 86400
MAX_REPORT_DAYS = 366
# Stored counter → (reported name, divisor) per surface, in report order.
REPORTED: dict[str, tuple[tuple[str, str, int], ...]] = {
    "chat": (
        ("requests", "requests", 1),
        ("prompt_tokens", "prompt_tokens", 1),
        ("completion_tokens", "completion_tokens", 1),
    ),
    "embeddings": (("requests", "requests", 1), ("input_tokens", "input_tokens", 1)),
    "images": (("requests", "requests", 1), ("images", "images", 1), ("pixels", "megapixels", 1_000_000)),
    "transcribe": (("requests", "requests", 1), ("audio_ms", "audio_seconds", 1000)),
}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Tokens(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class _WithUsage(msgspec.Struct):
    usage: _Tokens | None = None


def usage_key(keys: Keys, key_id: str, day: str) -> str:
    return keys.usage(key_id, day)


def today() -> str:
    return datetime.now(UTC).date().isoformat()


# recording -----------------------------------------------------------------------------------


# Counts are summed in process and written every FLUSH_S in one pipeline, so the hot path
# pays no Redis round trip per request. A failed flush keeps its counts for the next one.
FLUSH_S = 1.0


class _Batch:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.counts: Counter[tuple[str, str]] = Counter()  # (redis key, field) -> increment
        self.flusher: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while self.counts:
            await asyncio.sleep(FLUSH_S)
            await self.flush()

    async def flush(self) -> None:
        if not self.counts:
            return
        snapshot, self.counts = self.counts, Counter()

        async def write() -> None:
            async with self.services.redis.pipeline(transaction=False) as pipe:
                for (key, field), value in snapshot.items():
                    pipe.hincrby(key, field, value)
                for key in {key for key, _ in snapshot}:
                    pipe.expire(key, RETENTION_S)
                await pipe.execute()

        try:
            await self.services.authenticator.guard.run(write)
        except RedisUnavailable:
            self.counts.update(snapshot)  # try again with the next flush
            log.warning("usage_not_recorded", reason="redis_unavailable", pending=len(self.counts))


# One batch per event loop: each loop (process, or test server thread) flushes its own.
_batches: WeakKeyDictionary[asyncio.AbstractEventLoop, _Batch] = WeakKeyDictionary()


def record(services: Services, key_id: str, surface: str, counts: dict[str, int] | None = None) -> None:
    """Count one successful request (and its ``counts``) without waiting for Redis."""
    loop = asyncio.get_running_loop()
    batch = _batches.get(loop)
    if batch is None or batch.services is not services:
        batch = _batches[loop] = _Batch(services)
    key = usage_key(services.keys, key_id, today())
    batch.counts[(key, f"{surface}:requests")] += 1
    for name, value in (counts or {}).items():
        if value > 0:
            batch.counts[(key, f"{surface}:{name}")] += value
    if batch.flusher is None or batch.flusher.done():
        batch.flusher = loop.create_task(batch.run())


async def flush() -> None:
    """Write the counts still pending (at shutdown, so no count is lost)."""
    batch = _batches.get(asyncio.get_running_loop())
    if batch is not None:
        if batch.flusher is not None:
            batch.flusher.cancel()
        await batch.flush()


# what each surface's output says -------------------------------------------------------------


def _tokens(usage: _Tokens | None, *, embeddings: bool) -> dict[str, int]:
    if usage is None:
        return {}
    if embeddings:
        return {"input_tokens": usage.prompt_tokens or usage.total_tokens}
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}


def token_counts(body: bytes | dict[str, Any] | Any, *, embeddings: bool = False) -> dict[str, int]:
    """Tokens from an OpenAI body's ``usage`` block (JSON bytes or decoded)."""
    try:
        if isinstance(body, bytes):
            parsed = msgspec.json.decode(body, type=_WithUsage)
        else:
            parsed = msgspec.convert(body, _WithUsage, strict=False)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return {}
    return _tokens(parsed.usage, embeddings=embeddings)


def image_counts(output: Any, images: int, size: dict[str, int]) -> dict[str, int]:
    """Images made and their pixels: the worker's reported size, else the requested one."""
    output = unwrap(output)
    width, height = size.get("width", 0), size.get("height", 0)
    if isinstance(output, dict) and isinstance(output.get("width"), int) and isinstance(output.get("height"), int):
        width, height = output["width"], output["height"]
    return {"images": images, "pixels": images * width * height}


def audio_counts(output: Any) -> dict[str, int]:
    """Seconds of audio transcribed: the output's ``duration``, else its last segment's end."""
    output = unwrap(output)
    if not isinstance(output, dict):
        return {}
    seconds = output.get("duration")
    if not isinstance(seconds, int | float):
        ends = [s.get("end") for s in output.get("segments") or [] if isinstance(s, dict)]
        seconds = max((e for e in ends if isinstance(e, int | float)), default=0)
    return {"audio_ms": round(float(seconds) * 1000)}


async def metered_stream(frames: AsyncIterator[bytes], services: Services, key_id: str) -> AsyncIterator[bytes]:
    """Relay a chat stream; count it once it has finished (or its usage chunk went out)."""
    usage: _Tokens | None = None
    done = False
    try:
        async for frame in frames:
            if frame == DONE:
                done = True
            elif b'"usage"' in frame:
                with contextlib.suppress(msgspec.ValidationError, msgspec.DecodeError):
                    usage = msgspec.json.decode(frame[5:], type=_WithUsage).usage or usage
            yield frame
    finally:
        if done or usage is not None:
            record(services, key_id, "chat", _tokens(usage, embeddings=False))
        close = getattr(frames, "aclose", None)
        if close is not None:
            await close()  # the relay's own cleanup (closing the upstream stream) runs now, not at GC


def record_job(services: Services, record_: JobRecord, raw: dict[str, Any], body: dict[str, Any]) -> None:
    """An async job reached its terminal state: count it if it COMPLETED."""
    if body.get("status") != "COMPLETED":
        return
    surface, output = record_.surface, body.get("output")
    counts: dict[str, int] = {}
    if surface in ("chat", "embeddings"):
        counts = token_counts(output, embeddings=surface == "embeddings")
    elif surface == "images":
        data = output.get("data") if isinstance(output, dict) else None
        size = record_.options.get("size")
        counts = image_counts(raw.get("output"), len(data or []), size if isinstance(size, dict) else {})
    elif surface == "transcribe":
        counts = audio_counts(raw.get("output"))
    record(services, record_.owner, surface, counts)


# reporting -----------------------------------------------------------------------------------


def parse_day(value: str | None, param: str) -> date:
    if value is None or value == "":
        return datetime.now(UTC).date()
    if not _DATE.match(value):
        raise InvalidRequest(f"{param} must be a date like 2025-01-31", param=param)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{param} is not a valid date", param=param) from None


def report_range(from_: str | None, to: str | None) -> tuple[date, date]:
    """``from``/``to`` as given, each defaulting to today (or to the other one when only it is given)."""
    end = parse_day(to, "to")
    start = parse_day(from_, "from") if from_ else end
    if not to and start > end:
        end = start
    return start, end


def _days(start: date, end: date) -> Iterator[str]:
    day = start
    while day <= end:
        yield day.isoformat()
        day += timedelta(days=1)


def _number(value: int, divisor: int) -> int | float:
    return value if divisor == 1 else round(value / divisor, 6)


def _surfaces(fields: dict[str, int]) -> dict[str, dict[str, int | float]]:
    out: dict[str, dict[str, int | float]] = {}
    for surface, counters in REPORTED.items():
        if not any(f"{surface}:{stored}" in fields for stored, _, _ in counters):
            continue
        out[surface] = {name: _number(fields.get(f"{surface}:{stored}", 0), div) for stored, name, div in counters}
    return out


async def report(redis: aioredis.Redis, keys: Keys, key_id: str, start: date, end: date) -> dict[str, Any]:
    """Per day and surface usage of ``key_id`` from ``start`` to ``end`` (inclusive, UTC days)."""
    if end < start:
        raise InvalidRequest("from must not be after to", param="from")
    if (end - start).days >= MAX_REPORT_DAYS:
        raise InvalidRequest(f"a report covers at most {MAX_REPORT_DAYS} days", param="from")
    days = list(_days(start, end))
    async with redis.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.hgetall(usage_key(keys, key_id, day))
        hashes: list[dict[bytes, bytes]] = await pipe.execute()
    spend = await _spend_by_day(redis, keys, key_id, start, end)
    totals: dict[str, int] = {}
    rows = []
    for day, raw in zip(days, hashes, strict=True):
        fields = {k.decode(): int(v) for k, v in raw.items()}
        for name, value in fields.items():
            totals[name] = totals.get(name, 0) + value
        rows.append({"date": day, "surfaces": _surfaces(fields), "spend_usd": spend.get(day, 0) / 1_000_000})
    return {
        "object": "usage.report",
        "key_id": key_id,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "days": rows,
        "totals": _surfaces(totals),
        "spend_usd": sum(spend.values()) / 1_000_000,
    }


async def _spend_by_day(redis: aioredis.Redis, keys: Keys, key_id: str, start: date, end: date) -> dict[str, int]:
    """What the key was charged per UTC day (micro-USD): the settlements in its billing ledger."""
    first = int(datetime.combine(start, time_of_day.min, UTC).timestamp() * 1000)
    last = int(datetime.combine(end + timedelta(days=1), time_of_day.min, UTC).timestamp() * 1000) - 1
    entries: list[tuple[bytes, dict[bytes, bytes]]] = await redis.xrange(  # type: ignore[assignment]
        keys.ledger(key_id), min=f"{first}-0", max=f"{last}-18446744073709551615"
    )
    spent: dict[str, int] = {}
    for entry_id, fields in entries:
        if fields.get(b"kind") == b"settle":
            day = datetime.fromtimestamp(int(entry_id.split(b"-")[0]) / 1000, UTC).date().isoformat()
            spent[day] = spent.get(day, 0) + int(fields.get(b"amount", b"0"))
    return spent


def format_report(body: dict[str, Any]) -> str:
    """The report as text lines, for ``dryapi-gateway keys usage``."""
    lines = [f"usage of {body['key_id']} from {body['from']} to {body['to']} (UTC days)"]
    for row in body["days"]:
        for surface, counters in row["surfaces"].items():
            values = "  ".join(f"{name}={value}" for name, value in counters.items())
            lines.append(f"{row['date']}  {surface:<10}  {values}")
    totals = body["totals"]
    if not totals:
        lines.append("no usage recorded")
    for surface, counters in totals.items():
        values = "  ".join(f"{name}={value}" for name, value in counters.items())
        lines.append(f"total       {surface:<10}  {values}")
    if body.get("spend_usd"):
        lines.append(f"spent       {body['spend_usd']:.6f} USD")
    return "\n".join(lines)
