"""Images/s of the images handler's engine on a GPU (Flux schnell at 1024x1024 by default).

Not a test and not run in CI. On a GPU machine with the weights reachable (hub or HF_HOME):

    python bench/handlers/images_bench.py                 # FLUX.1-schnell, 1024², 4 steps
    python bench/handlers/images_bench.py --batch 4 --runs 5
    python bench/handlers/images_bench.py --model stabilityai/sd-turbo --size 512 --steps 1

It loads the model through ``handlers.images.engine`` (the worker's own code path), warms
up once, times ``--runs`` generations and prints one markdown table row for
``bench/README.md``. ``--handler`` times the whole ``handler(job)`` instead (adds PNG
encoding and base64).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere in the repo

HEADER = (
    "| surface | model | device | size | steps | batch | images/s | s/image (p50) | peak GPU mem |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("IMAGES_MODEL", "black-forest-labs/FLUX.1-schnell"))
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1, help="num_images per job (1-8)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--handler", action="store_true", help="time handler(job) incl. encoding")
    parser.add_argument("--header", action="store_true", help="print the table header too")
    return parser.parse_args()


def _device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return str(torch.cuda.get_device_name(0))
    return "cpu"


def main() -> None:
    args = _args()
    os.environ["IMAGES_MODEL"] = args.model
    os.environ.setdefault("IMAGES_MAX_INLINE_BYTES", str(512 * 1024 * 1024))  # measuring, not serving
    import torch

    from handlers.common.progress import EMULATOR_PROGRESS_KEY
    from handlers.images import engine
    from handlers.images.handler import handler
    from handlers.images.schema import ImagesInput, Limits

    started = time.perf_counter()
    worker = engine.get_engine()
    load_s = time.perf_counter() - started
    payload: dict[str, Any] = {
        "prompt": "a lighthouse on a cliff at sunset, photograph",
        "width": args.size,
        "height": args.size,
        "num_inference_steps": args.steps,
        "num_images": args.batch,
    }

    def one(seed: int) -> None:
        if args.handler:
            out = asyncio.run(
                handler({"id": "bench", "input": {**payload, "seed": seed}, EMULATOR_PROGRESS_KEY: lambda _: None})
            )
            if "error" in out:
                raise SystemExit(f"handler failed: {out['error']}")
        else:
            worker.generate(worker.plan(ImagesInput(**payload, seed=seed), Limits.from_env()))
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    one(0)  # warm-up: kernels, allocator, compile caches
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    times: list[float] = []
    for seed in range(1, args.runs + 1):
        t0 = time.perf_counter()
        one(seed)
        times.append(time.perf_counter() - t0)

    images_per_s = args.batch * len(times) / sum(times)
    per_image = statistics.median(times) / args.batch
    peak = f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if torch.cuda.is_available() else "-"
    what = "images (handler)" if args.handler else "images"
    if args.header:
        print(HEADER)
    print(
        f"| {what} | {args.model} | {_device_name()} | {args.size}x{args.size} | {args.steps} | {args.batch} "
        f"| {images_per_s:.2f} | {per_image:.2f} | {peak} |"
    )
    print(f"(load {load_s:.1f} s, {args.runs} runs, torch {torch.__version__})", file=sys.stderr)


if __name__ == "__main__":
    main()
