"""Models: each item is OpenAI's model object and OpenRouter's at once; a model's endpoints list
in OpenRouter's schema. Both through the SDKs, which validate what they read."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import httpx
import openai
import pytest
from openrouter import errors

from app.emulator import EmulatorEndpoint, create_emulator_app
from app.main import create_app
from app.routing.loader import parse_routing
from app.serving import server_options
from app.settings import Settings
from tests.gateway.conftest import RUNPOD_KEY, Gateway
from tests.openrouter.conftest import CHAT_MODEL, EMBED_MODEL, sdk
from tests.support.servers import ServerThread, free_port

TWO_ENDPOINTS = """
upstream: {{base_url: "{upstream}", api_key: "{key}"}}
surfaces:
  chat:
    default_model: duo
    models:
      duo:
        owned_by: acme
        name: Duo 8B
        description: A chat model two RunPod endpoints serve
        context_length: 32768
        modalities: {{input: [text, image], output: [text]}}
        supported_parameters: [temperature, max_tokens]
        endpoints:
          - {{id: ep-eu, name: eu-a100, weight: 3, region: eu, gpu: A100}}
          - {{id: ep-us}}
        pricing:
          - {{usd: 0.001, per: {{input_tokens: 1000}}}}
          - {{usd: 0.002, per: {{output_tokens: 1000}}}}
"""


@pytest.fixture(scope="module")
def duo(redis_url: str, redis_prefix: str) -> Iterator[Gateway]:
    emulator = ServerThread(create_emulator_app(
        {"ep-eu": EmulatorEndpoint(handler="tests.openrouter.shape_workers:chat")}, api_key=RUNPOD_KEY)).start()
    port = free_port()
    settings = Settings(redis_url=redis_url, redis_prefix=f"{redis_prefix}or-duo:", public_url=f"http://127.0.0.1:{port}",
                        signing_secret="s", signing_secret_is_random=False, admin_key="duo-admin")
    routing = parse_routing(textwrap.dedent(TWO_ENDPOINTS.format(upstream=f"{emulator.url}/v2", key=RUNPOD_KEY)),
                            "duo.yaml")
    app = create_app(settings, routing)
    server = ServerThread(app, port=port, **server_options(settings)).start()
    yield Gateway(server.url, settings, app, server)
    server.stop()
    emulator.stop()


def test_sdk_lists_every_shipped_model(billed: Gateway, billed_key: tuple[str, str]) -> None:
    with sdk(billed, billed_key[0]) as client:
        listed = client.models.list()
    models = {model.id: model for model in listed.result.data}
    assert len(models) == listed.result.total_count and CHAT_MODEL in models and EMBED_MODEL in models
    chat = models[CHAT_MODEL]
    assert chat.canonical_slug == f"meta-llama/{CHAT_MODEL}" and chat.name == "Llama 3 8B Instruct"
    assert chat.pricing.prompt == "0.00000005" and chat.pricing.completion == "0.00000008"
    assert chat.architecture.input_modalities == ["text"] and chat.architecture.output_modalities == ["text"]
    assert chat.context_length == 8192 and "temperature" in chat.supported_parameters
    assert chat.description and chat.links.details.endswith(f"/api/v1/models/meta-llama/{CHAT_MODEL}/endpoints")
    assert models[EMBED_MODEL].pricing.prompt == "0.000000068"
    assert models[EMBED_MODEL].architecture.output_modalities == ["embeddings"]
    assert models["Nanonets_Ocr_S_F16"].architecture.input_modalities == ["text", "image"]
    flux = models["Flux1schnell"]  # priced by pixels and steps: its reference request's price
    assert flux.pricing.request == "0.00136" and flux.architecture.output_modalities == ["image"]
    assert models["Kokoro"].supported_voices  # a speech model's voices


def test_openai_sdk_reads_the_same_list_on_both_prefixes(billed: Gateway, billed_key: tuple[str, str]) -> None:
    ids = []
    for prefix in ("/v1", "/api/v1"):
        client = openai.OpenAI(base_url=f"{billed.url}{prefix}", api_key=billed_key[0], max_retries=0)
        ids.append([model.id for model in client.models.list()])
        assert client.models.retrieve("llama3-8b").id == CHAT_MODEL  # an alias
    assert ids[0] == ids[1]


def test_model_keys_from_routing_yaml(duo: Gateway) -> None:
    with sdk(duo, "duo-admin") as client:
        [model] = client.models.list().result.data
    assert (model.name, model.context_length) == ("Duo 8B", 32768)
    assert model.description == "A chat model two RunPod endpoints serve"
    assert model.canonical_slug == "acme/duo" and model.architecture.modality == "text+image->text"
    assert model.supported_parameters == ["temperature", "max_tokens"]
    assert (model.pricing.prompt, model.pricing.completion) == ("0.000001", "0.000002")


def test_endpoints_of_a_model(duo: Gateway) -> None:
    with sdk(duo, "duo-admin") as client:
        listed = client.endpoints.list(author="acme", slug="duo").data
        any_author = client.endpoints.list(author="someone-else", slug="duo").data
        with pytest.raises(errors.NotFoundResponseError):
            client.endpoints.list(author="acme", slug="nope")
    assert listed.id == "acme/duo" and listed.name == "Duo 8B"
    assert [e.provider_name for e in listed.endpoints] == ["eu-a100", "ep-us"]
    assert listed.endpoints[0].context_length == 32768 and listed.endpoints[0].pricing.prompt == "0.000001"
    assert any_author.endpoints == listed.endpoints


def test_sdk_gets_a_model_by_author_and_slug(duo: Gateway) -> None:
    with sdk(duo, "duo-admin") as client:
        model = client.models.get(author="acme", slug="duo").data
        with pytest.raises(errors.NotFoundResponseError):
            client.models.get(author="acme", slug="nope")
    assert (model.id, model.canonical_slug, model.name) == ("duo", "acme/duo", "Duo 8B")


def test_endpoints_carry_the_gateway_fields(duo: Gateway) -> None:
    auth = {"Authorization": "Bearer duo-admin"}
    body = httpx.get(f"{duo.url}/api/v1/models/acme/duo/endpoints", headers=auth).json()
    first = body["data"]["endpoints"][0]
    assert (first["endpoint_id"], first["weight"], first["region"], first["gpu"]) == ("ep-eu", 3.0, "eu", "A100")
    # The same path shape still retrieves models (the mirror of GET /v1/models/{id}).
    model = httpx.get(f"{duo.url}/api/v1/models/duo", headers=auth).json()
    assert model["id"] == "duo" and model["object"] == "model"
