"""Chat worker benchmark: time to first token and tokens/s, in-process, at several concurrencies.

Runs ``handlers.chat.handler.handler`` directly (no RunPod, no gateway), streaming with
``include_usage`` so every completion token is counted by the model's tokenizer. Meant for
a GPU machine with vLLM installed (the chat image has everything):

    python bench/handlers/chat_bench.py --model Qwen/Qwen2.5-7B-Instruct --concurrency 1,8,32 \
        --append bench/README.md

``--engine transformers --model <dir>`` works on a CPU for a smoke run. Not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

MARKER = "<!-- chat-bench: rows are inserted below this table header -->"
HEADER = (
    "| date | device | engine | model | concurrency | requests | max_tokens | TTFT p50 ms | TTFT p95 ms "
    "| decode tok/s per request (p50) | aggregate tok/s |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|\n"
)
TOPICS = ("a lighthouse keeper", "a city under the sea", "the first clock", "a robot gardener", "a lost map")


@dataclass
class Sample:
    ttft_s: float
    decode_tok_s: float
    completion_tokens: int


async def one_request(index: int, max_tokens: int) -> Sample:
    from handlers.chat.handler import handler

    topic = TOPICS[index % len(TOPICS)]
    body = {
        "model": "bench",
        "messages": [{"role": "user", "content": f"Write a long, detailed story about {topic}."}],
        "max_tokens": max_tokens,
        "temperature": 0.7,
        "seed": index,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    job = {"id": f"bench-{index}", "input": {"openai_route": "/v1/chat/completions", "openai_input": body}}
    async for piece in handler(job):
        if isinstance(piece, dict):
            raise RuntimeError(f"job failed: {piece.get('error')}")
        data = piece[len("data: ") :].strip()
        if data == "[DONE]":
            continue
        event: dict[str, Any] = json.loads(data)
        if event.get("usage"):
            tokens = int(event["usage"]["completion_tokens"])
        if any(c.get("delta", {}).get("content") for c in event.get("choices", [])):
            last = time.perf_counter()
            first = first or last
    decode = (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0
    return Sample(ttft_s=first - started, decode_tok_s=decode, completion_tokens=tokens)


async def level(concurrency: int, requests: int, max_tokens: int) -> tuple[list[Sample], float]:
    gate = asyncio.Semaphore(concurrency)

    async def limited(index: int) -> Sample:
        async with gate:
            return await one_request(index, max_tokens)

    started = time.perf_counter()
    samples = await asyncio.gather(*(limited(i) for i in range(requests)))
    return list(samples), time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


async def main(args: argparse.Namespace) -> list[str]:
    from handlers.chat.handler import get_engine

    started = time.perf_counter()
    loaded = await get_engine()
    print(f"engine {loaded.engine.kind} loaded in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    await one_request(-1, 16)  # warm-up: CUDA graphs, caches, first-call paths
    rows: list[str] = []
    for concurrency in args.concurrency:
        requests = args.requests or max(8, 2 * concurrency)
        samples, wall = await level(concurrency, requests, args.max_tokens)
        ttft = [s.ttft_s * 1000 for s in samples]
        decode = [s.decode_tok_s for s in samples if s.decode_tok_s > 0]
        total = sum(s.completion_tokens for s in samples)
        rows.append(
            f"| {date.today().isoformat()} | {device_name()} | {loaded.engine.kind} | {args.model} "
            f"| {concurrency} | {requests} | {args.max_tokens} | {statistics.median(ttft):.0f} "
            f"| {percentile(ttft, 0.95):.0f} | {statistics.median(decode) if decode else 0:.1f} "
            f"| {total / wall:.1f} |"
        )
        print(rows[-1], flush=True)
    return rows


def append_rows(path: Path, rows: list[str]) -> None:
    """Insert rows under the chat table of ``path`` (newest first), creating the table if needed."""
    text = path.read_text() if path.exists() else ""
    if MARKER not in text:
        text = text.rstrip("\n") + ("\n\n" if text else "") + f"## Chat worker (handlers/chat)\n\n{MARKER}\n{HEADER}"
    at = text.index(MARKER) + len(MARKER) + 1 + len(HEADER)
    path.write_text(text[:at] + "".join(f"{row}\n" for row in rows) + text[at:])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.environ.get("CHAT_MODEL", "Qwen/Qwen2.5-7B-Instruct"))
    parser.add_argument("--engine", default=os.environ.get("CHAT_ENGINE", "vllm"), choices=("vllm", "transformers"))
    parser.add_argument(
        "--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32], help="e.g. 1,8,32"
    )
    parser.add_argument("--requests", type=int, default=0, help="per level (default: max(8, 2 x concurrency))")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--append", type=Path, help="markdown file to add the rows to, e.g. bench/README.md")
    return parser.parse_args()


if __name__ == "__main__":
    options = parse_args()
    os.environ["CHAT_MODEL"] = options.model
    os.environ["CHAT_ENGINE"] = options.engine
    # Enough worker slots for the highest level; vLLM batches them all.
    os.environ.setdefault("MAX_CONCURRENCY", str(max(options.concurrency)))
    print(HEADER, end="")
    result = asyncio.run(main(options))
    if options.append:
        append_rows(options.append, result)
