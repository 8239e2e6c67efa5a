"""OCR throughput of the chat worker (img2txt): pages per second at several concurrencies.

Not a test and not run in CI. On a GPU machine with the weights reachable (hub or HF_HOME):

    python bench/handlers/ocr_bench.py --model nanonets/Nanonets-OCR-s --concurrency 1,8,16
    python bench/handlers/ocr_bench.py --tiny          # CPU smoke run on a tiny random Qwen2-VL

Runs ``handlers.chat.handler.handler`` in-process (no RunPod, no gateway) with exactly the job
input the gateway's img2txt builds (``app.tasks.ocr``: one user turn, the OCR instruction and
the page as a data URI, temperature 0, up to 4096 tokens). Pages are synthetic A4-like scans
(``--size`` wide, 1.41 times as tall) with lines of printed text, so the vision encoder and the
decoder both do realistic work. Prints one markdown row per concurrency for bench/README.md:
pages/s (aggregate), seconds per page (p50), output characters/s and prompt tokens per page.
``--tiny`` builds the tests' tiny Qwen2-VL in a temporary directory and uses small pages: it
checks the script, not the hardware.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import io
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere in the repo

HEADER = (
    "| date | device | engine | model | page | concurrency | pages | pages/s | s/page (p50) | output chars/s "
    "| prompt tokens/page |\n|---|---|---|---|---|---|---|---|---|---|---|"
)
WORDS = ("invoice", "total", "amount", "date", "customer", "order", "shipping", "tax", "due", "number", "item")


@dataclass
class Page:
    seconds: float
    chars: int
    prompt_tokens: int


def page_uri(width: int, seed: int) -> str:
    """A white page with ~40 lines of printed words (PIL's default font), as a PNG data URI."""
    from PIL import Image, ImageDraw

    height = int(width * 1.41)
    page = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(page)
    step = max(12, height // 45)
    for row, y in enumerate(range(step, height - step, step)):
        words = [WORDS[(seed + row * 7 + i * 3) % len(WORDS)] for i in range(8)]
        draw.text((step, y), f"{row + 1:02d} " + " ".join(words) + f" {seed * 31 + row:06d}", fill="black")
    buffer = io.BytesIO()
    page.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def job_input(uri: str, max_tokens: int) -> dict[str, Any]:
    from app.tasks.ocr import Img2Txt, instruction

    content = [{"type": "text", "text": instruction(Img2Txt(model="ocr", language="en"))},
               {"type": "image_url", "image_url": {"url": uri}}]  # fmt: skip
    body = {"model": "ocr", "messages": [{"role": "user", "content": content}], "temperature": 0,
            "max_tokens": max_tokens}  # fmt: skip
    return {"openai_route": "/v1/chat/completions", "openai_input": body}


async def one_page(index: int, uri: str, max_tokens: int) -> Page:
    from handlers.chat.handler import handler

    started = time.perf_counter()
    outputs = [item async for item in handler({"id": f"ocr-{index}", "input": job_input(uri, max_tokens)})]
    result = outputs[-1]
    if not isinstance(result, dict) or "error" in result:
        raise RuntimeError(f"job failed: {result}")
    text = result["choices"][0]["message"]["content"] or ""
    return Page(time.perf_counter() - started, len(text), int(result["usage"]["prompt_tokens"]))


async def level(concurrency: int, pages: list[str], max_tokens: int) -> tuple[list[Page], float]:
    gate = asyncio.Semaphore(concurrency)

    async def limited(index: int, uri: str) -> Page:
        async with gate:
            return await one_page(index, uri, max_tokens)

    started = time.perf_counter()
    done = await asyncio.gather(*(limited(i, uri) for i, uri in enumerate(pages)))
    return list(done), time.perf_counter() - started


def device_name() -> str:
    import torch

    return str(torch.cuda.get_device_name(0)) if torch.cuda.is_available() else "cpu"


async def run(args: argparse.Namespace) -> list[str]:
    from handlers.chat.handler import get_engine

    started = time.perf_counter()
    loaded = await get_engine()
    print(f"engine {loaded.engine.kind} loaded in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    await one_page(-1, page_uri(args.size, 999), 16)  # warm-up: kernels, CUDA graphs, first-call paths
    rows: list[str] = []
    for concurrency in args.concurrency:
        count = args.pages or max(4, 2 * concurrency)
        pages = [page_uri(args.size, seed) for seed in range(count)]
        done, wall = await level(concurrency, pages, args.max_tokens)
        height = int(args.size * 1.41)
        rows.append(
            f"| {date.today().isoformat()} | {device_name()} | {loaded.engine.kind} "
            f"| {'tiny random' if args.tiny else args.model} | {args.size}x{height} | {concurrency} | {count} "
            f"| {count / wall:.2f} | {statistics.median(p.seconds for p in done):.2f} "
            f"| {sum(p.chars for p in done) / wall:.0f} | {statistics.median(p.prompt_tokens for p in done):.0f} |"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="nanonets/Nanonets-OCR-s")
    parser.add_argument("--concurrency", default="1,8,16", help="comma-separated levels")
    parser.add_argument("--pages", type=int, default=0, help="pages per level (default: 2 x concurrency, >= 4)")
    parser.add_argument("--size", type=int, default=1024, help="page width in pixels")
    parser.add_argument("--max-tokens", type=int, default=4096, help="as the gateway's img2txt asks")
    parser.add_argument("--tiny", action="store_true", help="tiny random Qwen2-VL on the CPU (smoke run)")
    parser.add_argument("--header", action="store_true", help="print the table header too")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["CHAT_MODEL"] = args.model
        if args.tiny:
            builders: Any = importlib.import_module("tests.handlers.tiny_vlm")  # test code, not typed here
            os.environ["CHAT_MODEL"] = str(builders.build_tiny_vlm(Path(scratch) / "tiny-vlm", eos_weight=0.02))
            os.environ["CHAT_ENGINE"] = "transformers"
            args.size, args.max_tokens = min(args.size, 256), min(args.max_tokens, 64)
            args.concurrency, args.pages = [1, 2], args.pages or 4
        if args.header:
            print(HEADER)
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
