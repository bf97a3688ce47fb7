"""Metadata bags: the size limits and the key-wise patch that agents, environments and sessions share."""

from __future__ import annotations

from collections.abc import Mapping

MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512


def check_metadata(metadata: Mapping[str, str | None]) -> None:
    """Raise ValueError unless the bag fits the documented limits (16 pairs, key 1-64, value <=512)."""
    if len(metadata) > MAX_METADATA_PAIRS:
        raise ValueError(f"metadata may hold at most {MAX_METADATA_PAIRS} pairs, got {len(metadata)}")
    for key, value in metadata.items():
        if not 1 <= len(key) <= MAX_METADATA_KEY:
            raise ValueError(f"metadata key {key!r} must be 1-{MAX_METADATA_KEY} characters")
        if value is not None and len(value) > MAX_METADATA_VALUE:
            raise ValueError(f"metadata value for {key!r} exceeds {MAX_METADATA_VALUE} characters")


def patch_metadata(
    current: Mapping[str, str],
    patch: Mapping[str, str | None] | None,
    *,
    empty_string_deletes: bool = False,
) -> dict[str, str]:
    """Apply a metadata patch: a string upserts its key, `None` deletes it.

    A `None` patch (the whole field sent as JSON null) clears the bag. Environments also delete a key
    whose new value is `""` (`empty_string_deletes=True`). The result is checked against the limits.
    """
    if patch is None:
        return {}
    merged = dict(current)
    for key, value in patch.items():
        if value is None or (empty_string_deletes and value == ""):
            merged.pop(key, None)
        else:
            merged[key] = value
    check_metadata(merged)
    return merged
