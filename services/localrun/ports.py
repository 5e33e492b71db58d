"""Loopback ports for a run's HTTP services, held from the moment they are chosen."""

from __future__ import annotations

import socket
from contextlib import AsyncExitStack, ExitStack


def hold_port(stack: ExitStack | AsyncExitStack, host: str = "127.0.0.1") -> int:
    """A free loopback port, kept bound (SO_REUSEADDR, never listening) until `stack` closes.

    A port that is only probed and let go can be taken by anything else in the process (another
    server binding port 0) before its service binds it, seconds later, after its Kafka clients
    start. A held port refuses every other bind; the service's own bind still succeeds, since
    asyncio sets SO_REUSEADDR on POSIX and sockets that all set it may share a port until one
    listens.
    """
    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port: int = sock.getsockname()[1]
    return port
