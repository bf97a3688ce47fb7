"""Fixtures every test package may use: a real PostgreSQL server for the test session (see tests/_postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._postgres import PostgresServer, PostgresUnavailable


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole test session, started on first use.

    When PostgreSQL cannot be started every test that needs it fails with the reason: it never skips."""
    try:
        server = PostgresServer.start()
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL could not be started: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a fresh, empty database of its own."""
    return postgres_server.create_database()
