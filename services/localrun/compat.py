"""A loopback relay in front of the embedded broker so that older librdkafka clients can use it.

Tansu answers ApiVersions v3 with the optional tagged fields of KIP-511/584 (supported and
finalised features). librdkafka before 2.x skips tagged fields one byte short, loses its place
and fails with "ApiVersionRequest failed: Local: Read underflow" (seen with Debian 12's kcat on
librdkafka 2.0.2; librdkafka 2.16.1, kafkajs and aiokafka read them well). The relay passes every
byte through unchanged except those tagged fields of ApiVersions answers, which it drops: they
are optional, and no client needs broker features from a local run.

Threads, not the run's event loop: the broker is started and stopped from synchronous code, and
the relay must outlive the services' last commits just as the broker does.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable

API_VERSIONS = 18
_FIRST_FLEXIBLE = 3
"""ApiVersions v3 is the first version whose answer may carry tagged fields."""


def _uvarint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _skip_tags(data: bytes, at: int) -> int:
    count, at = _uvarint(data, at)
    for _ in range(count):
        _, at = _uvarint(data, at)
        size, at = _uvarint(data, at)
        at += size
    return at


def strip_api_versions_tags(frame: bytes) -> bytes:
    """An ApiVersions v3+ answer (correlation id onwards) without its top-level tagged fields.

    Layout: correlation id (int32; the header of this answer is v0 at every version), error code
    (int16), api keys (compact array of key, min, max and a tag buffer each), throttle time
    (int32), then the tag buffer replaced by an empty one. Anything unreadable is left as it is.
    """
    try:
        at = 4 + 2
        entries, at = _uvarint(frame, at)
        for _ in range(max(0, entries - 1)):
            at = _skip_tags(frame, at + 6)
        at += 4
        if at > len(frame):
            return frame
        _skip_tags(frame, at)  # only to check it is what it should be
    except (IndexError, ValueError):
        return frame
    return frame[:at] + b"\x00"


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks, missing = [], size
    while missing:
        chunk = sock.recv(min(missing, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def _frame(sock: socket.socket) -> bytes | None:
    """One size-prefixed Kafka frame (without its size), or None at the end of the stream."""
    head = _recv_exact(sock, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">i", head)
    return _recv_exact(sock, size) if size > 0 else b""


class _Connection:
    def __init__(
        self, client: socket.socket, upstream: socket.socket, forget: Callable[[_Connection], None]
    ) -> None:
        self._client = client
        self._upstream = upstream
        self._forget = forget
        self._versions: dict[int, int] = {}
        """Correlation id of each ApiVersions request in flight, to its version."""
        self._lock = threading.Lock()

    def close(self) -> None:
        for sock in (self._client, self._upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._forget(self)

    def requests(self) -> None:
        try:
            while (frame := _frame(self._client)) is not None:
                if len(frame) >= 8:
                    key, version, correlation = struct.unpack(">hhi", frame[:8])
                    if key == API_VERSIONS:
                        with self._lock:
                            self._versions[correlation] = version
                self._upstream.sendall(struct.pack(">i", len(frame)) + frame)
        except OSError:
            pass
        finally:
            self.close()

    def responses(self) -> None:
        try:
            while (frame := _frame(self._upstream)) is not None:
                if len(frame) >= 4:
                    (correlation,) = struct.unpack(">i", frame[:4])
                    with self._lock:
                        version = self._versions.pop(correlation, None)
                    if version is not None and version >= _FIRST_FLEXIBLE:
                        frame = strip_api_versions_tags(frame)
                self._client.sendall(struct.pack(">i", len(frame)) + frame)
        except OSError:
            pass
        finally:
            self.close()


class ApiVersionsRelay:
    """Listens on `port` and relays each connection to the broker on `upstream_port`."""

    def __init__(self, port: int, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.port = port
        self._upstream = (host, upstream_port)
        self._server = socket.create_server((host, port), backlog=128, reuse_port=False)
        self._connections: set[_Connection] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="kafka-relay", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # the server socket was closed: stopping
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(client, upstream, self._forget)
            with self._lock:
                self._connections.add(connection)
            for work in (connection.requests, connection.responses):
                threading.Thread(target=work, name="kafka-relay-conn", daemon=True).start()

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.discard(connection)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            connection.close()
        self._thread.join(timeout=5)
