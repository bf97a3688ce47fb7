"""List responses (spec §0.2) and the `{"id","type":"..._deleted"}` delete confirmations."""

from __future__ import annotations

from typing import Generic, TypeVar

from ._base import WireModel

T = TypeVar("T")


class CursorPage(WireModel, Generic[T]):
    """Every list except sessions. The SDK follows `next_page` (as `?page=`) until it is null or empty."""

    data: list[T]
    next_page: str | None = None


class BidirectionalPage(CursorPage[T], Generic[T]):
    """`GET /v1/sessions`: a cursor page that also offers `prev_page` (the SDK only follows `next_page`)."""

    prev_page: str | None = None


class Deleted(WireModel):
    """Delete confirmation, e.g. `{"id":"env_1","type":"environment_deleted"}`; a JSON model, never a 204."""

    id: str
    type: str
