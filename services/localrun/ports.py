"""Loopback ports for a run's HTTP services, held from the moment they are chosen."""

from __future__ import annotations

import socket
from types import TracebackType


class HeldPorts:
    """Free loopback ports, each kept bound (SO_REUSEADDR, never listening) until `close`.

    A port that is only probed and let go can be taken by anything else in the process (another
    server binding port 0) before its service binds it, seconds later, after its Kafka clients
    start. A held port refuses every other bind; the service's own bind still succeeds, since
    asyncio sets SO_REUSEADDR on POSIX and sockets that all set it may share a port until one
    listens.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._held: list[socket.socket] = []

    def take(self) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, 0))
        except OSError:
            sock.close()
            raise
        self._held.append(sock)
        port: int = sock.getsockname()[1]
        return port

    def close(self) -> None:
        for sock in self._held:
            sock.close()
        self._held.clear()

    def __enter__(self) -> HeldPorts:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
