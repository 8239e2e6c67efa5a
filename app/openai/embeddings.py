"""POST /v1/embeddings: passthrough to the worker, base64 encoded here.

The worker is always asked for floats (stock workers may not speak base64); the gateway
encodes little-endian float32 itself, which is what the openai SDK asks for by default.
"""

from __future__ import annotations

import base64
import hashlib
import sys
from array import array
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, post

from app import docs, generations
from app.billing import charge
from app.disconnect import unless_disconnected
from app.errors import InvalidRequest, UpstreamError
from app.jobs.runner import Call
from app.limits import rate_headers
from app.openai import complete
from app.openai._request import admit, choose_mode, decode_object, validate
from app.openai.bounds import MAX_DIMENSIONS, MAX_TOKEN_ID, MAX_TOKENS_PER_INPUT, check_values
from app.openai.enqueue import enqueue
from app.openai.fallbacks import released_on_timeout
from app.openai.webhook_field import checked_webhook_url, job_webhook_url
from app.routing.preferences import take_wishes
from app.routing.resolver import Route
from app.tasks.embeddings import estimated_tokens
from app.upstream.worker_errors import output_error
from app.usage import record, token_counts

OPENAI_ROUTE = "/v1/embeddings"
MAX_INPUTS = 2048
# Bounded by the schema (token ids and counts), and too large for a walk in Python.
_SCHEMA_BOUNDED = frozenset({"input"})


TokenId = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKEN_ID)]
TokenIds = Annotated[list[TokenId], msgspec.Meta(max_length=MAX_TOKENS_PER_INPUT)]


class EmbeddingsRequest(msgspec.Struct):
    # msgspec allows one array type per union, so list items are checked by hand below.
    input: str | Annotated[list[str | TokenId | TokenIds], msgspec.Meta(max_length=MAX_INPUTS)]
    model: str | None = None
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, msgspec.Meta(ge=1, le=MAX_DIMENSIONS)] | None = None
    user: str | None = None
    webhook_url: str | None = None


def check_input(value: str | list[Any]) -> None:
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("input must not be empty", param="input")
        return
    if not value:
        raise InvalidRequest("input must not be an empty list", param="input")
    if len(value) > MAX_INPUTS:
        raise InvalidRequest(f"input may hold at most {MAX_INPUTS} items", param="input")
    kinds = {type(item) for item in value}
    if len(kinds) > 1:
        raise InvalidRequest("input must be all strings, all token ids, or all token arrays", param="input")
    for index, item in enumerate(value):
        if (isinstance(item, str | list)) and not item:
            raise InvalidRequest(f"input[{index}] must not be empty", param=f"input.{index}")


def encode_base64(vector: list[float]) -> str:
    packed = array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode


def public_embeddings(
    raw: bytes, route: Route, *, as_base64: bool, pricing: complete.Pricer | None = None
) -> dict[str, Any]:
    body: Any = _decode(raw)
    error = output_error(body)
    if error is not None:
        raise error
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise UpstreamError("The worker's embeddings response has no data list", code="upstream_bad_response")
    if as_base64:
        for item in body["data"]:
            if isinstance(item.get("embedding"), list):
                item["embedding"] = encode_base64(item["embedding"])
    return complete.embeddings(body, route, pricing)


@post(
    "/v1/embeddings",
    summary="Create embeddings",
    description="OpenAI embeddings (float or base64), passed through to the embedding worker. " + docs.ASYNC_NOTE,
    tags=["openai"],
    status_code=200,
    middleware=[rate_headers],
    operation_class=docs.EMBEDDINGS_OPERATION,
    responses=docs.EMBEDDINGS_RESPONSES,
)
async def create_embeddings(request: Request[Any, Any, Any]) -> Response[Any]:
    services, principal = await admit(request, "embeddings")
    raw = await request.body()
    body = decode_object(raw)
    asked_cost = complete.wants_cost(body)
    parsed = validate(body, EmbeddingsRequest)
    check_input(parsed.input)
    check_values(body, skip=_SCHEMA_BOUNDED)
    wishes = take_wishes(body)  # models/route/provider: the gateway's, never the worker's
    webhook_url = await checked_webhook_url(services, parsed.webhook_url)
    body.pop("webhook_url", None)
    body["encoding_format"] = "float"
    as_base64 = parsed.encoding_format == "base64"
    items = [parsed.input] if isinstance(parsed.input, str) else parsed.input
    # Texts are estimated; token ids count as sent (a bare id is one token, a list its length).
    tokens = sum(estimated_tokens(i) if isinstance(i, str) else len(i) if isinstance(i, list) else 1 for i in items)
    key_id = principal.key_id

    async def attempt(route: Route, last: bool) -> tuple[Response[Any] | dict[str, Any], dict[str, Any] | None]:
        mode = choose_mode(request, route, stream=False, webhook_url=webhook_url)
        body["model"] = route.upstream_model
        billing = await charge.hold_for(services, principal, route, {"tokens": float(tokens)}, task="embeddings")
        if mode == "async":
            job_input = {"openai_route": OPENAI_ROUTE, "openai_input": body}
            return await charge.paid_enqueue(services, key_id, billing, enqueue(
                Call(services, request, principal, route),
                job_input,
                webhook_url=await job_webhook_url(services, principal, webhook_url),
                digest=hashlib.sha256(raw).hexdigest(),
                options={"encoding_format": parsed.encoding_format or "float"} | _billed(billing),
            )), billing
        pricing = complete.pricer(services, principal, route, asked=asked_cost)

        async def vectors() -> dict[str, Any]:
            content = await services.client.openai_json(route, "embeddings", body, route.sync_timeout_s)
            # An error output falls back too.
            return public_embeddings(content, route, as_base64=as_base64, pricing=pricing)

        return await released_on_timeout(services, key_id, billing, charge.paid(
            services, key_id, billing, unless_disconnected(request, vectors()))), billing

    route, (embeddings, billing) = await services.serve("embeddings", wishes, attempt)
    if not isinstance(embeddings, dict):
        return embeddings
    usage = embeddings["usage"]
    await charge.settle_output(services, key_id, route, billing, {"usage": usage})
    record(services, principal.key_id, "embeddings", token_counts(embeddings, embeddings=True))
    cost = usage["cost"] if "cost" in usage else complete.pricer(services, principal, route, asked=True).cost(usage)
    generations.finished(services, generation_id=embeddings["id"], owner=key_id, route=route, usage=usage, cost=cost)
    return Response(content=_encode(embeddings), media_type="application/json")


def _billed(billing: dict[str, Any] | None) -> dict[str, Any]:
    return {"billing": billing} if billing else {}
