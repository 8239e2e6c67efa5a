"""Throughput of the images worker's img2img, img-upscale and img-rmbg tasks (GPU figures).

Not a test and not run in CI. On a GPU machine with the weights reachable (hub or HF_HOME):

    python bench/handlers/images_tasks_bench.py --task edit      # Qwen-Image-Edit-2509 NF4, 1024² in and out
    python bench/handlers/images_tasks_bench.py --task upscale   # Real-ESRGAN x4: 1024² -> 4096²
    python bench/handlers/images_tasks_bench.py --task rmbg      # BEN2, 1024² picture
    python bench/handlers/images_tasks_bench.py --tiny           # CPU smoke run of all three on tiny models

Each task loads through the worker's own code (``edit.get_edit_engine``,
``upscale.get_upscaler``, ``rmbg.get_remover``, configured by the same env as the worker),
warms up once, times ``--runs`` calls on an in-memory picture and prints one markdown row
for ``bench/README.md``. ``--tiny`` builds random tiny models (the tests' builders) in a
temporary directory and uses small pictures: it checks the script, not the hardware.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere in the repo

HEADER = (
    "| task | model | device | input | output | images/s | s/image (p50) | peak GPU mem |\n"
    "|---|---|---|---|---|---|---|---|"
)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("edit", "upscale", "rmbg", "all"), default="all")
    parser.add_argument("--size", type=int, default=1024, help="input side (edit output too)")
    parser.add_argument("--steps", type=int, default=None, help="edit steps (default: the model's)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tiny", action="store_true", help="tiny random models on the CPU (smoke run)")
    parser.add_argument("--header", action="store_true", help="print the table header too")
    return parser.parse_args()


def _tiny_models(root: Path) -> None:
    # The tests' builders, imported by name: they are test code, not part of the typed bench.
    diffusion: Any = importlib.import_module("tests.handlers.tiny_models")
    others: Any = importlib.import_module("tests.handlers.tiny_image_models")
    os.environ["IMAGES_EDIT_MODEL"] = str(diffusion.build_tiny_image_pipeline(root / "tiny-sd"))
    os.environ["IMAGES_UPSCALE_MODEL"] = str(others.build_tiny_esrgan(root / "RealESRGAN_x4plus.pth"))
    os.environ["IMAGES_RMBG_MODEL"] = str(others.build_tiny_ben2_onnx(root / "BEN2_Base.onnx"))
    os.environ["IMAGES_DEVICE"] = "cpu"


def _picture(side: int) -> Any:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    smooth = rng.integers(0, 256, (side // 16 + 1, side // 16 + 1, 3), dtype=np.uint8)
    return Image.fromarray(smooth).resize((side, side), Image.Resampling.BICUBIC)  # photo-like, not noise


def _runners(task: str, side: int, steps: int | None) -> tuple[str, str, Callable[[int], Any]]:
    """(model name, output size, one call) for ``task``; the model loads here, untimed."""
    from handlers.images import edit, rmbg, upscale
    from handlers.images.schema import EditInput, Limits

    picture = _picture(side)
    if task == "edit":
        worker = edit.get_edit_engine()
        limits = Limits.from_env()

        def one_edit(seed: int) -> Any:
            params = EditInput(prompt="make the sky a deep orange sunset", seed=seed, num_inference_steps=steps)
            return worker.generate(worker.plan_edit(params, [picture], limits))

        return worker.name, f"{side}x{side}", one_edit
    if task == "upscale":
        upscaler = upscale.get_upscaler()
        out = side * upscaler.scale
        return upscaler.name, f"{out}x{out}", lambda seed: upscaler.upscale(picture, None)
    remover = rmbg.get_remover()
    return remover.name, f"{side}x{side}", lambda seed: remover.remove(picture)


def _bench(task: str, args: argparse.Namespace) -> str:
    import torch

    name, output, one = _runners(task, args.size, args.steps)
    cuda = torch.cuda.is_available() and not args.tiny

    def timed(seed: int) -> float:
        started = time.perf_counter()
        one(seed)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - started

    timed(0)  # warm-up: kernels, allocator, ONNX Runtime's arena
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = [timed(seed) for seed in range(1, args.runs + 1)]
    device = str(torch.cuda.get_device_name(0)) if cuda else "cpu"
    peak = f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if cuda else "-"
    return (
        f"| {task} | {name if not args.tiny else 'tiny random'} | {device} | {args.size}x{args.size} | {output} "
        f"| {len(times) / sum(times):.2f} | {statistics.median(times):.2f} | {peak} |"
    )


def main() -> None:
    args = _args()
    with tempfile.TemporaryDirectory() as scratch:
        if args.tiny:
            _tiny_models(Path(scratch))
            args.size = min(args.size, 64)
            args.runs = min(args.runs, 2)
            args.steps = args.steps or 2
        os.environ.setdefault("IMAGES_UPSCALE_MAX_OUTPUT_SIDE", str(args.size * 8))
        rows = [_bench(task, args) for task in (("edit", "upscale", "rmbg") if args.task == "all" else (args.task,))]
    if args.header:
        print(HEADER)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
