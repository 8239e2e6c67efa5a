"""Scripted RunPod workers for the gateway tests.

They speak the same dialects as the bundled handlers and RunPod's stock workers, but answer
instantly and deterministically, and the test text in a request steers them (fail, crash,
slow). They run inside the project's RunPod emulator, exactly as a real handler would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx

CALLS: Counter[str] = Counter()


def _delay(text: str) -> float:
    """``slow 2.5 rest of text`` sleeps 2.5 s."""
    parts = text.split()
    return float(parts[1]) if len(parts) > 1 else 5.0


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        content = message.get("content")
        if isinstance(content, str):
            return content
    return ""


def _completion(body: dict[str, Any], text: str) -> dict[str, Any]:
    extras = sorted(k for k in body if k not in ("messages", "model", "stream", "stream_options"))
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "system_fingerprint": ",".join(extras),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": len(text.split()), "total_tokens": 3 + len(text.split())},
    }


def _sse(body: dict[str, Any], words: list[str], include_usage: bool) -> str:
    import json

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        data = {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": body.get("model"),
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        return f"data: {json.dumps(data)}\n\n"

    parts = [chunk({"role": "assistant", "content": ""})]
    parts += [chunk({"content": w}) for w in words]
    parts.append(chunk({}, "stop"))
    if include_usage:
        usage = {"prompt_tokens": 3, "completion_tokens": len(words), "total_tokens": 3 + len(words)}
        final = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1,
                 "model": body.get("model"), "choices": [], "usage": usage}
        parts.append(f"data: {json.dumps(final)}\n\n")
    parts.append("data: [DONE]\n\n")
    return "".join(parts)


async def chat(job: dict[str, Any]) -> AsyncIterator[Any]:
    """worker-vllm dialect: ``openai_route``/``openai_input``; streams raw SSE byte pieces."""
    CALLS["chat"] += 1
    body = job["input"]["openai_input"]
    text = _last_user_text(body.get("messages", []))
    if text == "fail":
        yield {
            "error": {
                "type": "invalid_request_error",
                "code": "bad_msg",
                "message": "cannot do that",
                "param": "messages.0.content",
            }
        }
        return
    if text == "crash":
        raise RuntimeError("worker exploded")
    if text.startswith("slow"):
        await asyncio.sleep(_delay(text))
    words = [f"{w} " for w in f"echo: {text}".split()]
    if not body.get("stream"):
        yield _completion(body, "".join(words).strip())
        return
    stream = _sse(body, words, bool((body.get("stream_options") or {}).get("include_usage")))
    if text == "break midway":
        cut = stream.index("\n\n", len(stream) // 2) + 2  # after a whole event
        stream = stream[:cut] + 'data: {"error": {"message": "GPU fell off", "type": "server_error"}}\n\n'
    # Odd-sized pieces split events, lines and JSON mid-way, as worker-vllm's raw bytes do.
    pause = 0.02 if "drip" in text else 0.0  # "drip": a generation slower than the watcher's polls
    for start in range(0, len(stream), 7):
        yield stream[start : start + 7]
        await asyncio.sleep(pause)


def _vector(text: str, dims: int = 8) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = [b / 255.0 - 0.5 for b in digest[:dims]]
    norm = sum(v * v for v in raw) ** 0.5 or 1.0
    return [v / norm for v in raw]


def embeddings(job: dict[str, Any]) -> Any:
    """worker-infinity dialect; a one-element list like the real worker on the openai route."""
    CALLS["embeddings"] += 1
    body = job["input"]["openai_input"]
    items = body["input"] if isinstance(body["input"], list) else [body["input"]]
    if items and isinstance(items[0], int):
        items = [items]
    texts = [" ".join(map(str, i)) if isinstance(i, list) else str(i) for i in items]
    if body.get("encoding_format") not in (None, "float"):
        return {"error": {"type": "invalid_request_error", "message": "floats only", "param": "encoding_format"}}
    dims = body.get("dimensions") or 8
    data = [{"object": "embedding", "index": i, "embedding": _vector(t, dims)} for i, t in enumerate(texts)]
    usage = {"prompt_tokens": sum(len(t.split()) for t in texts), "total_tokens": sum(len(t.split()) for t in texts)}
    return [{"object": "list", "model": body["model"], "data": data, "usage": usage}]


def png(width: int, height: int, shade: int) -> bytes:
    def block(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes([shade, 255 - shade, 128]) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + block(b"IHDR", header) + block(b"IDAT", zlib.compress(rows)) + block(b"IEND", b"")


ALLOWED_IMAGE_KEYS = {"prompt", "negative_prompt", "width", "height", "num_images", "seed",
                      "num_inference_steps", "guidance_scale", "model", "output_format"}


def images(job: dict[str, Any]) -> dict[str, Any]:
    """sdxl-style dialect; rejects unknown keys like stock workers do."""
    CALLS["images"] += 1
    data = job["input"]
    unknown = set(data) - ALLOWED_IMAGE_KEYS
    if unknown:
        first = sorted(unknown)[0]
        return {"error": {"type": "invalid_request_error", "message": f"unknown key {first}", "param": first}}
    prompt = data["prompt"]
    if prompt.startswith("slow"):
        time.sleep(_delay(prompt))
    if prompt == "worker urls":
        return {"images": ["https://cdn.example.invalid/a.png"], "seed": 1}
    if prompt == "no output":
        return {}
    count = int(data.get("num_images", 1))
    seed = int(data.get("seed", 7))
    width, height = int(data.get("width", 8)) // 64 or 1, int(data.get("height", 8)) // 64 or 1
    uris = [
        "data:image/png;base64," + base64.b64encode(png(width, height, (seed + i) % 256)).decode()
        for i in range(count)
    ]
    return {"images": uris, "image_url": uris[0], "seed": seed, "echo": sorted(data)}


def transcribe(job: dict[str, Any]) -> dict[str, Any]:
    """worker-faster_whisper dialect: ``audio`` URL or ``audio_base64``."""
    CALLS["transcribe"] += 1
    data = job["input"]
    if "audio" in data:
        response = httpx.get(data["audio"], timeout=10)
        response.raise_for_status()
        audio = response.content
        source = "url"
    else:
        audio = base64.b64decode(data["audio_base64"])
        source = "base64"
    words = [f"bytes{len(audio)}", source, str(data.get("language", "auto")), str(data.get("initial_prompt", ""))]
    segments = [
        {"id": 0, "seek": 0, "start": 0.0, "end": 1.5, "text": f" {words[0]} {words[1]}", "tokens": [1, 2],
         "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.1, "no_speech_prob": 0.01},
        {"id": 1, "seek": 150, "start": 1.5, "end": 3.25, "text": f" {words[2]} {words[3]}".rstrip(), "tokens": [3],
         "temperature": 0.0, "avg_logprob": -0.3, "compression_ratio": 1.2, "no_speech_prob": 0.02},
    ]
    out: dict[str, Any] = {
        "segments": segments,
        "detected_language": data.get("language") or "en",
        "transcription": "".join(s["text"] for s in segments).strip(),
        "device": "cpu",
        "model": data.get("model"),
    }
    if data.get("word_timestamps"):
        out["word_timestamps"] = [{"word": w, "start": i * 0.5, "end": i * 0.5 + 0.4} for i, w in enumerate(words)]
    return out
