"""Complete response objects: whatever a worker returned, what leaves is whole against OpenAI's
and OpenRouter's published schemas (both SDKs validate: OpenRouter's strictly).

One step per surface, on the dict the route already decoded: required keys filled where the
worker left them out (``id``, ``object``, ``created``, ``system_fingerprint: null``, every choice's
``index``/``finish_reason``/``logprobs``, ``usage`` with its token fields), ``model`` set to the
public slug, OpenRouter's ``provider`` (the endpoint that served) and, when asked for or billed,
``usage.cost`` in USD priced by the model's rules. Used on /v1 and /api/v1 alike.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from app.auth import Principal
from app.billing.pricing import MICRO_USD, price_micro_usd, usd
from app.billing.quote import tier_multiplier
from app.errors import GatewayError, InvalidRequest, openrouter_body
from app.routing.resolver import Route, find_model
from app.routing.schema import PricingRule
from app.services import Services


class Served(NamedTuple):
    """What an answer names besides its body, where no ``Route`` is at hand (a finished job)."""

    public_model: str
    provider: str


class Pricer:
    """One request's cost: its model's rules at the caller's tier multiplier. ``include``: the
    response's ``usage`` shows it (asked for, or billing on); the generation record always has it."""

    __slots__ = ("include", "multiplier", "rules", "units")

    def __init__(self, rules: tuple[PricingRule, ...], multiplier: float, *, include: bool) -> None:
        self.rules = rules
        self.multiplier = multiplier
        self.include = include
        self.units = _token_units(rules)

    def cost(self, usage: Mapping[str, Any]) -> float | None:
        prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
        if self.units is not None:  # the hot path: plain per-token prices, priced as the charge is
            total = (self.units[0] * prompt + self.units[1] * completion) * self.multiplier
            return math.ceil(total * MICRO_USD - 1e-6) / MICRO_USD if total > 0 else 0.0
        quantities = {"input_tokens": float(prompt), "tokens": float(prompt), "output_tokens": float(completion)}
        try:
            return usd(price_micro_usd(self.rules, quantities, multiplier=self.multiplier))
        except ValueError:  # the rules scale with something tokens do not measure
            return None


def _token_units(rules: tuple[PricingRule, ...]) -> tuple[float, float] | None:
    """(USD per prompt token, per completion token) when every rule is a plain per-token price."""
    prompt = completion = 0.0
    for rule in rules:
        if rule.inverse or rule.minimum_usd or len(rule.per) != 1:
            return None
        ((quantity, reference),) = rule.per.items()
        if quantity in ("input_tokens", "tokens"):
            prompt += rule.usd / reference
        elif quantity == "output_tokens":
            completion += rule.usd / reference
        else:
            return None
    return prompt, completion


def wants_cost(body: dict[str, Any]) -> bool:
    """OpenRouter's ``usage: {"include": true}``, taken off the body (it is not the worker's)."""
    asked = body.pop("usage", None)
    if asked is None:
        return False
    if not isinstance(asked, dict) or not isinstance(asked.get("include", False), bool):
        raise InvalidRequest('usage must be an object like {"include": true}', param="usage.include"
                             if isinstance(asked, dict) else "usage")
    return asked.get("include") is True


def pricer(services: Services, principal: Principal, route: Route, *, asked: bool) -> Pricer:
    config = services.routing.config
    surface = config.surfaces.get(route.surface)  # type: ignore[call-overload]
    found = find_model(surface, route.public_model) if surface is not None else None
    rules = found[1].pricing_rules if found is not None else ()
    return Pricer(rules, tier_multiplier(config.billing, principal.tier), include=asked or config.billing.enabled)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def full_usage(usage: Any, pricing: Pricer | None, *, embeddings: bool = False) -> dict[str, Any]:
    """``usage`` with every token field (0 where the worker measured nothing) and ``cost``."""
    found: dict[str, Any] = usage if isinstance(usage, dict) else {}
    prompt = _int(found.get("prompt_tokens"))
    found["prompt_tokens"] = prompt
    if not embeddings:
        found["completion_tokens"] = _int(found.get("completion_tokens"))
    total = _int(found.get("total_tokens"))
    found["total_tokens"] = total or prompt + found.get("completion_tokens", 0)
    if pricing is not None and pricing.include:
        cost = pricing.cost(found)
        if cost is not None:
            found["cost"] = cost
    return found


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def _fill_choice(choice: Any, index: int, *, chunk: bool) -> Any:
    if not isinstance(choice, dict):
        return choice
    choice.setdefault("index", index)
    choice.setdefault("logprobs", None)
    if chunk:
        choice.setdefault("finish_reason", None)
        if not isinstance(choice.get("delta"), dict):
            choice["delta"] = {}
    else:
        if not choice.get("finish_reason"):
            choice["finish_reason"] = "stop"
        message = choice.get("message")
        if not isinstance(message, dict):
            message = choice["message"] = {}
        message.setdefault("role", "assistant")
        message.setdefault("content", None)
    return choice


