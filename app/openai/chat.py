"""POST /v1/chat/completions: passthrough (sync and SSE) or a RunPod job (async)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, post
from litestar.response import Stream

from app import docs, generations
from app.billing import charge
from app.disconnect import unless_disconnected
from app.errors import UpstreamError, is_openrouter_path
from app.jobs.runner import Call
from app.limits import rate_headers
from app.openai import complete
from app.openai._request import admit, choose_mode, decode_object, validate
from app.openai.bounds import (
    INT64_MAX,
    INT64_MIN,
    MAX_ITEMS,
    MAX_MESSAGES,
    MAX_STOP,
    MAX_TOKENS,
    MAX_TOOLS,
    check_values,
)
from app.openai.chat_stream import recorded_stream, relay_chat_stream
from app.openai.enqueue import enqueue
from app.openai.fallbacks import opened_stream, released_on_timeout
from app.openai.webhook_field import checked_webhook_url, job_webhook_url
from app.routing.preferences import take_wishes
from app.routing.resolver import Route
from app.tasks.embeddings import estimated_tokens
from app.upstream.worker_errors import output_error
from app.usage import metered_stream, record, token_counts

OPENAI_ROUTE = "/v1/chat/completions"
Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


# Token id -> bias, each within OpenAI's documented -100..100.
LogitBias = Annotated[dict[str, Annotated[float, msgspec.Meta(ge=-100, le=100)]], msgspec.Meta(max_length=MAX_ITEMS)]


class ChatMessage(msgspec.Struct):
    role: Role
    content: str | list[Any] | None = None


class StreamOptions(msgspec.Struct):
    include_usage: bool | None = None


class ChatRequest(msgspec.Struct):
    """Validated view of the body; unknown fields stay in the dict that goes upstream."""

    messages: Annotated[list[ChatMessage], msgspec.Meta(min_length=1, max_length=MAX_MESSAGES)]
    model: str | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=MAX_TOKENS)] | None = None
    max_completion_tokens: Annotated[int, msgspec.Meta(ge=1, le=MAX_TOKENS)] | None = None
    n: Annotated[int, msgspec.Meta(ge=1, le=128)] | None = None
    stop: str | Annotated[list[str], msgspec.Meta(max_length=MAX_STOP)] | None = None
    seed: Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)] | None = None
    presence_penalty: Annotated[float, msgspec.Meta(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, msgspec.Meta(ge=-2, le=2)] | None = None
    top_logprobs: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None
    logit_bias: LogitBias | None = None
    tools: Annotated[list[Any], msgspec.Meta(max_length=MAX_TOOLS)] | None = None
    webhook_url: str | None = None


_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode


def public_completion(raw: bytes, route: Route, pricing: complete.Pricer | None = None) -> dict[str, Any]:
    """The worker's chat.completion, made whole with our model slug; errors in the output raise."""
    body: Any = _decode(raw)
    error = output_error(body)
    if error is not None:
        raise error
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, dict):
        raise UpstreamError("The worker's chat completion is not an object", code="upstream_bad_response")
    return complete.chat_completion(body, route, pricing)


# Held for a reply whose client set no max_tokens; settled on the usage the worker reports.
_DEFAULT_OUTPUT_HOLD = 1024


def _quantities(parsed: ChatRequest, body: dict[str, Any]) -> dict[str, float]:
    """What a chat is held for: its messages (estimated tokens) and the longest reply it allows."""
    prompt = msgspec.json.encode(body.get("messages")).decode()
    reply = parsed.max_completion_tokens or parsed.max_tokens or _DEFAULT_OUTPUT_HOLD
    return {"input_tokens": float(estimated_tokens(prompt)), "output_tokens": float(reply)}


