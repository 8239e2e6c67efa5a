"""app/jobs/chat_assembly.py: streamed pieces folded into one chat.completion, within a bound."""

from __future__ import annotations

import json

import pytest

from app.jobs.chat_assembly import OutputTooLarge, assemble_chat


def _event(delta: dict[str, object], index: int = 0, finish: str | None = None) -> str:
    chunk = {"id": "c1", "created": 7, "object": "chat.completion.chunk",
             "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk)}\n\n"


def test_pieces_cut_anywhere_fold_into_one_completion() -> None:
    stream = (_event({"role": "assistant", "content": ""}) + _event({"content": "héllo "}) + _event({"content": "x"}, 1)
              + _event({"content": "world"}) + _event({}, finish="stop")
              + 'data: {"choices": [], "usage": {"prompt_tokens": 1}}\n\ndata: [DONE]\n\n')
    pieces = [stream[i : i + 5] for i in range(0, len(stream), 5)]
    body = assemble_chat(pieces, "public", max_bytes=10_000)
    assert (body["id"], body["created"], body["model"]) == ("c1", 7, "public")
    assert [c["message"]["content"] for c in body["choices"]] == ["héllo world", "x"]
    assert body["choices"][0]["finish_reason"] == "stop" and body["usage"] == {"prompt_tokens": 1}


def test_chunk_objects_are_folded_too() -> None:
    chunks = [json.loads(_event({"content": "a"})[6:]), json.loads(_event({"content": "b"})[6:])]
    assert assemble_chat(chunks, "m", max_bytes=10_000)["choices"][0]["message"]["content"] == "ab"


def test_past_the_bound_it_fails_rather_than_truncates() -> None:
    pieces = [_event({"content": "x" * 100})] * 20
    with pytest.raises(OutputTooLarge) as raised:
        assemble_chat(pieces, "m", max_bytes=1_000)
    assert raised.value.code == "output_too_large" and raised.value.status_code == 502
