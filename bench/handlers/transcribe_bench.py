"""Real-time factor of the transcribe handler's engine on a GPU (whisper large-v3 by default).

Not a test and not run in CI. On a GPU machine with the weights reachable (hub or HF_HOME):

    python bench/handlers/transcribe_bench.py --audio speech.mp3          # large-v3, float16
    python bench/handlers/transcribe_bench.py --audio speech.mp3 --model turbo --runs 5
    python bench/handlers/transcribe_bench.py --audio speech.mp3 --handler --word-timestamps
    python bench/handlers/transcribe_bench.py --source-url https://www.youtube.com/watch?v=...  # platform link
    python bench/handlers/transcribe_bench.py --tiny [--link]   # CPU smoke run, tiny random Whisper

Use real speech (a few minutes: a podcast, a LibriSpeech chapter): decoding cost follows
the number of tokens spoken, so a tone or noise would flatter the figures. Without
``--audio`` the script synthesises a minute of noise and says so in the row.

It loads the model through ``handlers.transcribe.engine`` (the worker's own code path),
decodes the audio once, warms up, times ``--runs`` transcriptions and prints one markdown
table row for ``bench/README.md``. RTF = processing time / audio duration (lower is
better); "x real-time" is its inverse. ``--handler`` times the whole ``handler(job)``
instead (adds base64 decoding, PyAV decoding and output building).

``--source-url`` measures platform transcription (vid2txt/aud2txt): the whole
``handler(job)`` with ``source_url``, so the yt-dlp download is inside the RTF (it depends
on the platform's bandwidth as much as on the GPU). ``--tiny`` builds the tests' tiny random
Whisper (tests/handlers/tiny_models.py); with ``--link`` it serves the synthetic audio from a
loopback server (allowlisted) and runs the ``source_url`` path. Smoke runs only: their
figures say nothing about a real model.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
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
    parser.add_argument("--source-url", help="a platform link (vid2txt/aud2txt): time download + transcription")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run on a tiny random Whisper")
    parser.add_argument("--link", action="store_true", help="with --tiny: the source_url path on a loopback server")
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


def _link_seconds(url: str) -> float:
    """The link's media duration, from one download through the worker's own path."""
    from handlers.common.cancel import CancelToken
    from handlers.transcribe import audio, source
    from handlers.transcribe.platforms import check_link

    link = check_link(url)
    samples = source.download(link, CancelToken(), lambda path: audio.decode(str(path), "source_url"))
    return float(samples.size / audio.SAMPLE_RATE)


def _link_row(args: argparse.Namespace, url: str) -> None:
    """Platform transcription: RTF of handler(job) with ``source_url`` (download included)."""
    from handlers.common.progress import EMULATOR_PROGRESS_KEY
    from handlers.transcribe import engine
    from handlers.transcribe.handler import handler

    seconds = _link_seconds(url)
    started = time.perf_counter()
    loaded = engine.get_model()
    load_s = time.perf_counter() - started
    payload = {"source_url": url, "language": args.language, "beam_size": args.beam_size, "include_ts": True}

    def one() -> None:
        out = asyncio.run(handler({"id": "bench", "input": payload, EMULATOR_PROGRESS_KEY: lambda _: None}))
        if "error" in out:
            raise SystemExit(f"handler failed: {out['error']}")

    one()  # warm-up
    times: list[float] = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        one()
        times.append(time.perf_counter() - t0)
    rtf = statistics.median(times) / seconds
    device = _gpu_name() if loaded.device == "cuda" else "cpu"
    source = "loopback link (smoke)" if args.tiny else "platform link"
    if args.header:
        print(HEADER)
    print(
        f"| transcribe | {loaded.label} | {device} | {loaded.compute_type} | {seconds:.0f} s {source} "
        f"| beam {args.beam_size}, source_url (download incl.) | {rtf:.4f} | {1 / rtf:.0f}x | {load_s:.1f} "
        f"| {_gpu_memory_used()} |"
    )
    print(f"({args.runs} runs: {', '.join(f'{t:.2f}' for t in times)} s)", file=sys.stderr)


def main() -> None:
    args = _args()
    workdir = tempfile.TemporaryDirectory(prefix="transcribe-bench-")
    if args.tiny:
        tiny = importlib.import_module("tests.handlers.tiny_models")
        args.model = str(tiny.build_tiny_whisper_model(Path(workdir.name) / "tiny-whisper"))
        os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSCRIBE_MODEL"] = args.model
    if args.source_url:
        _link_row(args, args.source_url)
        return
    if args.tiny and args.link:
        serve = importlib.import_module("tests.handlers.static_files").static_server
        with serve({"/talk.wav": (_synthetic_wav(20.0), "audio/wav")}) as origin:
            os.environ["MEDIA_FETCH_ALLOWLIST"] = origin.removeprefix("http://")
            _link_row(args, f"{origin}/talk.wav")
        return
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
