"""Tool calling and structured outputs: what the client asked for, and reading it back.

Both engines share this: the request's ``tools`` / ``tool_choice`` become a ``ToolPlan``
(tools for the chat template, and for ``required`` or a named function a JSON schema the
output is constrained to); ``response_format`` becomes an ``OutputFormat`` (a JSON schema,
or any JSON object). After generation ``read_tool_calls`` turns the model's text into
OpenAI ``tool_calls``: constrained output is the call itself; with ``auto`` the model's own
format is parsed with the parser ``CHAT_TOOL_PARSER`` names (``hermes``: Qwen2.5, Hermes,
``<tool_call>{...}</tool_call>``; ``llama3_json``: Llama 3.1+, a bare ``{"name", "parameters"}``).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from handlers.common.errors import InvalidInput

if TYPE_CHECKING:
    from handlers.chat.schema import NamedToolChoice, ResponseFormat, Tool

ToolMode = Literal["none", "auto", "required", "named"]
PARSERS = ("hermes", "llama3_json", "none")
_ANY_OBJECT: dict[str, Any] = {"type": "object"}


@dataclass(frozen=True)
class ToolPlan:
    tools: list[dict[str, Any]]  # as chat templates take them
    mode: ToolMode
    name: str | None = None  # the function tool_choice names

    @property
    def active(self) -> bool:
        return self.mode != "none"

    def schema(self) -> dict[str, Any] | None:
        """The output schema when a call is forced: one ``{"name", "arguments"}`` object."""
        if self.mode not in ("required", "named"):
            return None
        options = [
            {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "enum": [tool["function"]["name"]]},
                    "arguments": tool["function"].get("parameters") or _ANY_OBJECT,
                },
                "required": ["name", "arguments"],
            }
            for tool in self.tools
            if self.mode == "required" or tool["function"]["name"] == self.name
        ]
        return options[0] if len(options) == 1 else {"anyOf": options}


@dataclass(frozen=True)
class OutputFormat:
    kind: Literal["json_object", "json_schema"]
    schema: dict[str, Any] | None = None  # None: any JSON object


def tool_plan(tools: list[Tool] | None, choice: str | NamedToolChoice | None) -> ToolPlan | None:
    if not tools:
        if choice is not None and choice != "none":
            raise InvalidInput("tool_choice", "tool_choice needs `tools`")
        return None
    rendered: list[dict[str, Any]] = []
    for tool in tools:
        function: dict[str, Any] = {"name": tool.function.name, "parameters": tool.function.parameters or _ANY_OBJECT}
        if tool.function.description is not None:
            function["description"] = tool.function.description
        rendered.append({"type": "function", "function": function})
    if choice is None or isinstance(choice, str):
        return ToolPlan(rendered, choice or "auto")  # type: ignore[arg-type]
    names = {tool.function.name for tool in tools}
    if choice.function.name not in names:
        raise InvalidInput("tool_choice.function.name", "tool_choice names a function that is not in `tools`")
    return ToolPlan(rendered, "named", choice.function.name)


def output_format(response_format: ResponseFormat | None) -> OutputFormat | None:
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return OutputFormat("json_object")
    if response_format.type != "json_schema":
        raise InvalidInput(
            "response_format.type",
            f"response_format type {response_format.type!r} is not supported; use text, json_object or json_schema",
            code="unsupported_parameter",
        )
    spec = response_format.json_schema
    if spec is None or spec.schema is None:
        raise InvalidInput("response_format.json_schema.schema", "json_schema needs `json_schema.schema`")
    check_schema(spec.schema, "response_format.json_schema.schema")
    return OutputFormat("json_schema", spec.schema)


def check_schema(schema: dict[str, Any], param: str) -> None:
    """Refuse a schema that is not valid JSON Schema, naming the field."""
    try:
        from jsonschema import SchemaError
        from jsonschema.validators import validator_for
    except ImportError:  # the GPU image: vLLM's own grammar compiler judges the schema
        return
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise InvalidInput(param, f"not a valid JSON schema: {exc.message}", code="invalid_schema") from None


# --- reading tool calls back --------------------------------------------------------------


def call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def openai_call(name: str, arguments: Any) -> dict[str, Any]:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return {"id": call_id(), "type": "function", "function": {"name": name, "arguments": text}}


_HERMES = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def read_tool_calls(text: str, plan: ToolPlan, parser: str) -> tuple[str | None, list[dict[str, Any]]]:
    """(content, tool_calls) from a finished choice's text; no calls leaves the text as content."""
    names = {tool["function"]["name"] for tool in plan.tools}
    if plan.mode in ("required", "named"):
        call = _as_call(text, names)
        return (None, [call]) if call else (text, [])
    calls: list[dict[str, Any]] = []
    if parser == "hermes" and "<tool_call>" in text:
        head = text[: text.index("<tool_call>")]
        for match in _HERMES.finditer(text):
            call = _as_call(match.group(1), names)
            if call is None:
                return text, []  # a malformed call is shown as text, never half-parsed
            calls.append(call)
        return (head.strip() or None), calls
    if parser == "llama3_json":
        body = text.strip().removeprefix("<|python_tag|>").strip()
        if body.startswith("{"):
            for piece in body.split(";"):
                call = _as_call(piece, names)
                if call is None:
                    return text, []
                calls.append(call)
            return None, calls
    return text, []


def _as_call(raw: str, names: set[str]) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("name") not in names:
        return None
    arguments = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):  # some models write the arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return openai_call(str(data["name"]), arguments)
