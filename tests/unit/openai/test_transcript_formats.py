"""app/openai/transcript_formats.py: a faster-whisper output rendered as OpenAI's formats."""

from __future__ import annotations

from typing import Any

from app.openai.transcript_formats import to_srt, to_verbose, to_vtt, transcript_text

OUTPUT: dict[str, Any] = {
    "detected_language": "en",
    "segments": [
        {"id": 0, "seek": 0, "start": 0.0, "end": 1.5004, "text": " Hello there.", "tokens": [1, 2],
         "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.1, "no_speech_prob": 0.01, "words": []},
        {"id": 1, "seek": 150, "start": 3661.25, "end": 3662.0, "text": " Bye. "},
        "not a segment",
    ],
    "word_timestamps": [{"word": "Hello", "start": 0.0, "end": 0.4, "probability": 0.9}, "junk"],
}


def test_text_prefers_the_workers_transcription() -> None:
    assert transcript_text({"transcription": "  Whole text. ", "segments": [{"text": "other"}]}) == "Whole text."
    assert transcript_text(OUTPUT) == "Hello there. Bye."
    assert transcript_text({}) == ""
    assert transcript_text({"segments": None}) == ""


def test_srt_numbers_cues_from_one_with_comma_milliseconds() -> None:
    assert to_srt(OUTPUT) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n"
        "\n"
        "2\n01:01:01,250 --> 01:01:02,000\nBye.\n"
    )
    assert to_srt({}) == ""


def test_vtt_has_its_header_and_dot_milliseconds() -> None:
    assert to_vtt(OUTPUT) == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:01.500\nHello there.\n"
        "\n"
        "01:01:01.250 --> 01:01:02.000\nBye.\n"
    )
    assert to_vtt({}) == "WEBVTT\n\n"


def test_clock_values_round_to_the_millisecond_and_never_go_negative() -> None:
    assert to_srt({"segments": [{"start": -1, "end": 0.0005, "text": "x"}]}).splitlines()[1] == (
        "00:00:00,000 --> 00:00:00,000"
    )
    assert to_srt({"segments": [{"start": 59.9996, "end": 60, "text": "x"}]}).splitlines()[1] == (
        "00:01:00,000 --> 00:01:00,000"
    )


def test_verbose_json_keeps_openais_segment_keys_only() -> None:
    body = to_verbose(OUTPUT, words=False)
    assert body["task"] == "transcribe" and body["language"] == "en"
    assert body["duration"] == 3662.0
    assert body["text"] == "Hello there. Bye."
    assert body["segments"][0] == {k: v for k, v in OUTPUT["segments"][0].items() if k != "words"}
    assert body["segments"][1] == {"id": 1, "seek": 150, "start": 3661.25, "end": 3662.0, "text": " Bye. "}
    assert "words" not in body


def test_verbose_json_words_when_asked() -> None:
    body = to_verbose(OUTPUT, words=True)
    assert body["words"] == [{"word": "Hello", "start": 0.0, "end": 0.4}]
    assert to_verbose({"language": "fr"}, words=True) == {
        "task": "transcribe", "language": "fr", "duration": 0.0, "text": "", "segments": [], "words": [],
    }
