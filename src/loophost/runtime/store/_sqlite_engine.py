"""SQLite plumbing: one writer with group commit, a small pool of reader threads.

SQLite WAL allows one writer at a time, so every write funnels through one writer task. Writes that arrive while
a transaction is in flight are collected and applied together in the next one: one commit (one fsync with
`synchronous=FULL`) for the whole batch. Each write of a batch of several runs inside its own SAVEPOINT, so one
failing write rolls back alone and the rest of the batch still commits (a batch of one is its own transaction).

Where the writer runs: with `synchronous=NORMAL` (the default) a WAL commit does not wait for the disk, so the
batch is applied on the event loop itself, which saves two thread hand-offs per batch and the GIL contention
between the threads (a batch is capped, and the writer yields between batches). With `FULL` every commit waits
for an fsync, so batches run on a dedicated writer thread and the loop never blocks on the disk. In both modes
the RESTART checkpoint that lets a large WAL start over runs on the writer thread, awaited by the writer task, so
it never blocks the loop and no write runs beside it.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, NamedTuple, TypeVar

from .._errors import StoreClosed
from ._records import NewEvent, StoredEvent

T = TypeVar("T")

WriteFn = Callable[[sqlite3.Connection], tuple[T, Sequence[StoredEvent]]]
"""A write runs in the writer thread; it returns its result and the events it committed (for listeners)."""

_MAX_BATCH = 512


class _Op(NamedTuple):
    """A queued write: a function to run in the transaction and the future of its caller. (A NamedTuple: one is
    built per write.)"""

    fn: WriteFn[Any]
    future: asyncio.Future[Any]


class SessionGone(Exception):
    """Raised by `SeqAllocator.reserve` when the session does not exist (the store turns it into `StaleWrite`)."""


class SeqAllocator:
    """The last seq of each session's log, kept by the writer thread (the only writer of the file).

    A miss reads `MAX(seq)` through the log's index; any rollback forgets everything, so the cache can never
    run ahead of what is committed. Only ever touched from the writer thread.
    """

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def reserve(self, conn: sqlite3.Connection, session_id: str, count: int) -> int:
        """Reserve `count` seqs and return the first; `SessionGone` when the session does not exist."""
        last = self._last.get(session_id)
        if last is None:
            row = conn.execute(
                "SELECT (SELECT 1 FROM sessions WHERE id = ?), (SELECT MAX(seq) FROM events WHERE session_id = ?)",
                (session_id, session_id),
            ).fetchone()
            if row[0] is None:
                raise SessionGone(session_id)
            last = row[1] or 0
        self._last[session_id] = last + count
        return last + 1

    def forget(self, session_id: str) -> None:
        self._last.pop(session_id, None)

    def reset(self) -> None:
        self._last.clear()


class DatabaseInUse(RuntimeError):
    """Another process has this SQLite database open: the writer keeps state that only one process may own."""


def _lock_exclusively(lock_path: str) -> IO[bytes]:
    handle = open(lock_path, "ab")  # noqa: SIM115 - held open for the store's lifetime; closed by close()
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise DatabaseInUse(
            f"{lock_path.removesuffix('.lock')} is in use by another loophost process; a SQLite database has one "
            "owner process (use PostgreSQL for several)"
        ) from exc
    return handle


def connect(path: str, *, synchronous: str, autocheckpoint: bool = True) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("PRAGMA cache_size=-16000")
    conn.execute(f"PRAGMA wal_autocheckpoint={4000 if autocheckpoint else 0}")
    conn.execute(f"PRAGMA journal_size_limit={WAL_RESET_BYTES}")
    return conn


CHECKPOINT_INTERVAL = 0.5
"""Seconds between background PASSIVE WAL checkpoints (they copy frames without blocking anyone)."""
WAL_RESET_BYTES = 64 * 1024 * 1024
"""Past this WAL size the writer runs a RESTART checkpoint after its batch, on the writer thread. Under sustained
writes a PASSIVE checkpoint never lets the WAL start over (new frames keep arriving), so without this the file grows
without bound; after the background passes, few frames are left to copy and the restart is quick."""
WAL_CHECK_EVERY = 8
"""Batches between two looks at the WAL's size (a batch adds at most a few MB: the bound stays about the same)."""


