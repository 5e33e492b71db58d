"""Caller credentials: API keys kept only as SHA-256 hashes, compared in constant time, and a
limit on failed attempts per client address."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping


def hash_key(key: str) -> str:
    """The form in which a key is stored in configuration (`GOVSYNC_API_KEYS`)."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """Maps each key's hash to the CloudEvents sources its holder may publish.

    A revoked key is simply removed from configuration. Every stored hash is compared, each in
    constant time, so the answer's timing does not tell which entry nearly matched.
    """

    def __init__(self, hashes: Mapping[str, Iterable[str]]) -> None:
        self._entries = [(h.lower().encode(), frozenset(sources)) for h, sources in hashes.items()]

    def sources_for(self, key: str) -> frozenset[str] | None:
        presented = hash_key(key).encode()
        found: frozenset[str] | None = None
        for stored, sources in self._entries:
            if hmac.compare_digest(stored, presented):
                found = sources
        return found


def token_matches(presented: str | None, expected: str | None) -> bool:
    """Constant-time comparison of an admin credential; no expected token means no access."""
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


class FailureLimiter:
    """Refuses a client after `limit` failed attempts within `window` seconds.

    Memory is bounded: at most `max_clients` addresses are tracked, the oldest forgotten first.
    """

    def __init__(self, *, limit: int = 10, window: float = 60.0, max_clients: int = 10_000) -> None:
        self._limit = limit
        self._window = window
        self._max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str, now: float) -> deque[float]:
        attempts = self._failures.get(client)
        if attempts is None:
            return deque()
        while attempts and now - attempts[0] > self._window:
            attempts.popleft()
        return attempts

    def blocked(self, client: str, *, now: float | None = None) -> bool:
        return len(self._recent(client, time.monotonic() if now is None else now)) >= self._limit

    def failed(self, client: str, *, now: float | None = None) -> None:
        at = time.monotonic() if now is None else now
        attempts = self._recent(client, at)
        attempts.append(at)
        self._failures[client] = attempts
        self._failures.move_to_end(client)
        while len(self._failures) > self._max_clients:
            self._failures.popitem(last=False)
