"""One pooled HTTP client per process for every RunPod call.

aiohttp is used directly: measured on this kind of machine (bench/README.md), httpx's own
request and response objects cost about a quarter of the gateway's CPU per proxied
request even over an aiohttp transport, and the passthrough path is the gateway's hot path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec

from app.errors import GatewayError, UpstreamError, UpstreamTimeout
from app.observability.timing import add_upstream_time, record_upstream
from app.routing.resolver import Route
from app.upstream.worker_errors import error_from_status

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode
_CONNECT_TIMEOUT_S = 10.0
_MAX_DETAIL = 300
# RunPod queue operations, as they appear in URLs (for metric labels of raw calls).
_OPERATIONS = frozenset({"run", "runsync", "status", "stream", "cancel", "retry", "purge-queue", "health"})


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    content: bytes
    retry_after: str | None = None
    content_type: str = "application/json"


def call_labels(url: str) -> tuple[str, str]:
    """(endpoint, operation) of ``…/{endpoint_id}/{operation}[/{job_id}]``; other URLs are fetches."""
    parts = urlsplit(url).path.rstrip("/").split("/")
    for index in range(len(parts) - 1, 0, -1):
        if parts[index] in _OPERATIONS and parts[index - 1]:
            return parts[index - 1], parts[index]
    return "-", "fetch"


def _endpoint_of(endpoint_url: str) -> str:
    return endpoint_url.rstrip("/").rsplit("/", 1)[-1]


def _unreachable(exc: BaseException) -> GatewayError:
    err = UpstreamError(f"Cannot reach RunPod: {type(exc).__name__}", code="upstream_error")
    err.retryable = True
    return err


def api_failure(response: UpstreamResponse) -> GatewayError:
    """The error for RunPod's API answering a queue call (``/run``, ``/status``…) with HTTP >= 400.

    A 5xx is RunPod (or its proxy) failing, whatever the body says: ``upstream_error``, and
    retryable because no job was accepted. Only a job's own ``error``/output is a worker error
    (``app.jobs.tracker``/``runner``); 4xx answers keep their specific meanings.
    """
    if response.status < 500:
        return error_from_status(response.status, response.content, response.retry_after)
    message = f"RunPod answered HTTP {response.status}"
    detail = _api_message(response.content)
    if detail:
        message += f": {detail}"
    err = UpstreamError(message, code="upstream_error")
    err.retryable = True
    return err


def passthrough_failure(status: int, content: bytes, retry_after: str | None) -> GatewayError:
    """An OpenAI passthrough answered >= 400: the worker's own error body (an ``error`` object)
    is the worker's; a 5xx in any other shape is RunPod's (its proxy, no worker). Never retried:
    the worker may already have run the request."""
    if status >= 500 and not _worker_shaped(content):
        err = api_failure(UpstreamResponse(status, content, retry_after))
    else:
        err = error_from_status(status, content, retry_after)
    err.retryable = False
    return err


def _worker_shaped(content: bytes) -> bool:
    try:
        decoded: Any = _decode(content) if content else None
    except msgspec.DecodeError:
        return False
    return isinstance(decoded, dict) and isinstance(decoded.get("error"), dict)


def _api_message(content: bytes) -> str:
    """RunPod's own words from an error body (``{"error": ...}`` or text), short."""
    try:
        decoded: Any = _decode(content) if content else None
    except msgspec.DecodeError:
        decoded = content.decode("utf-8", "replace")
    if isinstance(decoded, dict):
        decoded = decoded.get("error") or decoded.get("message") or ""
    text = decoded if isinstance(decoded, str) else ""
    return text.strip()[:_MAX_DETAIL]


# (endpoint id, operation, status or "timeout"/"unreachable", seconds): each call's outcome, for
# endpoint health (app/routing/health.py). Called on the request path: must not do I/O.
Observer = Callable[[str, str, str, float], None]


