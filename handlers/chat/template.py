"""Chat templates rendered so that only the template can write control tokens.

Shared by both engines: the prompt's token ids come from here, so ``usage.prompt_tokens``
is counted the same way whichever engine generates.
"""

from __future__ import annotations

import json
import re
from typing import Any

from handlers.common.errors import HandlerError, InvalidInput


def chat_template_ids(
    tokenizer: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> list[int]:
    """Token ids of ``messages`` rendered with the tokenizer's chat template.

    Only the template's own text may produce control tokens: message text is tokenized with
    special tokens split into plain text, so a user writing ``<|im_end|>`` or ``<|eot_id|>``
    cannot end a turn or forge a system message. The template renders placeholders (keeping
    the text's outer whitespace, so a template that trims still trims), and each placeholder
    is replaced by its text's ids. The template supplies BOS itself.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise HandlerError(
            "this model has no chat template; use /v1/completions with a prompt",
            code="no_chat_template",
        )
    from jinja2 import TemplateError

    texts: dict[str, str] = {}

    def mask(value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            return value
        mark = f"{_MARK}{len(texts)}{_MARK}"
        texts[mark] = value.strip()
        core_start = len(value) - len(value.lstrip())
        return value[:core_start] + mark + value[core_start + len(texts[mark]) :]

    masked: list[dict[str, Any]] = []
    for message in messages:
        copy_ = dict(message)
        for key in ("content", "name"):
            if key in copy_:
                copy_[key] = mask(copy_[key])
        if isinstance(copy_.get("content"), list):
            copy_["content"] = [
                {**part, "text": mask(part["text"])} if part.get("type") == "text" else part
                for part in copy_["content"]
            ]
        masked.append(copy_)
    # Tool definitions and call arguments go through the template's own JSON rendering; a
    # control token inside them is refused (check_control_tokens) instead of masked.
    extra: dict[str, Any] = {"tools": tools} if tools else {}
    try:
        text = str(tokenizer.apply_chat_template(masked, tokenize=False, add_generation_prompt=True, **extra))
    except TemplateError as exc:
        # Templates reject what the model cannot take (e.g. a system role); say what they said.
        raise InvalidInput("messages", f"the model's chat template rejected the messages: {exc}") from None
    ids: list[int] = []
    for piece in _MARKS.split(text):
        if piece in texts:
            ids += tokenizer(texts[piece], add_special_tokens=False, split_special_tokens=True)["input_ids"]
        elif piece:
            ids += tokenizer(piece, add_special_tokens=False)["input_ids"]
    return ids


# A private-use character, in no special token. Client text never reaches the rendered template
# (only marks do), so a mark typed by a client cannot pull in anything but plain text.
_MARK = "\ue000"
_MARKS = re.compile(f"({_MARK}\\d+{_MARK})")


def check_control_tokens(tokenizer: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> None:
    """Refuse tool definitions or call arguments that spell a control token (``<|im_end|>``):
    the template renders them as JSON, where masking cannot reach, so they are checked."""
    specials = [token for token in getattr(tokenizer, "all_special_tokens", []) if len(token) > 1]
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    specials += [str(token) for token in added.values() if getattr(token, "special", False)]
    if not specials:
        return
    places: list[tuple[str, Any]] = [(f"tools.{i}", tool) for i, tool in enumerate(tools or [])]
    for i, message in enumerate(messages):
        for j, call in enumerate(message.get("tool_calls") or []):
            places.append((f"messages.{i}.tool_calls.{j}", call))
    for param, value in places:
        text = json.dumps(value, ensure_ascii=False)
        if any(token in text for token in specials):
            raise InvalidInput(param, f"{param} contains a reserved control token of this model")
