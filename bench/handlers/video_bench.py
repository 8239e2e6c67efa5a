"""Seconds per 2 s clip of the video handler on a GPU (LTX-Video 0.9.8 13B distilled, 512x512).

Not a test and not run in CI. On a GPU machine with the weights reachable (hub or HF_HOME):

    python bench/handlers/video_bench.py                          # VIDEO_MODEL or LTX 0.9.8 13B distilled
    python bench/handlers/video_bench.py --weights fp8 --runs 5   # the FP8 endpoint's setting
    python bench/handlers/video_bench.py --size 768x512 --seconds 5 --fps 24
    python bench/handlers/video_bench.py --tiny                   # CPU smoke run, tiny random LTX

It runs the whole ``handler(job)`` in-process (the worker's own loading, denoising,
preview, VAE decode and H.264 encoding), warms up once, times ``--runs`` clips and prints
one markdown table row for ``bench/README.md``. ``--tiny`` builds the tests' tiny random
LTX pipeline (tests/handlers/tiny_models.py) in a temporary directory: it checks that the
script runs, its figures say nothing about a real model.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere in the repo

HEADER = (
    "| surface | model | device | weights | size | frames @ fps | steps | s per clip (p50) | s per 2 s of video "
    "| load s | peak GPU mem |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("VIDEO_MODEL", "Lightricks/LTX-Video-0.9.8-13B-distilled"))
    parser.add_argument("--size", default="512x512", help="WIDTHxHEIGHT")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--weights", default=os.environ.get("VIDEO_WEIGHTS", "auto"), help="auto, native, fp8")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run on a tiny random LTX pipeline")
    parser.add_argument("--header", action="store_true", help="print the table header too")
    return parser.parse_args()


def _device_name() -> str:
    import torch

    return str(torch.cuda.get_device_name(0)) if torch.cuda.is_available() else "cpu"


def main() -> None:
    args = _args()
    workdir = tempfile.TemporaryDirectory(prefix="video-bench-")
    if args.tiny:
        builder = importlib.import_module("tests.handlers.tiny_models").build_tiny_ltx_pipeline
        args.model = str(builder(Path(workdir.name) / "tiny-ltx"))
        os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["VIDEO_MODEL"] = args.model
    os.environ["VIDEO_WEIGHTS"] = args.weights
    os.environ["VIDEO_MAX_INLINE_BYTES"] = str(1024 * 1024 * 1024)  # measuring, not serving
    os.environ.setdefault("VIDEO_MAX_FRAMES", "1000")
    import torch

    from handlers.common.progress import EMULATOR_PROGRESS_KEY
    from handlers.video import engine
    from handlers.video.handler import handler

    width, height = (int(side) for side in args.size.lower().split("x"))
    frames = max(1, round(args.seconds * args.fps))
    started = time.perf_counter()
    worker = engine.get_engine()
    load_s = time.perf_counter() - started
    payload: dict[str, Any] = {
        "task": "txt2video",
        "prompt": "a lighthouse on a cliff at sunset, waves crashing, cinematic",
        "width": width,
        "height": height,
        "frames": frames,
        "fps": args.fps,
        "steps": args.steps,
    }

    def one(seed: int) -> None:
        job = {"id": "bench", "input": {**payload, "seed": seed}, EMULATOR_PROGRESS_KEY: lambda _: None}
        out = asyncio.run(handler(job))
        if "error" in out:
            raise SystemExit(f"handler failed: {out['error']}")
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    one(0)  # warm-up: kernels, allocator
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    times: list[float] = []
    for seed in range(1, args.runs + 1):
        t0 = time.perf_counter()
        one(seed)
        times.append(time.perf_counter() - t0)
    workdir.cleanup()

    per_clip = statistics.median(times)
    per_two_seconds = per_clip * 2.0 / (frames / args.fps)
    peak = f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if torch.cuda.is_available() else "-"
    name = "tiny random LTX (smoke)" if args.tiny else args.model
    if args.header:
        print(HEADER)
    print(
        f"| video | {name} | {_device_name()} | {worker.storage} | {width}x{height} | {frames} @ {args.fps} "
        f"| {args.steps} | {per_clip:.2f} | {per_two_seconds:.2f} | {load_s:.1f} | {peak} |"
    )
    print(f"({args.runs} runs: {', '.join(f'{t:.2f}' for t in times)} s, torch {torch.__version__})", file=sys.stderr)


if __name__ == "__main__":
    main()
