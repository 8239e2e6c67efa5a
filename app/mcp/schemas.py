"""Each tool's name, description and JSON input schema.

A task tool's schema is generated from the very msgspec Struct that validates the native route
(``TaskSpec.params``), plus its file fields as strings (a URL, a data URI or base64), so the
route and the tool cannot drift. Fields an agent has no use for (the tool itself waits for the
job) are left out.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from app.native.price import PRICE_SPECS
from app.tasks.registry import TASKS
from app.tasks.spec import TaskSpec

# Tool name -> native task, as the seeds' MCP server names them (reference §10.2).
TASK_TOOLS: dict[str, str] = {
    "text_to_image": "txt2img",
    "image_to_image": "img2img",
    "image_remove_background": "img-rmbg",
    "image_upscale": "img-upscale",
    "image_to_text": "img2txt",
    "text_to_audio": "txt2audio",
    "text_to_music": "txt2music",
    "text_to_video": "txt2video",
    "image_to_video": "img2video",
    "audio_to_video": "aud2video",
    "video_url_transcription": "vid2txt",
    "audio_url_transcription": "aud2txt",
    "video_file_transcription": "videofile2txt",
    "audio_transcription": "audiofile2txt",
    "text_to_embedding": "txt2embedding",
}
PRICE_TOOLS: dict[str, str] = {f"{tool}_price": task for tool, task in TASK_TOOLS.items()}
assert set(TASK_TOOLS.values()) == TASKS.keys(), "every native task is a tool"

_HIDDEN = frozenset({"webhook_url", "return_result_in_response"})
_FILE_HELP = "A file: an http(s) URL the gateway fetches, a data: URI, or base64 content."


def _file_property(many: int) -> dict[str, Any]:
    single: dict[str, Any] = {"type": "string", "minLength": 1, "description": _FILE_HELP}
    if many == 1:
        return single
    return {"type": "array", "items": single, "minItems": 1, "maxItems": many, "description": _FILE_HELP}


@functools.cache
def input_schema(spec: TaskSpec) -> dict[str, Any]:
    """``spec.params`` as a JSON Schema object (its nested Structs under ``$defs``), plus the
    task's files."""
    (ref,), components = msgspec.json.schema_components([spec.params], ref_template="#/$defs/{name}")
    name = ref["$ref"].rsplit("/", 1)[-1]
    schema: dict[str, Any] = dict(components.pop(name))
    schema.pop("title", None)
    properties = {k: v for k, v in schema.get("properties", {}).items() if k not in _HIDDEN}
    required = [k for k in schema.get("required", []) if k not in _HIDDEN]
    for rule in spec.files:
        properties[rule.name] = _file_property(rule.many)
        if rule.required:
            required.append(rule.name)
    schema |= {"type": "object", "properties": properties, "required": required}
    if components:
        schema["$defs"] = components
    return schema


def task_description(tool: str, spec: TaskSpec, models: list[str]) -> str:
    available = ", ".join(models) if models else "none configured"
    return (f"Runs the {spec.name} task and waits for its result (a file link or text). "
            f"Models ({spec.inference_type}): {available}. If it takes too long the answer holds a "
            "request id: call check_job_status with it.")


def price_description(spec: TaskSpec) -> str:
    return (f"What a {spec.name} job with these arguments costs, in USD (the amount its tool holds from "
            "the balance). Files are optional where sizes or durations stand in for them.")


def price_schema(task: str) -> dict[str, Any]:
    return input_schema(PRICE_SPECS[task])


UTILITY_SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {
    "get_balance": ("The API key's balance in USD.", {"type": "object", "properties": {}}),
    "get_available_models": (
        "Every model with the tasks (inference_types) it serves, its limits, defaults, LoRAs and voices.",
        {"type": "object", "properties": {}},
    ),
    "check_job_status": (
        "A job's status (pending, processing, done, error), progress, and its result_url or result once done.",
        {"type": "object", "properties": {"job_id": {"type": "string", "minLength": 1, "maxLength": 200}},
         "required": ["job_id"]},
    ),
}
