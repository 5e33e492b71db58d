"""A real PostgreSQL server for the tests, and a fresh database per test on it or on SQLite.

Order: `GOVSYNC_TEST_DATABASE_URL` (a server to use as it is: each test creates its own
database there), then testcontainers' PostgreSQL where a Docker engine answers, then Debian's
`postgresql` binaries (`/usr/lib/postgresql/*/bin`) started in a temporary directory, as the
`postgres` user when the tests run as root (CI does: the server refuses to run as root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.broker import _docker_available


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("postgres")
    return Path(on_path).parent if on_path else None


@contextlib.contextmanager
def _debian_server(bin_dir: Path) -> Iterator[str]:
    as_root = os.geteuid() == 0
    user: dict[str, Any] = {"user": "postgres", "group": "postgres"} if as_root else {}
    with tempfile.TemporaryDirectory(prefix="govsync-pg-") as tmp:
        data, sockets = Path(tmp) / "data", Path(tmp) / "sockets"
        sockets.mkdir()
        if as_root:
            shutil.chown(tmp, "postgres", "postgres")
            shutil.chown(sockets, "postgres", "postgres")
        subprocess.run(  # noqa: S603 - fixed arguments
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--no-sync"],
            check=True, capture_output=True, **user,
        )  # fmt: skip
        port = _free_port()
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115 - closed below
        server = subprocess.Popen(  # noqa: S603 - fixed arguments
            [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sockets),
             "-h", "127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, **user,
        )  # fmt: skip
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        try:
            _wait_ready(url, server)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            log.close()


def _wait_ready(url: str, server: subprocess.Popen[bytes], within: float = 60.0) -> None:
    engine = create_engine(url)
    deadline = time.monotonic() + within
    try:
        while True:
            if server.poll() is not None:
                raise RuntimeError("the test PostgreSQL server exited at start")
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return
            except Exception:  # not up yet; re-raised at the deadline
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        engine.dispose()


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server's maintenance database, for the whole session."""
    external = os.environ.get("GOVSYNC_TEST_DATABASE_URL")
    if external:
        yield make_url(external).set(drivername="postgresql+psycopg").render_as_string(False)
        return
    if _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver="psycopg") as container:
            yield container.get_connection_url()
        return
    bin_dir = _binaries()
    if bin_dir is None:
        raise RuntimeError(
            "no PostgreSQL for the tests: set GOVSYNC_TEST_DATABASE_URL, run Docker, or "
            "apt-get install -y postgresql"
        )
    with _debian_server(bin_dir) as url:
        yield url


@contextlib.contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server, dropped afterwards."""
    name = f"govsync_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(server_url).set(database=name).render_as_string(False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
