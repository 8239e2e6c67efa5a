"""Client messages turned into what chat templates expect, images collected on the way.

Text parts of a message are joined by newlines; a message with images keeps a part list in
which each ``image_url`` part becomes ``{"type": "image"}`` (what vision templates render as
their image placeholder) and its URL goes to the job's image list, fetched later through the
media helper. Assistant tool calls carry their arguments as objects, as templates render
them (``tojson``). OpenAI's newer role names map onto the classic ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from handlers.common.errors import InvalidInput

if TYPE_CHECKING:
    from handlers.chat.schema import ContentPart, Message

_TEMPLATE_ROLE = {"developer": "system", "function": "tool"}


@dataclass(frozen=True)
class ImageRef:
    """An image part: where it sits in the request (for errors) and its URL or data URI."""

    param: str
    url: str


def template_messages(messages: list[Message]) -> tuple[list[dict[str, Any]], list[ImageRef]]:
    out: list[dict[str, Any]] = []
    images: list[ImageRef] = []
    for i, message in enumerate(messages):
        content: Any = message.content
        if isinstance(content, list):
            content = _parts(content, f"messages.{i}.content", images)
        item: dict[str, Any] = {"role": _TEMPLATE_ROLE.get(message.role, message.role), "content": content or ""}
        if message.name is not None:
            item["name"] = message.name
        if message.tool_call_id is not None:
            item["tool_call_id"] = message.tool_call_id
        if message.tool_calls:
            item["tool_calls"] = [
                {
                    "id": call.id or f"call_{i}_{j}",
                    "type": "function",
                    "function": {
                        "name": call.function.name,
                        "arguments": _arguments(call.function.arguments, f"messages.{i}.tool_calls.{j}"),
                    },
                }
                for j, call in enumerate(message.tool_calls)
            ]
        out.append(item)
    return out, images


def _parts(parts: list[ContentPart], param: str, images: list[ImageRef]) -> str | list[dict[str, Any]]:
    texts: list[str] = []
    rendered: list[dict[str, Any]] = []
    for j, part in enumerate(parts):
        where = f"{param}.{j}"
        if part.type == "text":
            if part.text is None:
                raise InvalidInput(f"{where}.text", "a text part needs `text`")
            texts.append(part.text)
            rendered.append({"type": "text", "text": part.text})
        elif part.type == "image_url":
            url = part.image_url if isinstance(part.image_url, str) else part.image_url.url if part.image_url else None
            if not url:
                raise InvalidInput(f"{where}.image_url.url", "an image_url part needs `image_url.url`")
            images.append(ImageRef(f"{where}.image_url.url", url))
            rendered.append({"type": "image"})
        else:
            raise InvalidInput(
                f"{where}.type",
                f"content parts of type {part.type!r} are not supported; this worker reads text and image_url parts",
                code="unsupported_content",
            )
    if len(rendered) == len(texts):  # text only: one string, as text-only templates expect
        return "\n".join(texts)
    return rendered


def _arguments(raw: str, param: str) -> Any:
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise InvalidInput(f"{param}.function.arguments", "tool call arguments must be a JSON string") from None
