"""Property tests of the memory path rules (spec part 2 §5.1) and of the byte range a path prefix lists."""

from __future__ import annotations

import unicodedata
from typing import Literal

from hypothesis import given
from hypothesis import strategies as st

from loophost import wire
from loophost.runtime.store._memory_sql import prefix_upper

_FORBIDDEN_CATEGORIES: tuple[Literal["Cc", "Cf", "Cs", "Zl", "Zp"], ...] = ("Cc", "Cf", "Cs", "Zl", "Zp")

segment = (
    st.text(
        alphabet=st.characters(blacklist_categories=_FORBIDDEN_CATEGORIES, blacklist_characters="/"),
        min_size=1,
        max_size=12,
    )
    .map(lambda s: unicodedata.normalize("NFC", s))
    .filter(lambda s: s not in ("", ".", ".."))
)


@st.composite
def valid_paths(draw: st.DrawFn) -> str:
    parts = draw(st.lists(segment, min_size=1, max_size=20))
    path = "/" + "/".join(parts)
    while len(path.encode()) > 1024:
        parts.pop()
        path = "/" + "/".join(parts) if parts else "/x"
    return path


def satisfies_rules(path: str) -> bool:
    """The rules, stated independently of the implementation."""
    if not path.startswith("/") or len(path.encode("utf-8", "surrogatepass")) > 1024:
        return False
    if any(unicodedata.category(c) in _FORBIDDEN_CATEGORIES for c in path):
        return False
    if unicodedata.normalize("NFC", path) != path:
        return False
    segments = path[1:].split("/")
    return len(segments) <= 20 and all(s not in ("", ".", "..") for s in segments)


@given(valid_paths())
def test_valid_paths_are_accepted(path: str) -> None:
    assert wire.memory_path_problem(path) is None
    assert wire.path_prefix_problem(path + "/") is None


@given(st.text(max_size=40).map(lambda s: "/" + s) | st.text(max_size=40))
def test_accepted_exactly_when_every_rule_holds(path: str) -> None:
    assert (wire.memory_path_problem(path) is None) == satisfies_rules(path)


@given(valid_paths(), st.sampled_from(["\x00", "\x1f", "\x7f", "\u200b", "\u2028", "\u2029", "\ufeff"]), st.data())
def test_a_forbidden_character_anywhere_is_refused(path: str, bad: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(min_value=1, max_value=len(path)))
    assert wire.memory_path_problem(path[:at] + bad + path[at:]) is not None


@given(valid_paths(), valid_paths())
def test_a_prefix_lists_exactly_the_paths_below_it(directory: str, path: str) -> None:
    """The stores list `prefix <= path < prefix_upper(prefix)` in byte order: the same as whole-segment
    `startswith`, whatever the characters."""
    prefix = directory + "/"
    candidates = [path, prefix + path.lstrip("/"), directory, directory + "-x" + path]
    for candidate in candidates:
        inside = prefix.encode() <= candidate.encode() < prefix_upper(prefix).encode()
        assert inside == candidate.startswith(prefix)


@given(st.text(min_size=1, max_size=30))
def test_mount_slugs_are_plain(name: str) -> None:
    slug = wire.mount_slug(name)
    assert slug and all(c.isascii() and (c.isalnum() or c == "-") for c in slug) and slug == slug.lower()
    assert "--" not in slug
