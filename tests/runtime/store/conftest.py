"""The store contract suite runs against every backend listed in STORE_BACKENDS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from loophost.runtime.store import PostgresStore, SQLiteStore, Store

StoreFactory = Callable[[], Store]


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    path = tmp_path / "contract.db"
    return lambda: SQLiteStore(path)


def _postgres(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    url: str = request.getfixturevalue("postgres_url")  # a fresh database on the session's server
    return lambda: PostgresStore(url)


STORE_BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], StoreFactory]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@pytest.fixture(params=sorted(STORE_BACKENDS))
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Makes stores on the same database, so a test can close one and reopen another (durability)."""
    return STORE_BACKENDS[request.param](request, tmp_path)


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[Store]:
    s = store_factory()
    await s.open()
    try:
        yield s
    finally:
        await s.close()
