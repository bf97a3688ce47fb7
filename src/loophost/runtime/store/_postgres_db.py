"""PostgreSQL plumbing for `PostgresStore`: the connection pool, faults, and the per-session order.

- Connections are autocommit: a write is one statement, or one explicit transaction, and a connection goes back
  to the pool as soon as the call is answered, so nothing holds one across a model request or a tool. A
  transaction left idle (its process stopped) is ended by the server after `idle_in_transaction_timeout`, so it
  cannot hold a session's row lock for ever.
- Faults: a read that fails because its connection dropped (`pg_terminate_backend`, a restart) is retried on
  another connection; what still fails, and a write whose connection failed, is `Unavailable` (HTTP 503), as is
  waiting longer than the pool's `timeout` for a connection (the database is down or the pool is exhausted).
- `SessionLocks` keeps the commits of one session, made through one store, in the order they were made (a FIFO
  lock taken before the first await); the commit listeners are called under it, so they see a session's events
  in seq order. Commits from other stores (other nodes) queue on the session row's lock in PostgreSQL instead.
- `single_node` holds a session-level advisory lock on its own connection for the store's lifetime, so a second
  runtime on the same database is refused (`DatabaseInUse`) (a test's way to say one process owns a database).
- PostgreSQL text cannot hold NUL characters (SQLite's can), and psycopg refuses such a parameter before sending
  it. No stored key holds one, so a lookup with one finds nothing (`one`, `all`, `run` answer as if no row
  matched), and a write that would store one is the client's mistake (`store`, `nul_is_invalid`: `InvalidRequest`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from psycopg import AsyncConnection, DataError, InterfaceError, OperationalError
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from .._errors import InvalidRequest, StoreClosed, Unavailable
from ._postgres_schema import migrate
from ._sqlite_engine import DatabaseInUse

Connection = AsyncConnection[tuple[Any, ...]]
Params = Sequence[Any] | dict[str, Any]

SINGLE_NODE_LOCK = 0x6C6F6F70_00000002
"""The advisory lock key a `single_node` store holds for its lifetime; per database."""

_POOL_PARAMS = ("pool_min_size", "pool_max_size")

CONNECTION_ERRORS = (OperationalError, InterfaceError, PoolTimeout)
"""What a dropped connection or an unreachable server raises (a query cancelled by a timeout is one too)."""

DOWN_TIMEOUT = 0.5
"""Seconds a call waits for a connection while the database is known to be unreachable."""


def conn_broken(exc: BaseException) -> bool:
    """Whether an error says the server is gone (not a query's own failure, like a timeout or a deadlock)."""
    return isinstance(exc, OperationalError) and getattr(exc, "sqlstate", None) in (None, "57P01", "57P02", "57P03")


def split_pool_params(url: str) -> tuple[str, dict[str, int]]:
    """`pool_min_size` / `pool_max_size` taken out of a URL's query (libpq would refuse them): the URL left, and
    the sizes it gave."""
    if "://" not in url:
        return url, {}
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    try:
        sizes = {key: int(value) for key, value in query if key in _POOL_PARAMS}
    except ValueError as exc:
        raise ValueError(f"pool_min_size and pool_max_size must be integers: {exc}") from None
    kept = [(key, value) for key, value in query if key not in _POOL_PARAMS]
    return urlunsplit(parts._replace(query=urlencode(kept))), sizes


class SessionLocks:
    """A FIFO lock per session id, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, session_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(session_id) or (asyncio.Lock(), 0)
        self._locks[session_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[session_id]
            if users == 1:
                del self._locks[session_id]
            else:
                self._locks[session_id] = (lock, users - 1)


class Database:
    """The pool of one store, opened (and the schema migrated) by `open`, closed by `close`."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int,
        max_size: int,
        single_node: bool,
        timeout: float = 5.0,
        idle_in_transaction_timeout: float = 15.0,
    ) -> None:
        conninfo, sizes = split_pool_params(url)
        self.url = conninfo
        self.min_size = sizes.get("pool_min_size", min_size)
        self.max_size = max(sizes.get("pool_max_size", max_size), self.min_size)
        self.timeout = timeout
        self.idle_in_transaction_timeout = idle_in_transaction_timeout
        self.read_attempts = self.max_size + 1
        """A read meets at most every pooled connection dead (the server restarted), then a fresh one."""
        self.locks = SessionLocks()
        self._reachable = True
        self._single_node = single_node
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._guard: Connection | None = None
        self._closed = False

    async def open(self) -> None:
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            self.url,
            min_size=self.min_size,
            max_size=self.max_size,
            kwargs={"autocommit": True, "options": self.session_options()},
            open=False,
            name="loophost",
            timeout=self.timeout,
        )
        try:
            if self._single_node:
                await self._hold_single_node_lock()
            await pool.open(wait=True)
            async with pool.connection() as conn:
                await migrate(conn)
        except BaseException:
            await pool.close()
            if self._guard is not None:
                await self._guard.close()
                self._guard = None
            raise
        self._pool = pool

    def session_options(self) -> str:
        """libpq `options` every connection of this store starts with."""
        idle_ms = max(1, round(self.idle_in_transaction_timeout * 1000))
        return f"-c idle_in_transaction_session_timeout={idle_ms}"

    async def _hold_single_node_lock(self) -> None:
        self._guard = await AsyncConnection.connect(self.url, autocommit=True)
        cur = await self._guard.execute("SELECT pg_try_advisory_lock(%s)", (SINGLE_NODE_LOCK,))
        row = await cur.fetchone()
        if row is None or not row[0]:
            raise DatabaseInUse(
                "another loophost node is serving this PostgreSQL database, and this one is single_node"
            )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            await self._pool.close()
        if self._guard is not None:
            with contextlib.suppress(*CONNECTION_ERRORS):  # released now: the server ends a closed session later
                await self._guard.execute("SELECT pg_advisory_unlock(%s)", (SINGLE_NODE_LOCK,))
            await self._guard.close()  # ends its session, which releases the advisory lock anyway

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection for one call; `StoreClosed` once the store is closed, `Unavailable` when the
        connection fails (or none is to be had)."""
        if self._closed or self._pool is None:
            raise StoreClosed("the store is closed" if self._closed else "the store is not open")
        try:
            # once the database was found unreachable, a call fails fast until a connection works again
            async with self._pool.connection(timeout=self.timeout if self._reachable else DOWN_TIMEOUT) as conn:
                yield conn
                self._reachable = True
        except CONNECTION_ERRORS as exc:
            if isinstance(exc, PoolTimeout) or conn_broken(exc):
                self._reachable = False
            raise unavailable(exc) from exc

    async def one(self, sql: str, args: Params = ()) -> tuple[Any, ...] | None:
        for attempt in range(self.read_attempts):
            try:
                async with self.connection() as conn:
                    try:
                        cur = await conn.execute(sql, args)
                    except DataError:
                        if has_nul(args):
                            return None
                        raise
                    return await cur.fetchone()
            except Unavailable as exc:
                if attempt == self.read_attempts - 1 or isinstance(exc.__cause__, PoolTimeout):
                    raise
        raise AssertionError("unreachable")

    async def all(self, sql: str, args: Params = ()) -> list[tuple[Any, ...]]:
        for attempt in range(self.read_attempts):
            try:
                async with self.connection() as conn:
                    try:
                        cur = await conn.execute(sql, args)
                    except DataError:
                        if has_nul(args):
                            return []
                        raise
                    return await cur.fetchall()
            except Unavailable as exc:
                if attempt == self.read_attempts - 1 or isinstance(exc.__cause__, PoolTimeout):
                    raise
        raise AssertionError("unreachable")

    async def run(self, sql: str, args: Params = ()) -> int:
        """Execute one statement keyed by its arguments (a delete, a compare-and-set); the rows it touched."""
        async with self.connection() as conn:
            try:
                cur = await conn.execute(sql, args)
            except DataError:
                if has_nul(args):
                    return 0
                raise
            return cur.rowcount

    async def store(self, sql: str, args: Params = ()) -> int:
        """Execute one statement that stores its arguments; the rows it touched."""
        async with self.connection() as conn:
            with nul_is_invalid(args):
                cur = await conn.execute(sql, args)
            return cur.rowcount


def unavailable(exc: BaseException) -> Unavailable:
    if isinstance(exc, PoolTimeout):
        return Unavailable(f"no database connection could be had in time: {exc}")
    return Unavailable(f"the database connection failed: {exc}")


def has_nul(args: Params) -> bool:
    """Whether a text argument (or an element of a list argument) holds a NUL character."""
    for value in args.values() if isinstance(args, dict) else args:
        if isinstance(value, str) and "\x00" in value:
            return True
        if isinstance(value, list | tuple) and any(isinstance(v, str) and "\x00" in v for v in value):
            return True
    return False


@contextmanager
def nul_is_invalid(args: Params) -> Iterator[None]:
    """psycopg's refusal of a NUL character in `args` as the client's mistake (`InvalidRequest`)."""
    try:
        yield
    except DataError as exc:
        if has_nul(args):
            raise InvalidRequest("text fields cannot contain NUL (\\u0000) characters") from exc
        raise
