"""Chatterbox (Resemble AI) through the ``chatterbox-tts`` package: ``voice_clone`` at 24 kHz.

Three variants of the package's published API, each loaded with its class's ``from_local``
from a directory holding exactly the files that class reads (a hub id is fetched with
``snapshot_download`` limited to those files, as ``from_pretrained`` would):

- ``english``: ``ChatterboxTTS`` (``ResembleAI/chatterbox``: ``t3_cfg.safetensors`` ...)
- ``multilingual``: ``ChatterboxMultilingualTTS`` (same hub repository, its ``t3_mtl23ls_v2``
  files), 23 languages chosen by ``language_id``
- ``turbo``: ``ChatterboxTurboTTS`` (``ResembleAI/chatterbox-turbo``), English, a reference
  longer than 5 s

The variant is ``SPEECH_CHATTERBOX_VARIANT``, else ``turbo`` when the id says so, else the
one a local directory's weights show, else ``english``. The reference clip (already fetched and
held to 3-10 s by ``reference.py``) is handed to ``prepare_conditionals`` as an in-memory WAV
once per job; each chunk of text is then one ``generate`` call on those conditionals. The
package watermarks its output (Resemble's Perth watermark) inside ``generate``.
"""

from __future__ import annotations

import importlib
import io
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handlers.common.cancel import CancelToken
from handlers.common.errors import HandlerError, InvalidInput
from handlers.speech import chunking
from handlers.speech.engine import Speech, Synthesis, unavailable

logger = logging.getLogger("handlers.speech")

SAMPLE_RATE = 24_000  # S3Gen's output rate (the package's ``S3GEN_SR``; ``model.sr``)
TURBO_MIN_REFERENCE_S = 5.0  # ChatterboxTurboTTS.prepare_conditionals asserts more than 5 s


@dataclass(frozen=True)
class Variant:
    name: str
    module: str  # of the chatterbox package (the package's __init__ does not export Turbo)
    class_name: str
    files: tuple[str, ...]  # what its from_local reads (and so what a hub snapshot fetches)
    takes_language: bool  # generate(..., language_id=...)
    tunable: bool  # exaggeration and cfg_weight mean something (Turbo ignores them)


VARIANTS = {
    "english": Variant(
        "english",
        "chatterbox.tts",
        "ChatterboxTTS",
        ("ve.safetensors", "t3_cfg.safetensors", "s3gen.safetensors", "tokenizer.json", "conds.pt"),
        takes_language=False,
        tunable=True,
    ),
    "multilingual": Variant(
        "multilingual",
        "chatterbox.mtl_tts",
        "ChatterboxMultilingualTTS",
        (
            "ve.pt",
            "t3_mtl23ls_v2.safetensors",
            "s3gen.pt",
            "grapheme_mtl_merged_expanded_v1.json",
            "conds.pt",
            "Cangjie5_TC.json",
        ),
        takes_language=True,
        tunable=True,
    ),
    "turbo": Variant(
        "turbo",
        "chatterbox.tts_turbo",
        "ChatterboxTurboTTS",
        ("*.safetensors", "*.json", "*.txt", "*.pt", "*.model"),
        takes_language=False,
        tunable=False,
    ),
}
# The multilingual model's language_id values (the package's SUPPORTED_LANGUAGES keys).
MULTILINGUAL_LANGUAGES = frozenset({
    "ar", "da", "de", "el", "en", "es", "fi", "fr", "he", "hi", "it", "ja", "ko", "ms", "nl", "no", "pl", "pt",
    "ru", "sv", "sw", "tr", "zh",
})  # fmt: skip
_ENGLISH = frozenset({"en", "en-us", "en-gb", "english"})


def variant_of(name: str) -> Variant:
    """``SPEECH_CHATTERBOX_VARIANT``, else what the model id or a local directory shows."""
    wanted = os.environ.get("SPEECH_CHATTERBOX_VARIANT", "").strip().lower()
    if wanted and wanted != "auto":
        if wanted not in VARIANTS:
            raise HandlerError(
                f"SPEECH_CHATTERBOX_VARIANT must be auto or one of {', '.join(VARIANTS)}", code="bad_configuration"
            )
        return VARIANTS[wanted]
    lowered = name.lower()
    if "turbo" in lowered:
        return VARIANTS["turbo"]
    if "multilingual" in lowered or (Path(name) / "t3_mtl23ls_v2.safetensors").is_file():
        return VARIANTS["multilingual"]
    if (Path(name) / "t3_turbo_v1.safetensors").is_file():
        return VARIANTS["turbo"]
    return VARIANTS["english"]


def language_id(variant: Variant, lang: str | None) -> str | None:
    """The ``language_id`` a job's ``lang`` becomes (multilingual), or None (English variants,
    which refuse any other language); errors name ``lang``."""
    slug = (lang or "en").strip().lower()
    if not variant.takes_language:
        if slug not in _ENGLISH:
            raise InvalidInput("lang", f"This Chatterbox ({variant.name}) speaks English only", code="unknown_language")
        return None
    code = "en" if slug == "english" else slug.split("-")[0]
    if code not in MULTILINGUAL_LANGUAGES:
        raise InvalidInput(
            "lang", f"lang must be one of {', '.join(sorted(MULTILINGUAL_LANGUAGES))}", code="unknown_language"
        )
    return code