def chat_completion(body: dict[str, Any], route: Route | Served, pricing: Pricer | None) -> dict[str, Any]:
    """A worker's ``chat.completion`` made whole (in place)."""
    if not isinstance(body.get("id"), str) or not body["id"]:
        body["id"] = new_id("chatcmpl")
    body["object"] = "chat.completion"
    if not isinstance(body.get("created"), int):
        body["created"] = int(time.time())
    body["model"] = route.public_model
    body.setdefault("system_fingerprint", None)
    choices = body.get("choices")
    if not isinstance(choices, list):
        choices = body["choices"] = []
    for index, choice in enumerate(choices):
        _fill_choice(choice, index, chunk=False)
    body["usage"] = full_usage(body.get("usage"), pricing)
    body["provider"] = route.provider
    return body


class ChunkFiller:
    """Every chunk of one stream made whole: one ``id`` and ``created`` for the whole stream
    where the worker gives none; ``usage`` (and its cost) only on the chunk that carries it."""

    __slots__ = ("created", "done", "finish_reason", "id", "openrouter", "pricing", "provider", "public_model", "usage")

    def __init__(self, route: Route, pricing: Pricer | None, *, openrouter: bool = False) -> None:
        self.public_model = route.public_model
        self.provider = route.provider
        self.pricing = pricing
        self.id = ""
        self.created = 0
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.done = False  # the worker's stream ended with [DONE]
        self.openrouter = openrouter  # under /api/v1: a failure ends the stream as a whole chunk

    def fill(self, event: dict[str, Any]) -> dict[str, Any]:
        chunk_id = event.get("id")
        if isinstance(chunk_id, str) and chunk_id:
            self.id = self.id or chunk_id
        else:
            event["id"] = self.id = self.id or new_id("chatcmpl")
        created = event.get("created")
        if isinstance(created, int):
            self.created = self.created or created
        else:
            event["created"] = self.created = self.created or int(time.time())
        event["object"] = "chat.completion.chunk"
        event["model"] = self.public_model
        event.setdefault("system_fingerprint", None)
        event["provider"] = self.provider
        choices = event.get("choices")
        if isinstance(choices, list):
            for index, choice in enumerate(choices):
                _fill_choice(choice, index, chunk=True)
        else:
            event["choices"] = []
        usage = event.get("usage")
        if usage is not None:
            event["usage"] = self.usage = full_usage(usage, self.pricing)
        return event


    def error_chunk(self, error: GatewayError) -> dict[str, Any]:
        """OpenRouter's mid-stream error: a chunk whose ``error`` has the HTTP status as ``code``."""
        chunk = self.fill({"choices": [{"delta": {}, "finish_reason": "error"}]})
        chunk["error"] = openrouter_body(error)["error"]
        return chunk


def embeddings(body: dict[str, Any], route: Route | Served, pricing: Pricer | None) -> dict[str, Any]:
    """A worker's embeddings list made whole (in place)."""
    body["object"] = "list"
    body["model"] = route.public_model
    for index, item in enumerate(body.get("data") or ()):
        if isinstance(item, dict):
            item.setdefault("object", "embedding")
            item.setdefault("index", index)
    if not isinstance(body.get("id"), str):
        body["id"] = new_id("emb")
    body["usage"] = full_usage(body.get("usage"), pricing, embeddings=True)
    body["provider"] = route.provider
    return body


def images(body: dict[str, Any], route: Route) -> dict[str, Any]:
    """The gateway-built images response plus an ``id`` (its generation record's) and ``provider``."""
    body.setdefault("id", new_id("img"))
    body.setdefault("created", int(time.time()))
    body["provider"] = route.provider
    return body
