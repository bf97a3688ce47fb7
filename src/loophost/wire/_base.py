"""Base classes, the timestamp type and the JSON dump helpers every wire model shares.

Two kinds of model:

* `WireModel` - something *received or sent back* (resources, events, pages). Extra fields are kept
  (`extra="allow"`) so that shapes newer than this code survive a parse/dump round trip, just like the
  SDK's own permissive models.
* `ParamsModel` - a request body. Unknown fields are rejected (`extra="forbid"`), which is the server's
  400 on a malformed body.

Omit vs null: the SDK does not send omitted kwargs and sends an explicit `None` as JSON `null`; update
semantics depend on the difference (omitted = preserve, `null` = clear). Pydantic records exactly which
fields were present in the input in `model.model_fields_set`, so an update param whose value is `None`
means "clear" when its name is in `model_fields_set` and "preserve" otherwise. To send a params model
back out (client side) dump it with `exclude_unset=True` so the distinction survives the wire.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    model_serializer,
)


def _to_utc(value: datetime) -> datetime:
    """Naive datetimes are taken to be UTC; aware ones are converted to UTC."""
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z` suffix and fixed microsecond precision.

    Fixed width keeps string order equal to time order and loses nothing of a Python `datetime`, so
    `parse(dump(x)) == x` holds exactly.
    """
    return _to_utc(value).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


Timestamp = Annotated[
    datetime,
    AfterValidator(_to_utc),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
]
"""A UTC `datetime` that is written to JSON as `2026-04-07T04:27:43.197000Z`.

Any RFC 3339 input is accepted (`Z`, offsets, milliseconds, no fraction) and normalised to UTC."""


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (what every `created_at`/`processed_at` should hold)."""
    return datetime.now(UTC)


class _TypeAlwaysSet(BaseModel):
    """Counts a defaulted `type` discriminator as set, so `exclude_unset=True` dumps still carry it."""

    def model_post_init(self, context: Any, /) -> None:
        if "type" in type(self).model_fields:
            self.__pydantic_fields_set__.add("type")


class WireModel(_TypeAlwaysSet):
    """A resource, event or page as it travels on the wire; unknown fields are kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())


class ParamsModel(_TypeAlwaysSet):
    """A request body; unknown fields are a validation error (HTTP 400)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=())


class SparseWireModel(WireModel):
    """A wire model whose optional fields are left out when they were never set and are `None`.

    Used where *absent* and `null` mean different things on the wire (`session.updated` only carries the
    changed fields) or where an echoed document must come back as given (a custom tool's JSON schema).
    """

    @model_serializer(mode="wrap")
    # No return annotation on purpose: pydantic then keeps the model's own JSON schema for serialization
    # (an annotation would replace it, e.g. `Any` documents the response as `{}` in OpenAPI).
    def _omit_unset_none(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        data = handler(self)
        if isinstance(data, dict):
            for name, field in type(self).model_fields.items():
                if name not in self.model_fields_set and getattr(self, name) is None:
                    data.pop(field.alias or name, None)
                    data.pop(name, None)
        return data


def dump_dict(model: BaseModel, *, exclude_unset: bool = False) -> dict[str, Any]:
    """JSON-ready dict of a model (aliases, RFC 3339 timestamps), e.g. for an SSE frame or `json=`."""
    return model.model_dump(mode="json", by_alias=True, exclude_unset=exclude_unset)


def dump_json(model: BaseModel, *, exclude_unset: bool = False) -> bytes:
    """Compact UTF-8 JSON of a model: declared fields in declaration order, then extras in input order.

    Defaults are written (`exclude_unset=False`) so responses always carry every field the SDK
    requires. Pass `exclude_unset=True` for a request body built from a `ParamsModel`.
    """
    return model.model_dump_json(by_alias=True, exclude_unset=exclude_unset).encode()