@dataclass(frozen=True)
class Settings:
    """The operator's knobs (``SPEECH_CHATTERBOX_*``), read per job."""

    exaggeration: float = 0.5  # emotion intensity; the package's default
    cfg_weight: float = 0.5  # classifier-free guidance; lower slows a fast reference speaker
    temperature: float = 0.8

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            exaggeration=chunking.env_float("SPEECH_CHATTERBOX_EXAGGERATION", cls.exaggeration, 0.0, 2.0),
            cfg_weight=chunking.env_float("SPEECH_CHATTERBOX_CFG_WEIGHT", cls.cfg_weight, 0.0, 1.0),
            temperature=chunking.env_float("SPEECH_CHATTERBOX_TEMPERATURE", cls.temperature, 0.05, 5.0),
        )


def conditioning_arguments(variant: Variant, settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``prepare_conditionals`` after the WAV (Turbo: no exaggeration)."""
    return {"exaggeration": settings.exaggeration if variant.tunable else 0.0}


def generate_arguments(variant: Variant, settings: Settings, language: str | None) -> dict[str, Any]:
    """Keyword arguments of ``generate(text, ...)`` for one chunk, on prepared conditionals."""
    arguments: dict[str, Any] = {"temperature": settings.temperature}
    if variant.tunable:
        # The same exaggeration as the conditionals, so generate does not rebuild them.
        arguments.update(exaggeration=settings.exaggeration, cfg_weight=settings.cfg_weight)
    if variant.takes_language:
        arguments["language_id"] = language
    return arguments


class ChatterboxEngine:
    modes = frozenset({"voice_clone"})

    def __init__(self, name: str, model: Any, variant: Variant, device: str) -> None:
        self.name = name
        self.model = model
        self.variant = variant
        self.device = device
        self.sample_rate = int(getattr(model, "sr", SAMPLE_RATE))
        self._lock = threading.Lock()  # the conditionals live on the model: one job at a time

    @classmethod
    def load(cls, name: str) -> ChatterboxEngine:
        variant = variant_of(name)
        try:
            import chatterbox  # noqa: F401  (the package, before anything is fetched)
        except ImportError as exc:
            raise unavailable("chatterbox", "chatterbox-tts", exc) from exc
        try:
            model_class = getattr(importlib.import_module(variant.module), variant.class_name)
            directory = resolve_directory(name, variant)
            device = chunking.choose_device()
            model = model_class.from_local(directory, device)
        except Exception as exc:
            raise HandlerError(
                f"Could not load speech model {name!r}: {type(exc).__name__}: {exc}", code="model_load_failed"
            ) from exc
        logger.info("loaded Chatterbox (%s) %s on %s", variant.name, name, device)
        return cls(name, model, variant, device)

    def synthesize(self, request: Synthesis, on_progress: Callable[[float], None], cancel: CancelToken) -> Speech:
        reference = request.reference
        if reference is None:  # schema.check_input requires it in voice_clone
            raise InvalidInput("ref_audio", "ref_audio is required in the voice_clone mode")
        if not self.variant.tunable and reference.duration_s <= TURBO_MIN_REFERENCE_S:
            raise InvalidInput(
                "ref_audio",
                f"ref_audio is {reference.duration_s:.1f} s long; Chatterbox Turbo needs more than "
                f"{TURBO_MIN_REFERENCE_S:g} s",
                code="audio_too_short",
            )
        language = language_id(self.variant, request.lang)
        settings = Settings.from_env()
        pieces = chunking.plan(request.text)
        if not pieces:
            raise InvalidInput("text", "text has nothing to say")
        clip = io.BytesIO(chunking.wav_bytes(reference.samples, reference.sample_rate))
        arguments = generate_arguments(self.variant, settings, language)
        import torch  # after the checks: a bad request fails without it

        def speak(piece: str) -> Any:
            with torch.inference_mode():
                wav = self.model.generate(piece, **arguments)
            return wav.detach().float().cpu().numpy().reshape(-1)

        with self._lock:
            with torch.inference_mode():
                self.model.prepare_conditionals(clip, **conditioning_arguments(self.variant, settings))
            audio = chunking.run_calls(pieces, speak, on_progress, cancel)
        audio = chunking.apply_speed(audio, request.speed)
        unused = ("ref_text",) if request.ref_text else ()  # Chatterbox clones from the audio alone
        return Speech(audio, self.sample_rate, None, len(pieces), unused)


def resolve_directory(name: str, variant: Variant) -> Path:
    """A local directory as is; a hub id through the cache, only the files the variant reads."""
    if Path(name).is_dir():
        return Path(name)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(name, allow_patterns=list(variant.files), token=os.getenv("HF_TOKEN") or None))