class RunPodClient:
    def __init__(self, *, timeout_s: float = 30.0, observer: Observer | None = None) -> None:
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self.observer = observer

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use so it binds to the serving event loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=512, keepalive_timeout=30, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, json_serialize=lambda o: _encode(o).decode(), auto_decompress=True
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    @staticmethod
    def _headers(api_key: str) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        return headers

    def _timeout(self, timeout_s: float | None) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=timeout_s or self._timeout_s, connect=_CONNECT_TIMEOUT_S)

    async def request(
        self,
        method: str,
        url: str,
        api_key: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        timeout_s: float | None = None,
        raw_body: bytes | None = None,
        labels: tuple[str, str] | None = None,
    ) -> UpstreamResponse:
        """Raw call; transport failures become gateway errors, HTTP statuses are left to the caller.

        ``labels`` (endpoint, operation) name the call in metrics; by default they come from the URL.
        """
        data = raw_body if raw_body is not None else (_encode(body) if body is not None else None)
        started = time.perf_counter()
        status = "error"
        try:
            async with self._client().request(
                method,
                url,
                data=data,
                params=params,
                headers=self._headers(api_key),
                timeout=self._timeout(timeout_s),
                allow_redirects=False,
            ) as response:
                content = await response.read()
                status = str(response.status)
                return UpstreamResponse(
                    response.status,
                    content,
                    response.headers.get("retry-after"),
                    response.headers.get("content-type", "application/json"),
                )
        except TimeoutError:
            status = "timeout"
            raise UpstreamTimeout("RunPod did not answer in time") from None
        except aiohttp.ClientError as exc:
            status = "unreachable"
            raise _unreachable(exc) from None
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        finally:
            endpoint, operation = labels or call_labels(url)
            elapsed = time.perf_counter() - started
            record_upstream(endpoint, operation, status, elapsed)
            if self.observer is not None:
                self.observer(endpoint, operation, status, elapsed)

    async def call_json(
        self,
        method: str,
        url: str,
        api_key: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        timeout_s: float | None = None,
        labels: tuple[str, str] | None = None,
    ) -> Any:
        response = await self.request(
            method, url, api_key, body=body, params=params, timeout_s=timeout_s, labels=labels
        )
        if response.status >= 400:
            raise api_failure(response)
        try:
            return _decode(response.content)
        except msgspec.DecodeError:
            raise UpstreamError("RunPod answered with invalid JSON", code="upstream_bad_response") from None

    # RunPod queue operations -------------------------------------------------------------

    @staticmethod
    def job_body(route: Route, job_input: dict[str, Any], webhook: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"input": job_input, "policy": route.policy.to_runpod()}
        if webhook:
            body["webhook"] = webhook
        return body

    async def run(self, route: Route, job_input: dict[str, Any], *, webhook: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.call_json(
            "POST",
            f"{route.endpoint_url}/run",
            route.api_key,
            body=self.job_body(route, job_input, webhook),
            labels=(route.endpoint_id, "run"),
        )
        return result

    async def runsync(self, route: Route, job_input: dict[str, Any], *, wait_s: float) -> dict[str, Any]:
        wait_ms = int(min(max(wait_s, 1.0), 300.0) * 1000)
        result: dict[str, Any] = await self.call_json(
            "POST",
            f"{route.endpoint_url}/runsync",
            route.api_key,
            body=self.job_body(route, job_input),
            params={"wait": str(wait_ms)},
            timeout_s=wait_ms / 1000 + 30,
            labels=(route.endpoint_id, "runsync"),
        )
        return result

    async def status(self, endpoint_url: str, api_key: str, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call_json(
            "GET", f"{endpoint_url}/status/{job_id}", api_key, labels=(_endpoint_of(endpoint_url), "status")
        )
        return result

    async def stream(self, endpoint_url: str, api_key: str, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call_json(
            "GET", f"{endpoint_url}/stream/{job_id}", api_key, labels=(_endpoint_of(endpoint_url), "stream")
        )
        return result

    async def cancel(self, endpoint_url: str, api_key: str, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.call_json(
            "POST", f"{endpoint_url}/cancel/{job_id}", api_key, labels=(_endpoint_of(endpoint_url), "cancel")
        )
        return result

    # OpenAI passthrough -------------------------------------------------------------------

    async def openai_json(self, route: Route, path: str, body: dict[str, Any], timeout_s: float) -> bytes:
        response = await self.request(
            "POST",
            f"{route.endpoint_url}/openai/v1/{path}",
            route.api_key,
            body=body,
            timeout_s=timeout_s,
            labels=(route.endpoint_id, _openai_operation(path)),
        )
        if response.status >= 400:
            raise passthrough_failure(response.status, response.content, response.retry_after)
        return response.content

    @asynccontextmanager
    async def openai_stream(
        self, route: Route, path: str, body: dict[str, Any], timeout_s: float
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """Open the passthrough stream; raises a GatewayError before any byte is relayed.

        ``timeout_s`` bounds the wait for each piece, not the whole (long) generation.
        """
        headers = self._headers(route.api_key) | {"accept": "text/event-stream"}
        timeout = aiohttp.ClientTimeout(total=None, connect=_CONNECT_TIMEOUT_S, sock_read=timeout_s)
        # The metric times the whole stream; the request's upstream total only the waits for
        # headers and pieces, so relaying and slow clients count as gateway overhead.
        started = time.perf_counter()
        status = "error"
        try:
            try:
                response = await self._client().post(
                    f"{route.endpoint_url}/openai/v1/{path}", data=_encode(body), headers=headers, timeout=timeout
                )
            except TimeoutError:
                status = "timeout"
                self._observe_failure(route, path, status)
                raise UpstreamTimeout("RunPod did not answer in time") from None
            except aiohttp.ClientError as exc:
                status = "unreachable"
                self._observe_failure(route, path, status)
                raise _unreachable(exc) from None
            finally:
                add_upstream_time(time.perf_counter() - started)
            status = str(response.status)
            if self.observer is not None:  # judged when the stream opens (time to headers)
                self.observer(route.endpoint_id, _openai_operation(path), status, time.perf_counter() - started)
            try:
                if response.status >= 400:
                    content = await response.read()
                    raise passthrough_failure(response.status, content, response.headers.get("retry-after"))
                yield _pieces(response)
            finally:
                response.release()
                response.close()
        finally:
            operation = f"{_openai_operation(path)}.stream"
            record_upstream(route.endpoint_id, operation, status, time.perf_counter() - started, waited=False)


    def _observe_failure(self, route: Route, path: str, status: str) -> None:
        if self.observer is not None:
            self.observer(route.endpoint_id, _openai_operation(path), status, 0.0)


def _openai_operation(path: str) -> str:
    """``chat/completions`` → ``openai.chat``; ``embeddings`` → ``openai.embeddings``."""
    return f"openai.{path.split('/', 1)[0]}"


async def _pieces(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    pieces = response.content.iter_any()
    try:
        while True:
            waiting_since = time.perf_counter()
            try:
                piece = await anext(pieces)
            except StopAsyncIteration:
                return
            finally:
                add_upstream_time(time.perf_counter() - waiting_since)
            yield piece
    except TimeoutError:
        raise UpstreamTimeout("The worker stopped sending") from None
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"The worker's stream broke: {type(exc).__name__}", code="stream_broken") from None


__all__ = ["RunPodClient", "UpstreamResponse", "api_failure"]