@post(
    "/v1/chat/completions",
    summary="Create a chat completion",
    description="OpenAI chat completions: JSON, or Server-Sent Events with `stream: true`. " + docs.ASYNC_NOTE,
    tags=["openai"],
    status_code=200,
    middleware=[rate_headers],
    operation_class=docs.CHAT_OPERATION,
    responses=docs.CHAT_RESPONSES,
)
async def chat_completions(request: Request[Any, Any, Any]) -> Response[Any]:
    services, principal = await admit(request, "chat")
    raw = await request.body()
    body = decode_object(raw)
    asked_cost = complete.wants_cost(body)
    parsed = validate(body, ChatRequest)
    check_values(body)  # what the schema does not know still goes to the worker: bound it too
    wishes = take_wishes(body)  # models/route/provider: the gateway's, never the worker's
    webhook_url = await checked_webhook_url(services, parsed.webhook_url)
    body.pop("webhook_url", None)
    quantities = _quantities(parsed, body)
    key_id = principal.key_id
    if asked_cost and parsed.stream:  # OpenRouter's usage accounting: the last chunk has it
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    openrouter = is_openrouter_path(request.scope["path"])

    async def attempt(route: Route, last: bool) -> tuple[Response[Any] | dict[str, Any], dict[str, Any] | None]:
        """One model on one endpoint, up to the point where output would reach the client."""
        mode = choose_mode(request, route, stream=bool(parsed.stream), webhook_url=webhook_url)
        body["model"] = route.upstream_model
        pricing = complete.pricer(services, principal, route, asked=asked_cost)
        billing = await charge.hold_for(services, principal, route, quantities, task="chat")
        if mode == "async":
            job_input = {"openai_route": OPENAI_ROUTE, "openai_input": body}
            call = Call(services, request, principal, route)
            digest = hashlib.sha256(raw).hexdigest()
            hook = await job_webhook_url(services, principal, webhook_url)
            options = {"billing": billing} if billing is not None else None
            return await charge.paid_enqueue(services, key_id, billing, enqueue(
                call, job_input, webhook_url=hook, digest=digest, stream=bool(parsed.stream), options=options)), billing
        if mode == "stream":
            stack = AsyncExitStack()

            async def first_event() -> AsyncIterator[bytes]:
                try:
                    opened = await stack.enter_async_context(
                        services.client.openai_stream(route, "chat/completions", body, route.sync_timeout_s))
                    # With somewhere to fall back to, the first event decides before the client sees a
                    # byte (headers wait for it); the last candidate answers at once, as without fallbacks.
                    return opened if last else await opened_stream(opened)
                except BaseException:
                    await stack.aclose()
                    raise

            opening = first_event() if last else unless_disconnected(request, first_event())
            chunks = await released_on_timeout(services, key_id, billing, charge.paid(
                services, key_id, billing, opening))
            filler = complete.ChunkFiller(route, pricing, openrouter=openrouter)
            relayed = metered_stream(recorded_stream(relay_chat_stream(chunks, stack, filler), services, key_id,
                                                     route, filler), services, key_id)
            return Stream(
                charge.billed_stream(relayed, services, key_id, route, billing) if billing is not None else relayed,
                media_type="text/event-stream",
                headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
            ), billing

        async def completion() -> dict[str, Any]:
            content = await services.client.openai_json(route, "chat/completions", body, route.sync_timeout_s)
            return public_completion(content, route, pricing)  # an error output falls back too

        return await released_on_timeout(services, key_id, billing, charge.paid(
            services, key_id, billing, unless_disconnected(request, completion()))), billing

    route, (answer, billing) = await services.serve("chat", wishes, attempt)
    if not isinstance(answer, dict):
        return answer
    await charge.settle_output(services, key_id, route, billing, answer)
    record(services, principal.key_id, "chat", token_counts(answer))
    usage, choices = answer["usage"], answer["choices"]
    first = choices[0] if choices and isinstance(choices[0], dict) else {}
    cost = usage["cost"] if "cost" in usage else complete.pricer(services, principal, route, asked=True).cost(usage)
    generations.finished(services, generation_id=answer["id"], owner=key_id, route=route, usage=usage, cost=cost,
                         finish_reason=first.get("finish_reason"))
    return Response(content=_encode(answer), media_type="application/json")
