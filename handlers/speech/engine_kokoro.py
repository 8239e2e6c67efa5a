"""Kokoro-82M: StyleTTS 2 + iSTFTNet, preset voices, 24 kHz, light enough for a CPU.

Loading reads what the hub repository holds (``config.json``, the ``.pth`` weights,
``voices/<name>.pt`` style packs) from a local directory or a snapshot of the hub id, and
builds ``kokoro.KModel`` from those files. Text becomes phonemes through misaki's English
G2P when its spaCy tagger (``en_core_web_sm``) is installed, as in the image, and through
espeak-ng (the library inside the ``espeakng-loader`` wheel) otherwise and for the other
espeak languages; nothing is downloaded at run time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handlers.common.cancel import CancelToken
from handlers.common.errors import HandlerError, InvalidInput
from handlers.speech import text as splitting
from handlers.speech.chunking import choose_device, chunk_chars
from handlers.speech.engine import Speech, Synthesis

logger = logging.getLogger("handlers.speech")

SAMPLE_RATE = 24_000
MAX_PHONEMES = 510  # the ALBERT context (512) less the two boundary tokens
_HUB_FILES = ["config.json", "*.pth", "voices/*.pt"]
# Language slugs (the gateway's catalogue, Kokoro's own aliases and its one-letter codes) -> code.
LANGUAGES = {
    "en-us": "a", "en": "a", "a": "a", "en-gb": "b", "b": "b", "es": "e", "e": "e", "fr": "f", "fr-fr": "f",
    "f": "f", "hi": "h", "h": "h", "it": "i", "i": "i", "pt-br": "p", "pt": "p", "p": "p", "ja": "j", "j": "j",
    "zh": "z", "z": "z",
}  # fmt: skip
_ESPEAK = {"a": "en-us", "b": "en-gb", "e": "es", "f": "fr-fr", "h": "hi", "i": "it", "p": "pt-br"}


def _quiet_libraries() -> None:
    # kokoro logs phonemes (the text, spelled out) at DEBUG through loguru. kokoro 0.9.4
    # disables its own logger on import; disabling it (and misaki) again here keeps a library
    # release that forgets to from printing the input.
    from loguru import logger as loguru_logger

    for name in ("kokoro", "misaki"):
        loguru_logger.disable(name)


def resolve_directory(name: str) -> Path:
    """A local directory as is; a hub id through the cache (downloads only the files read)."""
    if Path(name).is_dir():
        return Path(name)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(name, allow_patterns=_HUB_FILES))


class KokoroEngine:
    sample_rate = SAMPLE_RATE
    modes = frozenset({"custom_voice"})

    def __init__(self, name: str, model: Any, voice_files: dict[str, Path], device: str) -> None:
        self.name = name
        self.model = model
        self.voice_files = voice_files
        self.device = device
        self._packs: dict[str, Any] = {}
        self._g2p: dict[str, Callable[[str], str]] = {}
        self._lock = threading.Lock()  # one model call at a time; G2P and packs are built once

    @classmethod
    def load(cls, name: str) -> KokoroEngine:
        _quiet_libraries()
        try:
            from kokoro import KModel

            directory = resolve_directory(name)
            weights = sorted(directory.glob("*.pth"))
            if not weights or not (directory / "config.json").is_file():
                raise FileNotFoundError("config.json and a .pth checkpoint are needed")
            device = choose_device()
            model = KModel(repo_id=name, config=str(directory / "config.json"), model=str(weights[0]))
            model = model.to(device).eval()
        except Exception as exc:
            raise HandlerError(
                f"Could not load speech model {name!r}: {type(exc).__name__}: {exc}", code="model_load_failed"
            ) from exc
        voices = {path.stem: path for path in sorted((directory / "voices").glob("*.pt"))}
        if not voices:
            raise HandlerError(f"Speech model {name!r} has no voices/*.pt", code="model_load_failed")
        logger.info("loaded speech model %s on %s (%d voices)", name, device, len(voices))
        return cls(name, model, voices, device)

    # --- voices and languages ----------------------------------------------------------

    @property
    def voices(self) -> list[str]:
        return list(self.voice_files)

    def default_voice(self, lang: str | None) -> str:
        configured = os.environ.get("SPEECH_DEFAULT_VOICE", "").strip()
        candidates = [v for v in self.voice_files if lang is None or v[:1] == lang]
        if configured in self.voice_files and (lang is None or configured[:1] == lang):
            return configured
        if "af_sky" in candidates:  # the catalogue's default (routing.yaml)
            return "af_sky"
        if not candidates:
            raise InvalidInput("lang", "This model has no voice for that language", code="unknown_voice")
        return candidates[0]

    def pick(self, request: Synthesis) -> tuple[str, str]:
        """(voice, language code) for a request; errors name ``voice`` or ``lang``."""
        lang = None
        if request.lang is not None:
            lang = LANGUAGES.get(request.lang.strip().lower())
            if lang is None:
                raise InvalidInput(
                    "lang", f"lang must be one of {', '.join(sorted(LANGUAGES))}", code="unknown_language"
                )
        voice = request.voice.strip() if request.voice else self.default_voice(lang)
        if voice not in self.voice_files:
            raise InvalidInput(
                "voice",
                f"voice is not one of this model's voices ({', '.join(self.voice_files)})",
                code="unknown_voice",
            )
        if lang is None:
            lang = voice[:1] if voice[:1] in _ESPEAK or voice[:1] in "jz" else "a"
        return voice, lang

    def _pack(self, voice: str) -> Any:
        import torch

        if voice not in self._packs:
            self._packs[voice] = torch.load(self.voice_files[voice], map_location=self.device, weights_only=True)
        return self._packs[voice]

    def _phonemizer(self, lang: str) -> Callable[[str], str]:
        if lang not in self._g2p:
            self._g2p[lang] = _build_g2p(lang)
        return self._g2p[lang]

    # --- synthesis ---------------------------------------------------------------------

    def plan(self, text: str, g2p: Callable[[str], str]) -> list[str]:
        """The text as phoneme strings, each one model call (at most ``MAX_PHONEMES``)."""
        phonemes: list[str] = []
        limit = chunk_chars()  # phonemes ~ characters
        for piece in splitting.chunks(text, lambda s: len(s) <= limit):
            spoken = g2p(piece)
            if len(spoken) > MAX_PHONEMES:  # dense text (numbers, abbreviations): split on phonemes
                phonemes += [g2p(part) for part in splitting.fit(piece, lambda s: len(g2p(s)) <= MAX_PHONEMES)]
            else:
                phonemes.append(spoken)
        return [p[:MAX_PHONEMES] for p in phonemes if p.strip()]

    def synthesize(self, request: Synthesis, on_progress: Callable[[float], None], cancel: CancelToken) -> Speech:
        import numpy as np
        import torch

        voice, lang = self.pick(request)
        with self._lock:
            g2p = self._phonemizer(lang)
            calls = self.plan(request.text, g2p)
            if not calls:
                raise InvalidInput("text", "text has nothing this voice can pronounce")
            pack = self._pack(voice)
            total = sum(len(p) for p in calls)
            done = 0
            audio: list[np.ndarray] = []
            for phonemes in calls:
                cancel.check()
                with torch.inference_mode():
                    out = self.model(phonemes, pack[len(phonemes) - 1], request.speed)
                audio.append(out.detach().float().cpu().numpy().reshape(-1))
                done += len(phonemes)
                on_progress(95.0 * done / total)
        return Speech(np.concatenate(audio).astype(np.float32), SAMPLE_RATE, voice, len(calls))


def _build_g2p(lang: str) -> Callable[[str], str]:
    """Text -> phoneme string for one language code, offline."""
    choice = os.environ.get("SPEECH_G2P", "auto").strip().lower() or "auto"
    if choice not in ("auto", "misaki", "espeak"):
        raise HandlerError("SPEECH_G2P must be auto, misaki or espeak", code="bad_configuration")
    if lang in "ab" and choice != "espeak" and _spacy_tagger_installed():
        from misaki import en, espeak

        fallback = espeak.EspeakFallback(british=lang == "b")
        english = en.G2P(trf=False, british=lang == "b", fallback=fallback, unk="")
        return lambda text: str(english(text)[0])
    if lang in "ab" and choice == "misaki":
        raise HandlerError("SPEECH_G2P=misaki needs the spaCy model en_core_web_sm installed", code="bad_configuration")
    if lang in _ESPEAK:
        from misaki import espeak

        backend = espeak.EspeakG2P(language=_ESPEAK[lang])
        return lambda text: str(backend(text)[0])
    try:
        if lang == "j":
            from misaki import ja

            japanese = ja.JAG2P()
            return lambda text: str(japanese(text)[0])
        from misaki import zh

        chinese = zh.ZHG2P(version=None)
        return lambda text: str(chinese(text)[0])
    except ImportError:
        raise HandlerError(
            "This worker has no G2P for that language (install misaki[ja] or misaki[zh])",
            code="language_unavailable",
            param="lang",
        ) from None


def _spacy_tagger_installed() -> bool:
    # misaki's English G2P would *download* en_core_web_sm if missing; only use it when present.
    try:
        import spacy

        return bool(spacy.util.is_package("en_core_web_sm"))
    except Exception:
        return False
