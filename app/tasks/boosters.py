"""Prompt boosters: a chat model rewrites a prompt for a generation task (reference §5).

Each booster is a system prompt; the model is asked for JSON (``response_format:
json_object``) and a plain-text answer still counts, as the prompt with an empty negative
prompt. The chat surface's default model answers; with an image attached, a model that
serves ``img2txt`` (it can see) is preferred.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

_JSON_RULE = (
    " Answer with a JSON object only: {\"prompt\": \"...\", \"negative_prompt\": \"...\"}."
    " Keep the user's subject and intent; add concrete detail, style, lighting and composition."
)
SYSTEM_PROMPTS = {
    "image": "You improve prompts for text-to-image models." + _JSON_RULE,
    "video": "You improve prompts for text-to-video and image-to-video models: describe motion, camera and"
    " pacing. If an image is given, the prompt animates it." + _JSON_RULE,
    "image2image": "You improve instructions for image-editing models: say precisely what to change in the given"
    " image and what to keep." + _JSON_RULE,
    "speech": "You prepare text for text-to-speech: fix punctuation for natural pauses, spell out numbers and"
    " abbreviations as spoken, keep the meaning and language. Answer with a JSON object only:"
    " {\"prompt\": \"...\"}.",
}
SAMPLE_KINDS = {
    "text2image": "text2image",
    "image": "text2image",
    "text2speech": "text2speech",
    "speech": "text2speech",
}
SAMPLE_SYSTEM = (
    "You write one creative, concrete sample prompt for a {kind} model{topic}{lang}. Answer with a JSON object"
    " only: {{\"prompt\": \"...\"}}."
)
MAX_TOKENS = 600

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


class BoosterParams(msgspec.Struct, kw_only=True):
    prompt: Text
    negative_prompt: Annotated[str, msgspec.Meta(max_length=4000)] | None = None
    lang_code: Annotated[str, msgspec.Meta(max_length=16)] | None = None


class SampleParams(msgspec.Struct, kw_only=True):
    type: Literal["text2image", "text2speech", "image", "speech"]
    topic: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    lang_code: Annotated[str, msgspec.Meta(max_length=16)] | None = None


def booster_messages(kind: str, params: BoosterParams, image_url: str | None) -> list[dict[str, Any]]:
    text = params.prompt
    if params.negative_prompt:
        text += f"\nNegative prompt so far: {params.negative_prompt}"
    if params.lang_code:
        text += f"\nLanguage: {params.lang_code}"
    content: Any = text
    if image_url is not None:
        content = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": image_url}}]
    return [{"role": "system", "content": SYSTEM_PROMPTS[kind]}, {"role": "user", "content": content}]


def sample_messages(params: SampleParams) -> list[dict[str, Any]]:
    kind = "text-to-image" if SAMPLE_KINDS[params.type] == "text2image" else "text-to-speech"
    topic = f" about {params.topic!r}" if params.topic else ""
    lang = f", written in the language {params.lang_code!r}" if params.lang_code else ""
    system = SAMPLE_SYSTEM.format(kind=kind, topic=topic, lang=lang)
    return [{"role": "system", "content": system}, {"role": "user", "content": "Write the sample prompt."}]


def parse_answer(text: str) -> dict[str, str | None]:
    """``{"prompt", "negative_prompt"}`` from the model's answer: its JSON, else the text itself."""
    stripped = text.strip()
    if stripped.startswith("```"):  # some models fence their JSON
        stripped = stripped.strip("`").removeprefix("json").strip()
    try:
        decoded = msgspec.json.decode(stripped)
    except msgspec.DecodeError:
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("prompt"), str) and decoded["prompt"].strip():
        negative = decoded.get("negative_prompt")
        return {"prompt": decoded["prompt"].strip(), "negative_prompt": negative if isinstance(negative, str) else ""}
    return {"prompt": text.strip(), "negative_prompt": ""}
