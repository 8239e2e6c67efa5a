"""app/openai/handler_fields.py: only known keys, renamed, plus a route's pass_through reach a worker."""

from __future__ import annotations

from app.jobs.runner import client_param
from app.openai.handler_fields import IMAGES_FIELDS, TRANSCRIBE_FIELDS, handler_input
from app.routing import parse_routing, resolve
from app.routing.resolver import Route

ROUTING = """
upstream: {api_key: k}
surfaces:
  images:
    models:
      sd: {endpoint_id: e, upstream_model: org/sd, pass_through: [output_format, webhook_url, style]}
      plain: {endpoint_id: e}
  transcribe:
    models: {whisper: {endpoint_id: e, upstream_model: large-v3}}
"""


def _route(surface: str, model: str) -> Route:
    return resolve(parse_routing(ROUTING, env={}).config, surface, model)  # type: ignore[arg-type]


def test_images_fields_are_renamed_and_unset_ones_dropped() -> None:
    body = {"prompt": "fox", "n": 2, "steps": 4, "seed": None, "size": "512x512", "user": "u1", "quality": "hd"}
    assert handler_input(IMAGES_FIELDS, body, _route("images", "plain")) == {
        "model": "plain",  # no upstream_model: the slug
        "prompt": "fox",
        "num_images": 2,
        "num_inference_steps": 4,
    }


def test_pass_through_keys_are_copied_but_never_webhook_url() -> None:
    body = {"prompt": "fox", "output_format": "webp", "style": None, "webhook_url": "https://h.example/x"}
    assert handler_input(IMAGES_FIELDS, body, _route("images", "sd")) == {
        "model": "org/sd",
        "prompt": "fox",
        "output_format": "webp",
        "style": None,  # present in the request: passed as sent
    }


def test_transcribe_fields() -> None:
    body = {"prompt": "names: Zoë", "language": "de", "temperature": 0.0, "response_format": "srt"}
    assert handler_input(TRANSCRIBE_FIELDS, body, _route("transcribe", "whisper")) == {
        "model": "large-v3",
        "initial_prompt": "names: Zoë",
        "language": "de",
        "temperature": 0.0,  # falsy but set
    }


def test_a_workers_complaint_is_named_in_the_clients_terms() -> None:
    assert client_param(IMAGES_FIELDS, "num_images") == "n"
    assert client_param(IMAGES_FIELDS, "num_inference_steps") == "steps"
    assert client_param(IMAGES_FIELDS, "width") == client_param(IMAGES_FIELDS, "height") == "size"
    assert client_param(TRANSCRIBE_FIELDS, "initial_prompt") == "prompt"
    assert client_param(IMAGES_FIELDS, "output_format") == "output_format"  # pass-through: same name
    assert client_param(IMAGES_FIELDS, None) is None
