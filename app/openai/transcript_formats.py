"""Rendering a faster-whisper style output as OpenAI's transcription response formats."""

from __future__ import annotations

from typing import Any

from app.errors import UpstreamError
from app.jobs.outcome import unwrap

FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
_SEGMENT_KEYS = ("id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob",
                 "compression_ratio", "no_speech_prob")


def _transcript(output: Any) -> dict[str, Any]:
    output = unwrap(output)
    if not isinstance(output, dict):
        raise UpstreamError("The worker's transcription output is not an object", code="upstream_bad_response")
    return output


def _segments(output: dict[str, Any]) -> list[dict[str, Any]]:
    segments = output.get("segments") or []
    return [s for s in segments if isinstance(s, dict)]


def transcript_text(output: dict[str, Any]) -> str:
    text = output.get("transcription")
    if isinstance(text, str):
        return text.strip()
    return "".join(str(s.get("text", "")) for s in _segments(output)).strip()


def _clock(seconds: float, separator: str) -> str:
    millis = max(0, round(float(seconds) * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(output: dict[str, Any]) -> str:
    cues = [
        f"{i}\n{_clock(s.get('start', 0), ',')} --> {_clock(s.get('end', 0), ',')}\n{str(s.get('text', '')).strip()}\n"
        for i, s in enumerate(_segments(output), start=1)
    ]
    return "\n".join(cues)


def to_vtt(output: dict[str, Any]) -> str:
    cues = [
        f"{_clock(s.get('start', 0), '.')} --> {_clock(s.get('end', 0), '.')}\n{str(s.get('text', '')).strip()}\n"
        for s in _segments(output)
    ]
    return "WEBVTT\n\n" + "\n".join(cues)


def to_verbose(output: dict[str, Any], *, words: bool) -> dict[str, Any]:
    segments = [{k: s[k] for k in _SEGMENT_KEYS if k in s} for s in _segments(output)]
    duration = max((float(s.get("end", 0)) for s in segments), default=0.0)
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": output.get("detected_language") or output.get("language") or "",
        "duration": duration,
        "text": transcript_text(output),
        "segments": segments,
    }
    if words:
        raw_words = output.get("word_timestamps") or []
        body["words"] = [
            {"word": w.get("word", ""), "start": w.get("start", 0), "end": w.get("end", 0)}
            for w in raw_words
            if isinstance(w, dict)
        ]
    return body


def render(output: Any, response_format: str, *, words: bool = False) -> tuple[Any, str]:
    """(content, media type) for ``response_format``; JSON formats return a dict."""
    data = _transcript(output)
    if response_format == "text":
        return transcript_text(data), "text/plain; charset=utf-8"
    if response_format == "srt":
        return to_srt(data), "text/plain; charset=utf-8"
    if response_format == "vtt":
        return to_vtt(data), "text/vtt; charset=utf-8"
    if response_format == "verbose_json":
        return to_verbose(data, words=words), "application/json"
    return {"text": transcript_text(data)}, "application/json"
