"""Turning faster-whisper segments into the worker-faster_whisper output fields.

Times are clamped to the audio's duration: a model can place a closing timestamp a little
past the end of the audio, and a client's subtitle player should never see that.
"""

from __future__ import annotations

from typing import Any

from handlers.transcribe.schema import TextFormat


def _seconds(value: float, duration: float) -> float:
    return round(min(max(float(value), 0.0), duration), 3)


def segment_dicts(segments: list[Any], duration: float) -> list[dict[str, Any]]:
    return [
        {
            "id": int(s.id),
            "seek": int(s.seek),
            "start": _seconds(s.start, duration),
            "end": _seconds(s.end, duration),
            "text": str(s.text),
            "tokens": [int(t) for t in s.tokens],
            "temperature": float(s.temperature or 0.0),
            "avg_logprob": float(s.avg_logprob),
            "compression_ratio": float(s.compression_ratio),
            "no_speech_prob": float(s.no_speech_prob),
        }
        for s in segments
    ]


def word_dicts(segments: list[Any], duration: float) -> list[dict[str, Any]]:
    return [
        {"word": str(w.word), "start": _seconds(w.start, duration), "end": _seconds(w.end, duration)}
        for s in segments
        for w in (s.words or [])
    ]


def _clock(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cue_text(text: str) -> str:
    return text.strip().replace("-->", "->")  # "-->" would end the cue's timing line


def render_text(segments: list[dict[str, Any]], fmt: TextFormat, *, include_ts: bool = False) -> str:
    """The stock worker's `transcription` string formats; ``include_ts`` turns plain_text into
    one ``[00:00:01.000 --> 00:00:04.200] text`` line per segment (srt/vtt carry times anyway)."""
    if fmt == "plain_text" and include_ts:
        return "\n".join(
            f"[{_clock(s['start'], '.')} --> {_clock(s['end'], '.')}] {s['text'].strip()}" for s in segments
        )
    if fmt == "plain_text":
        return " ".join(s["text"].strip() for s in segments)
    if fmt == "formatted_text":
        return "\n".join(s["text"].strip() for s in segments)
    if fmt == "srt":
        return "".join(
            f"{i}\n{_clock(s['start'], ',')} --> {_clock(s['end'], ',')}\n{_cue_text(s['text'])}\n\n"
            for i, s in enumerate(segments, start=1)
        )
    return "WEBVTT\n\n" + "".join(
        f"{_clock(s['start'], '.')} --> {_clock(s['end'], '.')}\n{_cue_text(s['text'])}\n\n" for s in segments
    )
