"""A throwaway PostgreSQL server for the tests and the benchmarks: `initdb` into a temporary directory, `postgres`
listening on a unix socket and a free loopback port, and a fresh database for whoever asks.

Why a real server: what the PostgreSQL store promises (gap-free seqs under writers on several nodes, two nodes
migrating the schema at once) are properties of PostgreSQL's locking, which a fake would only assume. The binaries
are the distribution's (`/usr/lib/postgresql/*/bin`; `make test` installs the `postgresql` package when they are
missing, see scripts/install-postgres.sh); nothing is configured system-wide. As root the server runs as the
`postgres` user (PostgreSQL refuses to run as root), and in every case it gets SIGINT (a fast shutdown) when the
process that started it dies, so a killed test run leaves no server behind.

Plain Python, no pytest: `tests/conftest.py` wraps it in fixtures and `bench/` imports it too.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

SUPERUSER = "postgres"
START_TIMEOUT = 60.0


class PostgresUnavailable(RuntimeError):
    """PostgreSQL could not be found or started here; the message says why and what to do."""


def find_bindir() -> Path:
    """The directory of `initdb` and `postgres`: `LOOPHOST_PG_BINDIR`, else the newest `/usr/lib/postgresql/*/bin`."""
    configured = os.environ.get("LOOPHOST_PG_BINDIR")
    candidates = [Path(configured)] if configured else []
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(versions)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "postgres").is_file():
            return bindir
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, postgres) under /usr/lib/postgresql/*/bin or LOOPHOST_PG_BINDIR; "
        "install the distribution's package (`make test` does: scripts/install-postgres.sh)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One running `postgres` whose cluster lives in a temporary directory removed by `stop()`."""

    def __init__(
        self, root: Path, port: int, process: subprocess.Popen[bytes], launch: Callable[[], subprocess.Popen[bytes]]
    ) -> None:
        self.root = root
        self.port = port
        self.socket_dir = root / "sock"
        self._process = process
        self._launch = launch
        self._names = itertools.count(1)

    @classmethod
    def start(cls, *, max_connections: int = 300) -> PostgresServer:
        """initdb and start a server; `PostgresUnavailable` with the server's own words when that fails."""
        bindir = find_bindir()
        root = Path(tempfile.mkdtemp(prefix="loophost-pg-"))
        try:
            owner = _owner_prefix(root)
            (root / "sock").mkdir()
            _chown_tree(root)
            initdb = subprocess.run(
                [
                    *owner,
                    str(bindir / "initdb"),
                    "-D",
                    str(root / "data"),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                cwd=root,
                capture_output=True,
                text=True,
                check=False,
            )
            if initdb.returncode != 0:
                raise PostgresUnavailable(f"initdb failed ({initdb.returncode}): {initdb.stdout}{initdb.stderr}")
            last_error = ""
            for _ in range(3):  # a free port may be taken between the probe and the server's bind
                port = _free_port()
                launch = functools.partial(_launch, owner, bindir, root, port, max_connections)
                server = cls(root, port, launch(), launch)
                try:
                    server._wait_ready()
                    return server
                except PostgresUnavailable as exc:
                    server._terminate()
                    last_error = str(exc)
                    if "could not bind" not in last_error and "could not create" not in last_error:
                        break
            raise PostgresUnavailable(last_error)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    def url(self, database: str = "postgres", *, tcp: bool = False) -> str:
        """A libpq URL for `database`: over the unix socket, or over loopback TCP with `tcp=True`."""
        if tcp:
            return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}&port={self.port}"

    def create_database(self, prefix: str = "loophost", *, icu_locale: str | None = None) -> str:
        """A new, empty database (a copy of template0), sorting text by bytes, or as `icu_locale` (`en-US`)
        does; its URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        options = f" LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}'" if icu_locale else ""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            if conn.info.server_version >= 150000:
                options += " STRATEGY FILE_COPY"  # copying a small template's files beats logging every page
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0{options}'.encode())
        return self.url(name)

    def halt(self) -> None:
        """Fast shutdown, keeping the cluster: the database is down until `restart`."""
        self._terminate()

    def restart(self) -> None:
        """Start the halted server again, on the same port and data."""
        self._process = self._launch()
        self._wait_ready()

    def stop(self) -> None:
        """Fast shutdown (open connections are ended), then remove the cluster."""
        self._terminate()
        shutil.rmtree(self.root, ignore_errors=True)

    def _terminate(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._process.poll() is not None:
                raise PostgresUnavailable(f"postgres exited with {self._process.returncode}: {self._log()}")
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PostgresUnavailable(f"postgres did not accept connections: {exc}; {self._log()}") from exc
            time.sleep(0.05)

    def _log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "postgres.log").read_text(errors="replace")[-4000:]
        return "(no log)"


def _owner_prefix(root: Path) -> list[str]:
    """The command prefix that runs the server's processes: as `postgres` when we are root, and killed (SIGINT)
    when their parent dies."""
    prefix = ["setpriv", "--pdeathsig", "SIGINT"]
    if shutil.which("setpriv") is None:
        prefix = []
    if os.geteuid() != 0:
        return [*prefix, "--"] if prefix else []
    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError as exc:
        raise PostgresUnavailable("running as root and there is no `postgres` user to run the server as") from exc
    if not prefix:
        return ["runuser", "-u", SUPERUSER, "--"]
    return [*prefix, f"--reuid={SUPERUSER}", f"--regid={SUPERUSER}", "--init-groups", "--"]


def _chown_tree(root: Path) -> None:
    if os.geteuid() != 0:
        return
    user = pwd.getpwnam(SUPERUSER)
    for path in (root, *root.rglob("*")):
        os.chown(path, user.pw_uid, user.pw_gid)


def _launch(owner: list[str], bindir: Path, root: Path, port: int, max_connections: int) -> subprocess.Popen[bytes]:
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(root / "sock"),
        "max_connections": str(max_connections),
        # a throwaway cluster: durability against power loss buys nothing here
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "shared_buffers": "64MB",
        "log_min_messages": "warning",
    }
    args = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
    log = os.open(root / "postgres.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        return subprocess.Popen(
            [*owner, str(bindir / "postgres"), "-D", str(root / "data"), *args],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the test run, which stops the server itself
        )
    finally:
        os.close(log)
