"""Check the worker images and their RunPod endpoint bodies against each other, statically.

    python deploy/runpod/check_workers.py             # offline checks, exit 1 on a problem
    python deploy/runpod/check_workers.py --resolve   # also resolve every pin against PyPI

What a wrong line costs is a failed first deployment on a GPU, which no CPU test can see:

- **env**: a key set both in ``handlers/<surface>/Dockerfile`` and in the endpoint's ``env``
  must agree (RunPod's env wins over the image's); where weights live (``HF_HOME``,
  ``HF_HUB_OFFLINE``, ...) is the image's decision, never the endpoint's; both keep
  ``RUNPOD_LOG_LEVEL`` at INFO or above (DEBUG logs job outputs).
- **hf download**: one pattern per ``--include``/``--exclude``; a second pattern would be
  read as a file name to download.
- **CUDA**: the endpoint's ``gpu.minCudaVersion`` (and any ``allowedCudaVersions``) is at
  least the CUDA version the image needs: its base image's and its torch build's.
- **pins**: every requirement is ``name==version``; the torch the Dockerfile installs is the
  one requirements.txt pins (and torchaudio, where it installs both), from an index known to
  carry it.
- A worker with more than one image (``IMAGE_FILES``: the speech families) has each endpoint
  body checked against its own Dockerfile and requirements file.
- **--resolve** (network, opt-in; CI does not run it): ``pip install --dry-run`` of every
  pinned requirements file for the image's Python and platform, and of torch from the
  Dockerfile's index, and the CUDA version PyPI's torch metadata really asks for.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# More endpoints of one worker: body name -> the handlers/ directory whose image it runs.
VARIANTS = {
    "images-edit": "images",
    "images-rmbg": "images",
    "images-upscale": "images",
    "speech-chatterbox": "speech",
    "speech-qwen3": "speech",
    "chat-ocr": "chat",
}
# Endpoints whose worker has more than one image: body name -> (Dockerfile, requirements file)
# in that worker's directory (the speech families' packages pin conflicting torch stacks).
IMAGE_FILES = {
    "speech-chatterbox": ("Dockerfile.chatterbox", "requirements-chatterbox.txt"),
    "speech-qwen3": ("Dockerfile.qwen3", "requirements-qwen3.txt"),
}
SURFACES = ("chat", "images", "transcribe", "embeddings", "video", "speech", "music", *VARIANTS)
PYPI = "https://pypi.org/simple"
IMAGE_PYTHON = "3.12"  # Ubuntu 24.04's python3, which every Dockerfile uses
# Ubuntu 24.04 has glibc 2.39; pip matches --platform tags exactly, so list what it accepts.
_GLIBC_MINORS = (39, 38, 36, 35, 34, 33, 31, 30, 28, 27, 24, 17, 12, 5)
IMAGE_PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in _GLIBC_MINORS),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)

# Where weights live is decided by the image (baked or on the volume), never by the endpoint.
IMAGE_ONLY_ENV = ("HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
QUIET_LOG_LEVELS = ("INFO", "WARN", "WARNING", "ERROR")
# The CUDA version of the torch wheels on PyPI, from their metadata (``cuda-toolkit==13.0.x``),
# and the indexes known to carry each version. ``--resolve`` re-reads both from PyPI.
PYPI_TORCH_CUDA = {"2.6.0": "12.4", "2.10.0": "12.8", "2.13.0": "13.0", "2.14.0": "13.0"}
TORCH_INDEXES = {"2.6.0": (PYPI,), "2.10.0": (PYPI,), "2.13.0": (PYPI,), "2.14.0": (PYPI,)}
# Besides torch: pinned packages that fix an image's CUDA major (CTranslate2 4.x: cuBLAS 12).
OTHER_CUDA = {"ctranslate2": "12.0"}
_PATTERN_FLAGS = ("--include", "--exclude")
_VALUE_FLAGS = (*_PATTERN_FLAGS, "--local-dir", "--cache-dir", "--revision", "--repo-type", "--token", "--max-workers")


@dataclass
class Dockerfile:
    args: dict[str, str] = field(default_factory=dict)  # ARG defaults
    env: dict[str, str] = field(default_factory=dict)  # ENV, last value wins
    from_build_args: set[str] = field(default_factory=set)  # ENV names whose value is a build choice
    base: str = ""
    runs: list[str] = field(default_factory=list)


def parse_dockerfile(text: str) -> Dockerfile:
    """ARG defaults, ENV values (``${VAR}`` forms expanded with what is known), FROM, RUN."""
    parsed = Dockerfile()
    for line in _instructions(text):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG":
            name, _, default = rest.strip().partition("=")
            parsed.args.setdefault(name, _unquote(default))
        elif keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                parsed.env[name] = expand(value, {**parsed.args, **parsed.env})
                if "${" in value:
                    parsed.from_build_args.add(name)
        elif keyword == "FROM":
            parsed.base = expand(rest.split()[0], parsed.args)
        elif keyword == "RUN":
            parsed.runs.append(rest)
    return parsed


def _instructions(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    return lines


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'" else value


def expand(value: str, known: dict[str, str]) -> str:
    """``${VAR}``, ``${VAR:-default}`` and ``${VAR:+alternative}`` as Docker expands them."""

    def one(match: re.Match[str]) -> str:
        name, operator, word = match.group(1), match.group(2), match.group(3) or ""
        current = known.get(name, "")
        if operator == ":-":
            return current or word
        if operator == ":+":
            return word if current else ""
        return current

    return re.sub(r"\$\{(\w+)(?:(:[-+])([^}]*))?\}", one, value)


def hf_download_problems(command: str) -> list[str]:
    """Argument-shape mistakes in each ``hf download`` of one RUN command."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    tokens = list(lexer)
    problems: list[str] = []
    for start in range(len(tokens) - 1):
        if tokens[start] == "hf" and tokens[start + 1] == "download":
            problems += _download_args(tokens[start + 2 :])
    return problems


