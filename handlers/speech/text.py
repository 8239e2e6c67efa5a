"""Splitting long text into sentences, and sentences too long for one model call into pieces.

A TTS model reads a bounded context (Kokoro: 510 phonemes), and a whole book read in one call
would also give no progress and no cancel point. Text is split at sentence ends (``.``, ``!``,
``?``, ``…``, their CJK forms, and line breaks); a sentence still over the limit is cut at
clause punctuation, then between words, and a single over-long word is cut by length.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# A sentence runs to its end mark: . ! ? ... ; (followed by closing quotes or brackets, then a
# space or the end), or the CJK full stop, exclamation, question mark or semicolon (no space
# follows those), or the end of the line. Clause ends: , : ; dashes and the CJK comma and colon.
_CLOSERS = "\"'\u201d\u2019)\\]\u300d\u300f"
_SENTENCE = re.compile(
    f".+?(?:[.!?\u2026;]+[{_CLOSERS}]*(?=\\s|$)|[\u3002\uff01\uff1f\uff1b]+[{_CLOSERS}]*|$)", re.DOTALL
)
_CLAUSE_END = re.compile("(?<=[,:;\u2014\u2013\u3001\uff0c\uff1a])\\s+")


def sentences(text: str) -> list[str]:
    """The text's sentences, whitespace-normalised, in order, none empty."""
    found = (match.group() for line in text.splitlines() for match in _SENTENCE.finditer(line.strip()))
    return [" ".join(sentence.split()) for sentence in found if sentence.strip()]


def fit(sentence: str, fits: Callable[[str], bool]) -> list[str]:
    """``sentence`` as pieces that each satisfy ``fits``: clauses, then word groups, then slices."""
    if fits(sentence):
        return [sentence]
    for splitter in (_CLAUSE_END.split, str.split):
        parts = [part for part in splitter(sentence) if part]
        if len(parts) > 1:
            return _pack(parts, fits)
    half = max(1, len(sentence) // 2)  # one unbroken "word": cut it in halves until each fits
    return fit(sentence[:half], fits) + fit(sentence[half:], fits)


def _pack(parts: list[str], fits: Callable[[str], bool]) -> list[str]:
    pieces: list[str] = []
    current = ""
    for part in parts:
        candidate = f"{current} {part}" if current else part
        if fits(candidate):
            current = candidate
            continue
        if current:
            pieces.append(current)
        if fits(part):
            current = part
        else:
            pieces += fit(part, fits)
            current = ""
    if current:
        pieces.append(current)
    return pieces


def chunks(text: str, fits: Callable[[str], bool]) -> list[str]:
    """Consecutive sentences packed together while ``fits`` holds: few model calls, none too long."""
    pieces = [piece for sentence in sentences(text) for piece in fit(sentence, fits)]
    return _pack(pieces, fits)
