"""Real-time factor of the speech handler (Kokoro-82M by default): seconds of audio per second.

Not a test and not run in CI. On a GPU machine with the weights reachable (hub or HF_HOME):

    python bench/handlers/speech_bench.py                        # Kokoro-82M, ~1,000 characters
    python bench/handlers/speech_bench.py --chars 4000 --runs 5 --format wav
    python bench/handlers/speech_bench.py --tiny                 # CPU smoke run, no download

It runs ``handler(job)`` (the worker's own path: chunking, G2P, synthesis, encoding), warms up
once, times ``--runs`` jobs and prints one markdown table row for ``bench/README.md``. The
real-time factor is audio seconds produced per wall-clock second (higher is faster).
``--tiny`` builds a random Kokoro of the real architecture in a temporary directory
(``tests/handlers/tiny_speech.py``): its figures say the code path works, not how fast
Kokoro is.
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
    "| surface | model | device | chars | format | audio s/job | RTF (audio s / s) | s/job (p50) |\n"
    "|---|---|---|---|---|---|---|---|"
)
_SENTENCES = (
    "The lighthouse keeper climbed the stairs at dusk, as he had done for thirty years.",
    "Below him the sea rolled in long grey lines, and the gulls went quiet one by one.",
    "He trimmed the wick, wound the clockwork, and watched the beam sweep out over the water.",
    "Somewhere beyond the headland a ship's horn answered, low and patient.",
)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("SPEECH_MODEL", "hexgrad/Kokoro-82M"))
    parser.add_argument("--chars", type=int, default=1000, help="characters of text per job")
    parser.add_argument("--format", default="mp3")
    parser.add_argument("--voice", default=None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="random tiny Kokoro on the CPU (smoke run)")
    parser.add_argument("--header", action="store_true", help="print the table header too")
    return parser.parse_args()


def _text(chars: int) -> str:
    words: list[str] = []
    while len(" ".join(words)) < chars:
        words.append(_SENTENCES[len(words) % len(_SENTENCES)])
    return " ".join(words)


def _device_name() -> str:
    import torch

    return str(torch.cuda.get_device_name(0)) if torch.cuda.is_available() else "cpu"


def main() -> None:
    args = _args()
    scratch = tempfile.TemporaryDirectory() if args.tiny else None
    if scratch is not None:
        from tests.handlers.tiny_speech import build_tiny_kokoro

        os.environ["SPEECH_DEVICE"] = "cpu"
        args.model = str(build_tiny_kokoro(Path(scratch.name) / "tiny-Kokoro-82M"))
        args.chars = min(args.chars, 200)
        args.runs = min(args.runs, 2)
    os.environ["SPEECH_MODEL"] = args.model
    os.environ.setdefault("SPEECH_MAX_INLINE_BYTES", str(512 * 1024 * 1024))  # measuring, not serving
    os.environ.setdefault("SPEECH_MAX_TEXT", str(max(args.chars + 100, 5000)))
    import torch

    from handlers.common.progress import EMULATOR_PROGRESS_KEY
    from handlers.speech import engine
    from handlers.speech.handler import handler

    started = time.perf_counter()
    engine.get_engine()
    load_s = time.perf_counter() - started
    payload: dict[str, Any] = {"task": "txt2audio", "text": _text(args.chars), "format": args.format}
    if args.voice:
        payload["voice"] = args.voice

    def one() -> float:
        out = asyncio.run(handler({"id": "bench", "input": payload, EMULATOR_PROGRESS_KEY: lambda _: None}))
        if "error" in out:
            raise SystemExit(f"handler failed: {out['error']}")
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return float(out["duration_s"])

    try:
        one()  # warm-up: G2P, kernels, allocator
        times: list[float] = []
        audio: list[float] = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            audio.append(one())
            times.append(time.perf_counter() - t0)
    finally:
        if scratch is not None:
            scratch.cleanup()
    rtf = sum(audio) / sum(times)
    model = "tiny random Kokoro (--tiny)" if args.tiny else args.model
    if args.header:
        print(HEADER)
    print(
        f"| speech | {model} | {_device_name()} | {len(payload['text'])} | {args.format} "
        f"| {statistics.mean(audio):.1f} | {rtf:.1f} | {statistics.median(times):.2f} |"
    )
    print(f"(load {load_s:.1f} s, {args.runs} runs, torch {torch.__version__})", file=sys.stderr)


if __name__ == "__main__":
    main()