class SQLiteEngine:
    """Owns the connections, the writer thread and the writer task that batches operations."""

    def __init__(self, path: str, *, synchronous: str = "NORMAL", readers: int = 2) -> None:
        self._path = path
        self._synchronous = synchronous
        self._inline = synchronous != "FULL"
        self._writer_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loophost-sqlite-writer")
        self._reader_pool = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="loophost-sqlite-reader")
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._wconn: sqlite3.Connection | None = None
        self._pending: deque[_Op] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[Sequence[StoredEvent]], None]] = []
        self.seqs = SeqAllocator()
        self._closed = False
        self._lock_file: IO[bytes] | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._commits = 0
        self._checkpoint_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loophost-sqlite-checkpoint")

    # lifecycle ---------------------------------------------------------------------------------------------
    async def open(self, migrate: Callable[[sqlite3.Connection], None]) -> None:
        loop = asyncio.get_running_loop()
        self._lock_file = _lock_exclusively(self._path + ".lock")

        def _open() -> None:
            self._wconn = connect(self._path, synchronous=self._synchronous, autocheckpoint=False)
            migrate(self._wconn)

        try:
            if self._inline:
                _open()
            else:
                await loop.run_in_executor(self._writer_pool, _open)
        except BaseException:
            if self._wconn is not None:
                self._wconn.close()
                self._wconn = None
            self._lock_file.close()
            self._lock_file = None
            raise
        self._task = asyncio.create_task(self._run(), name="loophost-sqlite-writer")
        self._checkpointer = asyncio.create_task(self._checkpoint_loop(), name="loophost-sqlite-checkpointer")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            await asyncio.gather(self._checkpointer, return_exceptions=True)
        if self._task is not None:
            self._stopping = True
            self._wake()
            await self._task
        loop = asyncio.get_running_loop()
        if self._wconn is not None:
            if self._inline:
                self._wconn.close()
            else:
                await loop.run_in_executor(self._writer_pool, self._wconn.close)
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        self._writer_pool.shutdown(wait=True)
        self._reader_pool.shutdown(wait=True)
        self._checkpoint_pool.shutdown(wait=True)
        if self._lock_file is not None:
            self._lock_file.close()  # releases the lock
            self._lock_file = None

    def add_listener(self, listener: Callable[[Sequence[StoredEvent]], None]) -> None:
        self._listeners.append(listener)

    # writes ------------------------------------------------------------------------------------------------
    def _wake(self) -> None:
        waiter = self._wakeup
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _submit(self, op: _Op) -> None:
        if self._closed:
            raise StoreClosed("the store is closed")
        self._pending.append(op)
        if self._wakeup is not None:
            self._wake()

    async def write(self, fn: WriteFn[T]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._submit(_Op(fn, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        pending = self._pending
        while True:
            if not pending:
                if self._stopping:
                    return
                self._wakeup = loop.create_future()
                await self._wakeup
                self._wakeup = None
                continue
            count = min(len(pending), _MAX_BATCH)
            batch: list[_Op] = [pending.popleft() for _ in range(count)]
            if self._inline:
                outcomes = self._apply(batch)
            else:
                outcomes = await loop.run_in_executor(self._writer_pool, self._apply, batch)
            self._commits += 1
            committed: list[StoredEvent] = []
            for op, (ok, value) in zip(batch, outcomes, strict=True):
                if ok:
                    committed.extend(value[1])
                if op.future.done():  # the caller was cancelled; the write still happened
                    continue
                if ok:
                    op.future.set_result(value[0])
                else:
                    op.future.set_exception(value)
            # both after COMMIT; the writers are answered first, so a sender's reply does not queue behind the
            # streams that carry the same events
            if committed:
                for listener in self._listeners:
                    listener(committed)
            # looked at every few batches (a stat per commit shows in profiles); on the writer thread in both
            # modes, since a reset may take a while
            if self._commits % WAL_CHECK_EVERY == 0 and self._wal_bytes() > WAL_RESET_BYTES:
                await loop.run_in_executor(self._writer_pool, self._reset_wal)
            if self._inline:
                await asyncio.sleep(0)  # let the callers just answered (and everyone else) run before the next batch

    async def _checkpoint_loop(self) -> None:
        """Move the WAL into the database file in the background (PASSIVE: never waits for, or blocks, anyone)."""
        loop = asyncio.get_running_loop()
        conn = await loop.run_in_executor(
            self._checkpoint_pool, lambda: connect(self._path, synchronous=self._synchronous)
        )
        seen = 0
        try:
            while True:
                await asyncio.sleep(CHECKPOINT_INTERVAL)
                if self._commits != seen:
                    seen = self._commits
                    await loop.run_in_executor(
                        self._checkpoint_pool, lambda: conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    )
        finally:
            await asyncio.shield(loop.run_in_executor(self._checkpoint_pool, conn.close))

    def _wal_bytes(self) -> int:
        try:
            return os.path.getsize(self._path + "-wal")
        except OSError:
            return 0

    def _reset_wal(self) -> None:
        """Checkpoint what is left and let the WAL start over (truncated to `journal_size_limit`)."""
        assert self._wconn is not None
        self._wconn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()

    def _apply(self, batch: list[_Op]) -> list[tuple[bool, Any]]:
        conn = self._wconn
        assert conn is not None
        if len(batch) == 1:  # nothing to keep apart: the transaction is the operation's savepoint
            return [self._apply_one(conn, batch[0])]
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in batch:
                conn.execute("SAVEPOINT op")
                try:
                    outcomes.append((True, op.fn(conn)))
                    conn.execute("RELEASE op")
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    self.seqs.reset()
                    outcomes.append((False, exc))
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.seqs.reset()
            return [(False, exc) for _ in batch]
        return outcomes

    def _apply_one(self, conn: sqlite3.Connection, op: _Op) -> tuple[bool, Any]:
        try:
            conn.execute("BEGIN IMMEDIATE")
            result = op.fn(conn)
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.seqs.reset()
            return False, exc
        return True, result

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


def append_rows(
    conn: sqlite3.Connection, seqs: SeqAllocator, session_id: str, events: Sequence[NewEvent]
) -> list[StoredEvent]:
    """Reserve seqs and insert the events; `SessionGone` if the session does not exist."""
    if not events:
        return []
    first = seqs.reserve(conn, session_id, len(events))
    stored = [StoredEvent(session_id, first + i, e.id, e.type, e.processed_at, e.body) for i, e in enumerate(events)]
    conn.executemany("INSERT INTO events (session_id, seq, id, type, processed_at, body) VALUES (?,?,?,?,?,?)", stored)
    return stored
