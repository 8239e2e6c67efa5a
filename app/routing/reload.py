"""Live routing.yaml reload: content-hash polling, SIGHUP, the admin route, and a Redis broadcast.

Polling hashes the bytes read through the path, so a Kubernetes ConfigMap update (the ``..data``
symlink swapped atomically) is seen like an edit. The file is the source of truth: a reload is
announced on Redis with the new hash and every other process re-reads *its own* file, so no
replica serves a config its file (and so its next restart) disagrees with, and secrets
interpolated from each replica's environment never travel through Redis. A config is validated
in full, then swapped in one assignment; requests keep the ``Route`` they resolved at their start.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Literal

import msgspec
import structlog
from redis.asyncio.client import PubSub

from app.metrics import ROUTING_RELOADS
from app.routing.loader import LoadedRouting, RoutingError, parse_routing
from app.routing.schema import RoutingConfig
from app.services import Services

log = structlog.get_logger("dryapi.routing")

Result = Literal["ok", "unchanged", "error"]
# Explicit triggers always broadcast: the operator asked every process to look now.
_EXPLICIT = frozenset({"sighup", "admin"})
# A changed file is re-read after this pause and loaded only if it stopped changing, so an
# editor's truncate-then-write is never loaded half-written.
_SETTLE_S = 0.15
_REDIS_TIMEOUT_S = 2.0
_RESUBSCRIBE_S = (1.0, 30.0)  # first and longest pause between subscription attempts
_USERINFO = re.compile(r"(?<=://)[^/@\s'\"]+@")


class ReloadOutcome(msgspec.Struct, kw_only=True):
    result: Result
    trigger: str
    source: str
    sha256: str  # the active config's hash after this attempt
    previous_sha256: str
    file_sha256: str | None = None  # what the file held (None: unreadable)
    problems: list[dict[str, str]] = []
    restart_required: list[str] = []
    at: float = 0.0


def scrub(text: str) -> str:
    """Messages may quote a URL; credentials in it never reach logs or responses."""
    return _USERINFO.sub("***@", text)


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def _parse(data: bytes, source: str) -> LoadedRouting:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RoutingError(source, [("", f"not UTF-8 text (byte {exc.start})")]) from None
    if not text.strip():
        # Far likelier a truncated write or a missing ConfigMap key than "serve nothing".
        raise RoutingError(source, [("", "the file is empty; write `{}` to serve no models on purpose")])
    # The exact bytes that were hashed are parsed (no re-read between hash and parse).
    return parse_routing(text, source)


class RoutingReloader:
    def __init__(self, services: Services, *, poll_s: float | None = None) -> None:
        self._services = services
        self._path = services.settings.routing_path
        self.poll_s = services.settings.routing_poll_s if poll_s is None else poll_s
        self.channel = services.keys.routing_reload
        self._origin = uuid.uuid4().hex
        self._lock = asyncio.Lock()
        # Hash (or read error) of the file content last examined, good or bad: each distinct
        # content is loaded, or reported, once.
        self._seen: str | None = None
        # Parts built once at startup from the boot config (see restart_required).
        self._boot = services.routing.config
        self._pubsub: PubSub | None = None
        self._sighup = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.last_error: ReloadOutcome | None = None

    # lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe before the server accepts requests, note the file's hash, trap SIGHUP."""
        await self._subscribe()
        signature = await self._signature()
        if self.following and signature != self._services.routing.loaded.sha256:
            await self.reload("startup")  # the file changed while the process was starting
        else:
            self._seen = signature
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
            # Only the main thread may own signals (tests run apps in threads: no handler there).
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_sighup)
            self._sighup = True

    async def run(self, stop: asyncio.Event) -> None:
        loops = [asyncio.create_task(self._poll()), asyncio.create_task(self._listen())]
        try:
            await stop.wait()
        finally:  # cancelled, not awaited: shutdown never waits out a poll or a pubsub read
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            if self._sighup:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
                self._sighup = False
            await self._close_pubsub()

    @property
    def following(self) -> bool:
        """Polls and broadcasts apply only to a config that came from the watched file: an app
        built around another (tests, embedding) is not replaced by ./routing.yaml unasked."""
        source = self._services.routing.loaded.source
        return os.path.abspath(source) == os.path.abspath(self._path)

    def _on_sighup(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload("sighup"))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # reload ------------------------------------------------------------------------------

    async def reload(self, trigger: str, *, broadcast: bool = True) -> ReloadOutcome:
        """Re-read the file; swap in a valid, different config. Never raises for a bad file."""
        async with self._lock:
            outcome = await self._reload_locked(trigger)
        ROUTING_RELOADS.labels(result=outcome.result).inc()
        wanted = outcome.result == "ok" or (outcome.result == "unchanged" and trigger in _EXPLICIT)
        if broadcast and wanted:
            await self._publish(outcome.sha256)
        return outcome

    async def _reload_locked(self, trigger: str) -> ReloadOutcome:
        holder = self._services.routing
        previous = holder.loaded

        def outcome(result: Result, file_sha: str | None, **extra: Any) -> ReloadOutcome:
            return ReloadOutcome(
                result=result,
                trigger=trigger,
                source=holder.loaded.source,
                sha256=holder.loaded.sha256,
                previous_sha256=previous.sha256,
                file_sha256=file_sha,
                at=time.time(),
                **extra,
            )

        try:
            data = await asyncio.to_thread(_read, self._path)
        except OSError as exc:
            self._seen = f"unreadable:{exc.errno}"
            problem = {"path": "", "message": f"cannot read file: {exc.strerror or exc}"}
            return self._failed(outcome("error", None, problems=[problem]))
        file_sha = hashlib.sha256(data).hexdigest()
        self._seen = file_sha
        if file_sha == previous.sha256:
            self.last_error = None
            return outcome("unchanged", file_sha)
        try:
            loaded = await asyncio.to_thread(_parse, data, self._path)
        except RoutingError as exc:
            problems = [{"path": where, "message": scrub(message)} for where, message in exc.problems]
            return self._failed(outcome("error", file_sha, problems=problems))
        holder.swap(loaded)  # one assignment: a request sees the old config or the new, never a mix
        self.last_error = None
        restart = self.restart_required(loaded.config)
        done = outcome("ok", file_sha, restart_required=restart)
        log.info("routing_reloaded", file=self._path, trigger=trigger, sha256=file_sha, previous=previous.sha256)
        if restart:
            log.warning("routing_restart_required", file=self._path, fields=restart)
        return done

    def _failed(self, outcome: ReloadOutcome) -> ReloadOutcome:
        self.last_error = outcome
        log.error(
            "routing_reload_failed",
            file=self._path,
            trigger=outcome.trigger,
            file_sha256=outcome.file_sha256,
            active_sha256=outcome.sha256,
            problems=[f"{p['path'] or '<root>'}: {p['message']}" for p in outcome.problems],
        )
        return outcome

    def restart_required(self, config: RoutingConfig) -> list[str]:
        """Changed fields whose consumers were built at startup, so they wait for a restart."""
        fields = []
        if config.upstream.request_timeout_s != self._boot.upstream.request_timeout_s:
            fields.append("upstream.request_timeout_s")
        if self._services.settings.local_upstream and config.local != self._boot.local:
            fields.append("local.endpoints")
        return fields

    # polling -----------------------------------------------------------------------------

    async def _signature(self) -> str:
        try:
            return hashlib.sha256(await asyncio.to_thread(_read, self._path)).hexdigest()
        except OSError as exc:
            return f"unreadable:{exc.errno}"

    async def _poll(self) -> None:
        if self.poll_s <= 0:
            return
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                if not self.following:
                    continue
                first = await self._signature()
                if first == self._seen:
                    continue
                await asyncio.sleep(_SETTLE_S)
                if await self._signature() == first:  # still being written otherwise: next tick
                    await self.reload("poll")
            except Exception:  # the watcher must outlive any one bad tick
                log.exception("routing_poll_failed", file=self._path)

    # broadcast ---------------------------------------------------------------------------

    async def _subscribe(self) -> None:
        pubsub = self._services.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await asyncio.wait_for(pubsub.subscribe(self.channel), _REDIS_TIMEOUT_S)
        except Exception as exc:
            await self._close(pubsub)
            log.warning("routing_subscribe_failed", error=type(exc).__name__)
            return
        self._pubsub = pubsub

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            await self._close(pubsub)

    @staticmethod
    async def _close(pubsub: PubSub) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pubsub.aclose(), _REDIS_TIMEOUT_S)  # type: ignore[no-untyped-call]

    async def _publish(self, sha256: str) -> None:
        message = msgspec.json.encode({"sha256": sha256, "origin": self._origin})
        try:
            await asyncio.wait_for(self._services.redis.publish(self.channel, message), _REDIS_TIMEOUT_S)
        except Exception as exc:  # the local reload stands; others converge by polling
            log.warning("routing_broadcast_failed", error=type(exc).__name__)

    async def _listen(self) -> None:
        pause = _RESUBSCRIBE_S[0]
        while True:
            if self._pubsub is None:
                await asyncio.sleep(pause)
                pause = min(pause * 2, _RESUBSCRIBE_S[1])
                await self._subscribe()
                if self._pubsub is not None and self.following and await self._signature() != self._seen:
                    await self.reload("resubscribe", broadcast=False)  # a broadcast may have been missed
                continue
            pause = _RESUBSCRIBE_S[0]
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except Exception as exc:
                log.warning("routing_subscription_lost", error=type(exc).__name__)
                await self._close_pubsub()
                continue
            if message is not None and message.get("type") == "message":
                await self._on_broadcast(message["data"])

    async def _on_broadcast(self, data: bytes) -> None:
        try:
            announced = msgspec.json.decode(data, type=dict[str, str])
        except msgspec.DecodeError:
            return
        wanted = announced.get("sha256", "")
        mine = announced.get("origin") == self._origin
        if mine or not self.following or wanted == self._services.routing.loaded.sha256:
            return
        outcome = await self.reload("broadcast", broadcast=False)
        if outcome.sha256 != wanted:
            log.warning(
                "routing_file_differs",
                file=self._path,
                announced_sha256=wanted,
                file_sha256=outcome.file_sha256,
                active_sha256=outcome.sha256,
            )
