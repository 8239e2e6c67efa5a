"""Real-time factor of the transcribe handler's engine on a GPU (whisper large-v3 by default).

Not a test and not run in CI. On a GPU machine with the weights reachable (hub or HF_HOME):

    python bench/handlers/transcribe_bench.py --audio speech.mp3          # large-v3, float16
    python bench/handlers/transcribe_bench.py --audio speech.mp3 --model turbo --runs 5
    python bench/handlers/transcribe_bench.py --audio speech.mp3 --handler --word-timestamps

Use real speech (a few minutes: a podcast, a LibriSpeech chapter): decoding cost follows
the number of tokens spoken, so a tone or noise would flatter the figures. Without
``--audio`` the script synthesises a minute of noise and says so in the row.

It loads the model through ``handlers.transcribe.engine`` (the worker's own code path),
decodes the audio once, warms up, times ``--runs`` transcriptions and prints one markdown
table row for ``bench/README.md``. RTF = processing time / audio duration (lower is
better); "x real-time" is its inverse. ``--handler`` times the whole ``handler(job)``
instead (adds base64 decoding, PyAV decoding and output building).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import statistics
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere in the repo

HEADER = (
    "| surface | model | device | compute | audio | options | RTF (p50) | x real-time | load s | GPU mem used |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("TRANSCRIBE_MODEL", "large-v3"))
    parser.add_argument("--audio", type=Path, help="an audio file with speech (any format PyAV reads)")
    parser.add_argument("--language", default=None, help="skip detection (e.g. en)")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--word-timestamps", action="store_true")
    parser.add_argument("--vad", action="store_true", help="enable_vad (Silero)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--handler", action="store_true", help="time handler(job) end to end")
    parser.add_argument("--header", action="store_true", help="print the table header too")
    return parser.parse_args()


def _synthetic_wav(seconds: float = 60.0, rate: int = 16000) -> bytes:
    import numpy as np

    samples = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * rate)) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def _gpu_memory_used() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split()
        return f"{int(out[0]) / 1024:.1f} GiB" if out else "-"
    except (OSError, subprocess.SubprocessError, ValueError):
        return "-"


def _gpu_name() -> str:
    try:
        return (
            subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            )
            .stdout.splitlines()[0]
            .strip()
        )
    except (OSError, subprocess.SubprocessError, IndexError):
        return "GPU"


def main() -> None:
    args = _args()
    os.environ["TRANSCRIBE_MODEL"] = args.model
    from handlers.common.progress import EMULATOR_PROGRESS_KEY
    from handlers.transcribe import audio, engine
    from handlers.transcribe.handler import decoding_options, handler
    from handlers.transcribe.schema import TranscribeInput

    data = args.audio.read_bytes() if args.audio else _synthetic_wav()
    payload: dict[str, Any] = {
        "audio_base64": base64.b64encode(data).decode(),
        "language": args.language,
        "beam_size": args.beam_size,
        "word_timestamps": args.word_timestamps,
        "enable_vad": args.vad,
    }
    samples = audio.decode(data, "audio_base64")
    seconds = samples.size / audio.SAMPLE_RATE

    started = time.perf_counter()
    loaded = engine.get_model()
    load_s = time.perf_counter() - started
    options = {**decoding_options(TranscribeInput(**payload)), "task": "transcribe"}

    def one() -> None:
        if args.handler:
            out = asyncio.run(handler({"id": "bench", "input": payload, EMULATOR_PROGRESS_KEY: lambda _: None}))
            if "error" in out:
                raise SystemExit(f"handler failed: {out['error']}")
        else:
            engine.transcribe(loaded, samples, options, lambda _: None)

    one()  # warm-up: CUDA context, cuBLAS/cuDNN handles, allocator
    times: list[float] = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        one()
        times.append(time.perf_counter() - t0)

    rtf = statistics.median(times) / seconds
    device = _gpu_name() if loaded.device == "cuda" else "cpu"
    source = args.audio.name if args.audio else "synthetic noise (not speech!)"
    flags = [f"beam {args.beam_size}"] + [
        name for name, on in (("words", args.word_timestamps), ("vad", args.vad), ("handler", args.handler)) if on
    ]
    if args.header:
        print(HEADER)
    print(
        f"| transcribe | {loaded.label} | {device} | {loaded.compute_type} | {seconds:.0f} s {source} "
        f"| {', '.join(flags)} | {rtf:.4f} | {1 / rtf:.0f}x | {load_s:.1f} | {_gpu_memory_used()} |"
    )
    print(f"({args.runs} runs: {', '.join(f'{t:.2f}' for t in times)} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
