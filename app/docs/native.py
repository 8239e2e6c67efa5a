"""OpenAPI request and response bodies of the native task routes, generated from the same
msgspec Structs that validate them (``app/tasks``), so the document cannot drift from the code.

The submit handlers read their body themselves (three encodings), so Litestar cannot infer it;
``task_operation`` documents JSON, form-urlencoded and, for tasks that take files, multipart
with each file field as binary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)

from app.tasks.spec import TaskSpec

_TYPES = {t.value: t for t in OpenAPIType}
_KEYS = {
    "minimum": "minimum", "maximum": "maximum", "minLength": "min_length", "maxLength": "max_length",
    "minItems": "min_items", "maxItems": "max_items", "enum": "enum", "default": "default",
    "description": "description", "title": "title", "format": "format", "const": "const",
}


def _schema(node: dict[str, Any], defs: dict[str, Any]) -> Schema:
    """A JSON-schema node (msgspec's dialect) as Litestar's ``Schema``, ``$ref``s inlined."""
    if "$ref" in node:
        return _schema(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    fields: dict[str, Any] = {attr: node[key] for key, attr in _KEYS.items() if key in node}
    if "type" in node:
        fields["type"] = _TYPES[node["type"]]
    if "anyOf" in node:
        options = [option for option in node["anyOf"] if option.get("type") != "null"]
        if len(options) == 1:  # "X or absent": the field is optional, not nullable
            return _schema({**options[0], **{k: v for k, v in node.items() if k != "anyOf"}}, defs)
        fields["any_of"] = [_schema(option, defs) for option in options]
    if "properties" in node:
        fields["properties"] = {name: _schema(sub, defs) for name, sub in node["properties"].items()}
        fields["required"] = node.get("required") or None
    if "items" in node:
        fields["items"] = _schema(node["items"], defs)
    return Schema(**fields)


def params_schema(spec: TaskSpec) -> Schema:
    raw = msgspec.json.schema(spec.params)
    return _schema(raw, raw.get("$defs", {}))


def _with_files(base: Schema, spec: TaskSpec) -> Schema:
    properties = dict(base.properties or {})
    required = list(base.required or [])
    for rule in spec.files:
        binary = Schema(type=OpenAPIType.STRING, format="binary",  # type: ignore[arg-type]
                        description=f"{', '.join(sorted(rule.formats))}; at most {rule.max_bytes // 1048576} MB")
        name = f"{rule.name}[]" if rule.many > 1 else rule.name
        properties[name] = Schema(type=OpenAPIType.ARRAY, items=binary) if rule.many > 1 else binary
        if rule.required:
            required.append(name)
    return Schema(type=OpenAPIType.OBJECT, properties=properties, required=required or None)


_ACCEPTED = Schema(
    type=OpenAPIType.OBJECT,
    required=["data"],
    properties={"data": Schema(type=OpenAPIType.OBJECT, required=["request_id"],
                               properties={"request_id": Schema(type=OpenAPIType.STRING)})},
)
ENVELOPE = Schema(
    type=OpenAPIType.OBJECT,
    required=["data", "message", "errors", "statusCode"],
    properties={
        "data": Schema(type=OpenAPIType.NULL),
        "message": Schema(type=OpenAPIType.STRING),
        "errors": Schema(type=OpenAPIType.ARRAY, items=Schema(
            type=OpenAPIType.OBJECT, required=["field", "messages"],
            properties={"field": Schema(type=OpenAPIType.STRING),
                        "messages": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.STRING))})),
        "statusCode": Schema(type=OpenAPIType.INTEGER),
    },
)


def error_responses() -> dict[str, OpenAPIResponse]:
    content = {"application/json": OpenAPIMediaType(schema=ENVELOPE)}
    return {
        str(status): OpenAPIResponse(description=description, content=content)
        for status, description in (
            (401, "Unauthorized user."),
            (404, "Request not found."),
            (422, "Validation failed: one entry per bad field"),
            (429, "Too Many Attempts. (Retry-After, X-RateLimit-Type)"),
            (502, "The worker or RunPod failed"),
        )
    }


def task_operation(spec: TaskSpec) -> type[Operation]:
    """An Operation class documenting ``spec``'s body in every encoding and its answers."""
    schema = params_schema(spec)
    content = {
        "application/json": OpenAPIMediaType(schema=schema),
        "application/x-www-form-urlencoded": OpenAPIMediaType(schema=schema),
    }
    if spec.files:
        content["multipart/form-data"] = OpenAPIMediaType(schema=_with_files(schema, spec))
    body = RequestBody(content=content, required=True)
    responses: dict[str, OpenAPIResponse | Reference] = {
        "200": OpenAPIResponse(description="Queued", content={"application/json": OpenAPIMediaType(schema=_ACCEPTED)}),
        **error_responses(),
    }

    @dataclass
    class _TaskOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = body
            self.responses = responses

    return _TaskOperation
