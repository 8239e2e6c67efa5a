"""app/jobs/outcome.py: a terminal status as an output or an error; the one unwrap rule."""

from __future__ import annotations

import pytest

from app import usage
from app.errors import InvalidRequest, UpstreamError, UpstreamTimeout
from app.jobs.outcome import error_body, job_error, job_output, unwrap, webhook_error_code
from app.openai.transcript_formats import render


def test_unwrap_takes_only_a_list_of_exactly_one_object() -> None:
    assert unwrap([{"a": 1}]) == {"a": 1}
    assert unwrap(["data: {}\n\n"]) == ["data: {}\n\n"]  # one stream piece stays a stream
    assert unwrap([{"a": 1}, {"b": 2}]) == [{"a": 1}, {"b": 2}]
    assert unwrap({"a": 1}) == {"a": 1}
    assert unwrap("text") == "text"


def test_every_path_unwraps_alike() -> None:
    transcript = [{"transcription": "hi", "segments": [{"start": 0, "end": 1.5, "text": "hi"}]}]
    assert render(transcript, "text")[0] == "hi"
    assert usage.audio_counts(transcript) == {"audio_ms": 1500}
    assert usage.image_counts([{"width": 2, "height": 3}], 1, {}) == {"images": 1, "pixels": 6}
    # A list of one string is not an object in any of them.
    assert usage.audio_counts(["hi"]) == {}
    with pytest.raises(UpstreamError):
        render(["hi"], "text")


def test_completed_output_and_output_shaped_errors() -> None:
    assert job_output({"status": "COMPLETED", "output": [{"data": []}]}, "j") == [{"data": []}]
    empty = job_error({"status": "COMPLETED"}, "j")
    assert isinstance(empty, UpstreamError) and empty.code == "empty_output"
    infinity = job_error({"status": "COMPLETED", "output": [{"object": "error", "message": "x", "code": 400}]}, "j")
    assert isinstance(infinity, InvalidRequest)


def test_timeout_and_cancel_codes() -> None:
    timeout = job_error({"status": "TIMED_OUT"}, "j")
    assert isinstance(timeout, UpstreamTimeout) and timeout.code == "worker_timeout"
    cancelled = job_error({"status": "CANCELLED"}, "j")
    assert isinstance(cancelled, UpstreamError) and cancelled.code == "job_cancelled"
    with pytest.raises(UpstreamTimeout):
        job_output({"status": "TIMED_OUT"}, "j")
    assert webhook_error_code(error_body(timeout)) == "WORKER_TIMEOUT"
    assert webhook_error_code(error_body(cancelled)) == "CANCELLED"


def test_failed_jobs_map_through_worker_errors() -> None:
    failed = job_error({"status": "FAILED", "error": {"error": {"type": "invalid_request_error", "message": "m",
                                                                "code": "context_length_exceeded"}}}, "j")
    assert isinstance(failed, InvalidRequest)
    assert webhook_error_code(error_body(failed)) == "CONTEXT_LENGTH_EXCEEDED"
    crashed = job_error({"status": "FAILED", "error": "boom"}, "j")
    assert crashed is not None and webhook_error_code(error_body(crashed)) == "PROCESSING_ERROR"
    assert webhook_error_code({}) == "UNKNOWN_ERROR"