def _download_args(tokens: list[str]) -> list[str]:
    problems: list[str] = []
    positional: list[str] = []
    index = 0
    while index < len(tokens) and tokens[index] not in (";", "&&", "||", "|", "fi", "then"):
        token = tokens[index]
        if token in _VALUE_FLAGS:
            index += 2
            continue
        if not token.startswith("-"):
            positional.append(token)
        index += 1
    for name in positional[1:]:  # after the repo id, positionals are file names
        if any(char in name for char in "*?["):
            problems.append(
                f"hf download: {name!r} is read as a file name to download; "
                "give each pattern its own --include/--exclude"
            )
    return problems


def requirements(path: Path) -> dict[str, str]:
    """``name -> version`` of a requirements file; a line that is not ``name==version`` raises."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([A-Za-z0-9_.+\-]+)", line)
        if match is None:
            raise ValueError(f"{path.name}: {line!r} is not pinned as name==version")
        pins[match.group(1).lower().replace("_", "-")] = match.group(3)
    return pins


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def image_cuda(docker: Dockerfile, pins: dict[str, str]) -> tuple[str, list[str]]:
    """The CUDA version (major.minor) the image needs from the host, and why."""
    needs: list[tuple[str, str]] = []
    base = re.search(r"nvidia/cuda:(\d+\.\d+)", docker.base)
    if base:
        needs.append((base.group(1), f"base image {docker.base}"))
    torch = docker.args.get("TORCH_VERSION") or pins.get("torch")
    if torch:
        index = docker.args.get("TORCH_INDEX", PYPI)
        cu = re.search(r"/cu(\d+)(\d)$", index.rstrip("/"))
        cuda = f"{cu.group(1)}.{cu.group(2)}" if cu else PYPI_TORCH_CUDA.get(torch)
        if cuda:
            needs.append((cuda, f"torch {torch} from {index}"))
    for package, cuda in OTHER_CUDA.items():
        if package in pins:
            needs.append((cuda, f"{package} {pins[package]}"))
    if not needs:
        return "0.0", []
    highest = max(needs, key=lambda need: _version(need[0]))[0]
    return highest, [f"{why} needs CUDA {cuda}" for cuda, why in needs]


@dataclass
class Worker:
    surface: str
    docker: Dockerfile
    pins: dict[str, str]
    endpoint: dict[str, Any]
    requirements_file: Path | None = None

    @classmethod
    def load(cls, root: Path, surface: str) -> Worker:
        worker = VARIANTS.get(surface, surface)
        dockerfile, requirements_name = IMAGE_FILES.get(surface, ("Dockerfile", "requirements.txt"))
        docker = parse_dockerfile((root / f"handlers/{worker}/{dockerfile}").read_text())
        requirements_file = root / f"handlers/{worker}/{requirements_name}"
        spec = json.loads((root / f"deploy/runpod/{surface}.json").read_text())
        return cls(surface, docker, requirements(requirements_file), spec["endpoint"], requirements_file)


def check(worker: Worker) -> list[str]:
    """Every static problem of one worker, as readable sentences."""
    problems = [*_env_problems(worker), *_cuda_problems(worker), *_torch_problems(worker)]
    for command in worker.docker.runs:
        problems += hf_download_problems(command)
    return [f"{worker.surface}: {problem}" for problem in problems]


def _env_problems(worker: Worker) -> list[str]:
    problems: list[str] = []
    endpoint_env: dict[str, str] = worker.endpoint.get("env", {})
    image_env = worker.docker.env
    for name, value in endpoint_env.items():
        if name in IMAGE_ONLY_ENV:
            problems.append(f"the endpoint sets {name}={value}: where weights live is the image's decision")
        elif name in image_env and name not in worker.docker.from_build_args and image_env[name] != value:
            problems.append(f"the endpoint's {name}={value} overrides the image's {name}={image_env[name]}")
    for where, env in (("image", image_env), ("endpoint", endpoint_env)):
        level = env.get("RUNPOD_LOG_LEVEL", "")
        if level.upper() not in QUIET_LOG_LEVELS:
            problems.append(f"the {where} must set RUNPOD_LOG_LEVEL to INFO or above, not {level!r}")
    return problems


def _cuda_problems(worker: Worker) -> list[str]:
    needed, reasons = image_cuda(worker.docker, worker.pins)
    gpu: dict[str, Any] = worker.endpoint.get("gpu") or {}
    floor = gpu.get("minCudaVersion")
    allowed: list[str] = gpu.get("allowedCudaVersions") or []
    if not floor and not allowed:
        return [f"gpu.minCudaVersion is unset; the image needs CUDA {needed} ({'; '.join(reasons)})"]
    problems: list[str] = []
    for version in [*([floor] if floor else []), *allowed]:
        if _version(version) < _version(needed):
            problems.append(f"hosts with CUDA {version} are allowed; the image needs {needed} ({'; '.join(reasons)})")
    return problems


def _torch_problems(worker: Worker) -> list[str]:
    installed = worker.docker.args.get("TORCH_VERSION")
    if installed is None:
        return []
    problems: list[str] = []
    if worker.pins.get("torch") != installed:
        problems.append(f"the Dockerfile installs torch {installed}, requirements.txt pins {worker.pins.get('torch')}")
    audio = worker.pins.get("torchaudio")  # installed beside torch at the same version, where it is
    paired = any("torchaudio==${TORCH_VERSION}" in run for run in worker.docker.runs)
    if audio is not None and paired and audio != installed:
        problems.append(f"the Dockerfile installs torchaudio {installed}, requirements.txt pins {audio}")
    index = worker.docker.args.get("TORCH_INDEX", PYPI).rstrip("/")
    if index not in TORCH_INDEXES.get(installed, ()):
        problems.append(f"torch {installed} is not known to be on {index}; check with --resolve")
    return problems


# --- network (opt-in) ----------------------------------------------------------------------


def resolve(worker: Worker, root: Path) -> list[str]:
    """Resolve the pins against the real indexes; returns problems (network needed)."""
    problems: list[str] = []
    requirements_file = worker.requirements_file or root / f"handlers/{worker.surface}/requirements.txt"
    report = _dry_run(["-r", str(requirements_file)], PYPI)
    if isinstance(report, str):
        problems.append(f"requirements.txt does not resolve: {report}")
    torch = worker.docker.args.get("TORCH_VERSION") or worker.pins.get("torch")
    if torch:
        index = worker.docker.args.get("TORCH_INDEX", PYPI)
        torch_report = _dry_run([f"torch=={torch}"], index)
        if isinstance(torch_report, str):
            problems.append(f"torch {torch} does not resolve on {index}: {torch_report}")
        elif index.rstrip("/") == PYPI:
            actual = _toolkit_cuda(torch_report)
            if actual and actual != PYPI_TORCH_CUDA.get(torch):
                problems.append(f"PyPI's torch {torch} asks for CUDA {actual}; PYPI_TORCH_CUDA says otherwise")
    return [f"{worker.surface}: {problem}" for problem in problems]


def _dry_run(requirement_args: list[str], index: str) -> dict[str, Any] | str:
    with tempfile.TemporaryDirectory() as target:
        command = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed", "--quiet",
            "--only-binary=:all:", "--python-version", IMAGE_PYTHON,
            *(arg for platform in IMAGE_PLATFORMS for arg in ("--platform", platform)),
            "--target", target, "--index-url", index, "--report", "-", *requirement_args,
        ]  # fmt: skip
        isolated = {"PIP_FIND_LINKS": "", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PATH": ""}
        done = subprocess.run(command, capture_output=True, text=True, env=isolated)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        return (errors or done.stderr.strip().splitlines() or ["pip failed"])[0]
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def _toolkit_cuda(report: dict[str, Any]) -> str | None:
    for item in report.get("install", []):
        for requirement in item.get("metadata", {}).get("requires_dist", []):
            match = re.match(r"cuda-toolkit\b.*==(\d+\.\d+)", requirement)
            if match:
                return match.group(1)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("surfaces", nargs="*", help=f"any of {', '.join(SURFACES)} (default: all)")
    parser.add_argument("--resolve", action="store_true", help="also resolve every pin against PyPI (network)")
    args = parser.parse_args(argv)
    problems: list[str] = []
    surfaces = args.surfaces or list(SURFACES)
    unknown = sorted(set(surfaces) - set(SURFACES))
    if unknown:
        parser.error(f"unknown surface(s): {', '.join(unknown)}")
    for surface in surfaces:
        try:
            worker = Worker.load(ROOT, surface)
        except ValueError as exc:
            problems.append(f"{surface}: {exc}")
            continue
        problems += check(worker)
        if args.resolve:
            problems += resolve(worker, ROOT)
    for problem in problems:
        print(problem)
    if not problems:
        print(f"ok: {', '.join(surfaces)}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
