"""SQLite plumbing: one writer thread with group commit, a small pool of reader threads.

SQLite WAL allows one writer at a time, so every write funnels through one thread. Writes that arrive while a
transaction is in flight are collected and applied together in the next one: one commit (one fsync with
`synchronous=FULL`) for the whole batch. Each operation runs inside its own SAVEPOINT, so one failing operation
rolls back alone and the rest of the batch still commits.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .._errors import StoreClosed
from ._records import NewEvent, StoredEvent

T = TypeVar("T")

WriteFn = Callable[[sqlite3.Connection], tuple[T, Sequence[StoredEvent]]]
"""A write runs in the writer thread; it returns its result and the events it committed (for listeners)."""

_MAX_BATCH = 512


@dataclass(slots=True)
class _Op(Generic[T]):
    fn: WriteFn[T] | None
    future: asyncio.Future[T]
    append: tuple[str, Sequence[NewEvent]] | None = None
    """A plain append (no other change): batched with its neighbours into one statement per table."""


class SessionGone(Exception):
    """Raised into a plain append whose session no longer exists (the store turns it into `StaleWrite`)."""


def connect(path: str, *, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA cache_size=-16000")
    conn.execute("PRAGMA wal_autocheckpoint=4000")
    return conn


class SQLiteEngine:
    """Owns the connections, the writer thread and the writer task that batches operations."""

    def __init__(self, path: str, *, synchronous: str = "NORMAL", readers: int = 2) -> None:
        self._path = path
        self._synchronous = synchronous
        self._writer_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loophost-sqlite-writer")
        self._reader_pool = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="loophost-sqlite-reader")
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._wconn: sqlite3.Connection | None = None
        self._queue: asyncio.Queue[_Op[Any] | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[Sequence[StoredEvent]], None]] = []
        self._closed = False

    # lifecycle ---------------------------------------------------------------------------------------------
    async def open(self, migrate: Callable[[sqlite3.Connection], None]) -> None:
        loop = asyncio.get_running_loop()

        def _open() -> None:
            self._wconn = connect(self._path, synchronous=self._synchronous)
            migrate(self._wconn)

        await loop.run_in_executor(self._writer_pool, _open)
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="loophost-sqlite-writer")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._queue is not None and self._task is not None:
            self._queue.put_nowait(None)
            await self._task
        loop = asyncio.get_running_loop()
        if self._wconn is not None:
            await loop.run_in_executor(self._writer_pool, self._wconn.close)
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        self._writer_pool.shutdown(wait=True)
        self._reader_pool.shutdown(wait=True)

    def add_listener(self, listener: Callable[[Sequence[StoredEvent]], None]) -> None:
        self._listeners.append(listener)

    # writes ------------------------------------------------------------------------------------------------
    async def write(self, fn: WriteFn[T]) -> T:
        if self._closed or self._queue is None:
            raise StoreClosed("the store is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Op(fn, future))
        return await future

    async def append(self, session_id: str, events: Sequence[NewEvent]) -> list[StoredEvent]:
        """Append events to a session's log with no other change: the hot path, batched across callers."""
        if self._closed or self._queue is None:
            raise StoreClosed("the store is closed")
        future: asyncio.Future[list[StoredEvent]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Op(None, future, (session_id, events)))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        queue = self._queue
        stopping = False
        while not stopping:
            first = await queue.get()
            if first is None:
                break
            batch: list[_Op[Any]] = [first]
            while len(batch) < _MAX_BATCH and not queue.empty():
                nxt = queue.get_nowait()
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            outcomes = await loop.run_in_executor(self._writer_pool, self._apply, batch)
            committed: list[StoredEvent] = []
            for ok, value in outcomes:
                if ok:
                    committed.extend(value[1])
            if committed:
                for listener in self._listeners:
                    listener(committed)
            for op, (ok, value) in zip(batch, outcomes, strict=True):
                if op.future.done():  # the caller was cancelled; the write still happened
                    continue
                if ok:
                    op.future.set_result(value[0])
                else:
                    op.future.set_exception(value)
        # Anything queued after the stop marker is refused, not lost silently.
        while not queue.empty():
            late = queue.get_nowait()
            if late is not None and not late.future.done():
                late.future.set_exception(StoreClosed("the store closed before this write ran"))

    def _apply(self, batch: list[_Op[Any]]) -> list[tuple[bool, Any]]:
        conn = self._wconn
        assert conn is not None
        outcomes: list[tuple[bool, Any] | None] = [None] * len(batch)
        appends: list[int] = []  # indexes of plain appends not yet written, in commit order
        try:
            conn.execute("BEGIN IMMEDIATE")
            for index, op in enumerate(batch):
                if op.append is not None:
                    appends.append(index)
                    continue
                if appends:  # keep commit order: earlier appends are written before this operation
                    self._flush_appends(conn, batch, appends, outcomes)
                    appends = []
                assert op.fn is not None
                conn.execute("SAVEPOINT op")
                try:
                    outcomes[index] = (True, op.fn(conn))
                    conn.execute("RELEASE op")
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    outcomes[index] = (False, exc)
            if appends:
                self._flush_appends(conn, batch, appends, outcomes)
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(False, exc) for _ in batch]
        return [o if o is not None else (False, RuntimeError("operation not applied")) for o in outcomes]

    @staticmethod
    def _flush_appends(
        conn: sqlite3.Connection,
        batch: list[_Op[Any]],
        indexes: list[int],
        outcomes: list[tuple[bool, Any] | None],
    ) -> None:
        """Write a run of plain appends: one seq reservation per session, one INSERT for every event.

        A session that no longer exists fails only its own appends. Anything else (a duplicate event id) falls
        back to one savepoint per append, so only the offending append fails.
        """
        wanted: dict[str, int] = {}
        for index in indexes:
            session_id, events = batch[index].append  # type: ignore[misc]
            wanted[session_id] = wanted.get(session_id, 0) + len(events)
        conn.execute("SAVEPOINT appends")
        try:
            next_seq: dict[str, int] = {}
            for session_id, count in wanted.items():
                row = conn.execute(
                    "UPDATE sessions SET last_seq = last_seq + ? WHERE id = ? RETURNING last_seq",
                    (count, session_id),
                ).fetchone()
                if row is not None:
                    next_seq[session_id] = row[0] - count + 1
            rows: list[tuple[str, int, str, str, str | None, str]] = []
            results: list[tuple[int, list[StoredEvent]] | None] = []
            for index in indexes:
                session_id, events = batch[index].append  # type: ignore[misc]
                first = next_seq.get(session_id)
                if first is None:
                    results.append(None)
                    continue
                stored = [
                    StoredEvent(session_id, first + i, e.id, e.type, e.processed_at, e.body)
                    for i, e in enumerate(events)
                ]
                next_seq[session_id] = first + len(events)
                rows.extend((session_id, e.seq, e.id, e.type, e.processed_at, e.body) for e in stored)
                results.append((index, stored))
            conn.executemany(
                "INSERT INTO events (session_id, seq, id, type, processed_at, body) VALUES (?,?,?,?,?,?)",
                rows,
            )
            conn.execute("RELEASE appends")
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK TO appends")
            conn.execute("RELEASE appends")
            for index in indexes:
                session_id, events = batch[index].append  # type: ignore[misc]
                conn.execute("SAVEPOINT op")
                try:
                    stored_one = append_rows(conn, session_id, events)
                    conn.execute("RELEASE op")
                    outcomes[index] = (True, (stored_one, stored_one))
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    outcomes[index] = (False, exc)
            return
        for index, result in zip(indexes, results, strict=True):
            if result is None:
                session_id = batch[index].append[0]  # type: ignore[index]
                outcomes[index] = (False, SessionGone(session_id))
            else:
                outcomes[index] = (True, (result[1], result[1]))

    # reads -------------------------------------------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._path, synchronous=self._synchronous)
            self._local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreClosed("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_pool, lambda: fn(self._reader()))


def append_rows(conn: sqlite3.Connection, session_id: str, events: Sequence[NewEvent]) -> list[StoredEvent]:
    """Reserve seqs on the session row and insert the events; `SessionGone` if the session does not exist."""
    if not events:
        return []
    row = conn.execute(
        "UPDATE sessions SET last_seq = last_seq + ? WHERE id = ? RETURNING last_seq",
        (len(events), session_id),
    ).fetchone()
    if row is None:
        raise SessionGone(session_id)
    first = row[0] - len(events) + 1
    stored = [StoredEvent(session_id, first + i, e.id, e.type, e.processed_at, e.body) for i, e in enumerate(events)]
    conn.executemany(
        "INSERT INTO events (session_id, seq, id, type, processed_at, body) VALUES (?,?,?,?,?,?)",
        [(s.session_id, s.seq, s.id, s.type, s.processed_at, s.body) for s in stored],
    )
    return stored
