"""Field types and rules several task families share."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, TypeVar

import msgspec

from app.routing.schema import ModelRoute
from app.tasks.model_limits import check as check_limits
from app.tasks.validation import FieldErrors, struct_fields

P = TypeVar("P", bound=msgspec.Struct)
MAX_SEED = 2**63 - 1
# -1 asks for a random seed; the gateway draws it so the job records which one ran.
Seed = Annotated[int, msgspec.Meta(ge=-1, le=MAX_SEED)]
Prompt = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
Side = Annotated[int, msgspec.Meta(ge=1, le=16_384)]
Steps = Annotated[int, msgspec.Meta(ge=1, le=1_000)]
Guidance = Annotated[float, msgspec.Meta(ge=0, le=100)]
WebhookUrl = Annotated[str, msgspec.Meta(max_length=2048)]


class Lora(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    weight: Annotated[float, msgspec.Meta(ge=-10, le=10)] = 1.0


Loras = Annotated[list[Lora], msgspec.Meta(max_length=8)]


class TaskParams(msgspec.Struct, kw_only=True):
    """Fields every task takes (reference §1.11)."""

    model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    webhook_url: WebhookUrl | None = None
    return_result_in_response: bool = False


def resolved_seed(seed: int | None) -> int:
    return secrets.randbelow(2**32) if seed is None or seed < 0 else seed


def check_model_limits(params: msgspec.Struct, route: ModelRoute, **extra: Any) -> FieldErrors:
    """The model's published limits and features against the set fields (plus ``extra``)."""
    values = {name: getattr(params, name) for name in params.__struct_fields__} | extra
    return check_limits(route.info, values)


def check_loras(loras: list[Lora] | None, route: ModelRoute) -> FieldErrors:
    offered = {lora.name for lora in route.loras}
    unknown = [lora.name for lora in loras or () if lora.name not in offered]
    if unknown:
        return [("loras", f"The model has no LoRA named {', '.join(repr(n[:100]) for n in unknown)}.")]
    return []


def with_model_defaults(params: P, route: ModelRoute) -> P:
    """``params`` with every field the client left out taken from the model's ``info.defaults``,
    so the worker runs what the price was computed for and the catalogue promised."""
    filled: dict[str, Any] = {}
    for field in struct_fields(type(params)):
        if getattr(params, field.name) is None and field.encode_name in route.info.defaults:
            try:
                filled[field.name] = msgspec.convert(route.info.defaults[field.encode_name], field.type, strict=False)
            except msgspec.ValidationError:
                continue  # a default this task cannot take (an operator's typo): left to the worker
    return msgspec.structs.replace(params, **filled) if filled else params
