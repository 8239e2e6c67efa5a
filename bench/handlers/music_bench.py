"""Throughput of the music handler: seconds of audio made per wall-clock second.

Not a test and not run in CI. On a GPU machine with the weights reachable (hub or HF_HOME):

    python bench/handlers/music_bench.py                                   # ACE-Step 1.5 turbo, 30 s, 8 steps
    python bench/handlers/music_bench.py --duration 120,600 --steps 8 --runs 3
    python bench/handlers/music_bench.py --model facebook/musicgen-small --duration 10
    python bench/handlers/music_bench.py --tiny                            # CPU smoke run, no download

It runs ``handler(job)`` (the worker's own path: prompt encoding, every diffusion step or
codec frame, decoding, MP3 encoding), warms up once per duration, times ``--runs`` jobs and
prints one markdown table row per duration for ``bench/README.md``. ``--tiny`` builds a
random ACE-Step pipeline of the real architecture in a temporary directory
(``tests/handlers/tiny_music.py``): its figures say the code path works, not how fast
ACE-Step is.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere in the repo

HEADER = (
    "| surface | model | device | steps | format | audio s/job | audio s / s | s/job (p50) |\n"
    "|---|---|---|---|---|---|---|---|"
)
CAPTION = "warm lofi hip hop, dusty drums, mellow electric piano, vinyl crackle"
LYRICS = "[verse]\nstreetlights hum a quiet tune\n[chorus]\nstay a while, stay a while"


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("MUSIC_MODEL", "ACE-Step/acestep-v15-xl-turbo-diffusers"))
    parser.add_argument("--duration", default="30", help="seconds of music per job; a comma list runs each")
    parser.add_argument("--steps", type=int, default=8, help="diffusion steps (ACE-Step; MusicGen ignores it)")
    parser.add_argument("--format", default="mp3")
    parser.add_argument("--lyrics", action="store_true", help="sing LYRICS (ACE-Step only)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="random tiny ACE-Step on the CPU (smoke run)")
    parser.add_argument("--header", action="store_true", help="print the table header too")
    return parser.parse_args()


def _device_name() -> str:
    import torch

    return str(torch.cuda.get_device_name(0)) if torch.cuda.is_available() else "cpu"


def main() -> None:
    args = _args()
    durations = [float(value) for value in args.duration.split(",")]
    scratch = tempfile.TemporaryDirectory() if args.tiny else None
    if scratch is not None:
        from tests.handlers.tiny_music import build_tiny_acestep_pipeline

        os.environ["MUSIC_DEVICE"] = "cpu"
        args.model = str(build_tiny_acestep_pipeline(Path(scratch.name) / "tiny-acestep"))
        durations = [min(d, 20.0) for d in durations]
        args.runs = min(args.runs, 2)
    os.environ["MUSIC_MODEL"] = args.model
    os.environ.setdefault("MUSIC_MAX_INLINE_BYTES", str(1024 * 1024 * 1024))  # measuring, not serving
    import torch

    from handlers.common.progress import EMULATOR_PROGRESS_KEY
    from handlers.music import engine
    from handlers.music.handler import handler

    started = time.perf_counter()
    engine.get_engine()
    load_s = time.perf_counter() - started
    model = "tiny random ACE-Step (--tiny)" if args.tiny else args.model
    if args.header:
        print(HEADER)
    try:
        for duration in durations:
            payload: dict[str, Any] = {"task": "txt2music", "caption": CAPTION, "duration": duration, "seed": 1,
                                       "inference_steps": args.steps, "format": args.format}  # fmt: skip
            if args.lyrics:
                payload["lyrics"] = LYRICS

            def one(job: dict[str, Any] = payload) -> float:
                out = asyncio.run(handler({"id": "bench", "input": job, EMULATOR_PROGRESS_KEY: lambda _: None}))
                if "error" in out:
                    raise SystemExit(f"handler failed: {out['error']}")
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                return float(out["duration_s"])

            one()  # warm-up: kernels, allocator, the VAE's tiling for this length
            times: list[float] = []
            audio: list[float] = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                audio.append(one())
                times.append(time.perf_counter() - t0)
            print(
                f"| music | {model} | {_device_name()} | {args.steps} | {args.format} "
                f"| {statistics.mean(audio):.1f} | {sum(audio) / sum(times):.1f} | {statistics.median(times):.2f} |"
            )
    finally:
        if scratch is not None:
            scratch.cleanup()
    print(f"(load {load_s:.1f} s, {args.runs} runs, torch {torch.__version__})", file=sys.stderr)


if __name__ == "__main__":
    main()
