"""A minimal, fast RunPod-compatible upstream for benchmarks (raw ASGI, no framework).

Serves ``/v2/{endpoint}/openai/v1/embeddings`` and ``/openai/v1/chat/completions`` (plain and
SSE), ``/run``, ``/status/{id}`` (always IN_PROGRESS) and ``/health``, answering instantly, so that what
a benchmark measures is the gateway's own cost.
Run: ``uvicorn bench.fast_upstream:app --port 9100 --http httptools --loop uvloop``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

EMBEDDING = [round(0.01 * i, 4) for i in range(384)]
_EMBEDDINGS_BODY = json.dumps(
    {
        "object": "list",
        "model": "bench-model",
        "data": [{"object": "embedding", "index": 0, "embedding": EMBEDDING}],
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
).encode()
_CHAT_BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "bench-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello world"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
).encode()


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    data = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(data).encode() + b"\n\n"


_STREAM = [_chunk({"role": "assistant", "content": ""})] + [_chunk({"content": f"t{i} "}) for i in range(16)]
_STREAM += [_chunk({}, "stop"), b"data: [DONE]\n\n"]


async def _json(send: Any, payload: bytes) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


async def _drain(receive: Any) -> bytes:
    body = b""
    while True:
        message: dict[str, Any] = await receive()
        chunk: bytes = message.get("body", b"")
        body += chunk
        if not message.get("more_body"):
            return body


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = await _drain(receive)
    path: str = scope["path"]
    if path.endswith("/run"):
        payload = json.dumps({"id": str(uuid.uuid4()), "status": "IN_QUEUE"}).encode()
        await _json(send, payload)
        return
    if path.endswith("/health"):  # RunPod's shape: a few idle workers, nothing queued
        health = {"jobs": {"completed": 0, "failed": 0, "inProgress": 0, "inQueue": 0, "retried": 0},
                  "workers": {"idle": 2, "running": 0, "initializing": 0, "ready": 2, "throttled": 0}}
        await _json(send, json.dumps(health).encode())
        return
    if "/status/" in path:
        job_id = path.rsplit("/", 1)[-1]
        await _json(send, json.dumps({"id": job_id, "status": "IN_PROGRESS", "delayTime": 5}).encode())
        return
    if path.endswith("/openai/v1/embeddings"):
        payload, media = _EMBEDDINGS_BODY, b"application/json"
    elif path.endswith("/openai/v1/chat/completions"):
        if b'"stream":true' in body.replace(b" ", b""):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            for piece in _STREAM:
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        payload, media = _CHAT_BODY, b"application/json"
    else:
        payload, media = b'{"error": "not found"}', b"application/json"
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", media)]})
        await send({"type": "http.response.body", "body": payload})
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", media), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
