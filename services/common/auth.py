"""Caller credentials: API keys kept only as SHA-256 hashes, compared in constant time, and a
limit on failed attempts per client address and per credential prefix.

A valid credential is always accepted: the limit refuses only failing attempts, so one caller's
guessing (or a proxy's many callers sharing an address) never locks out another's valid key.
The limit bounds the cost of guessing and makes it visible; the keys' entropy is what makes
guessing hopeless (generate them with `openssl rand -hex 32`).
"""

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
    """Constant-time comparison of an admin credential; no expected token means no access.

    The digests are compared, not the tokens: `compare_digest` returns at once when the lengths
    differ, which would tell a guesser the token's length.
    """
    if not presented or not expected:
        return False
    return hmac.compare_digest(
        hashlib.sha256(presented.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


PREFIX_CHARS = 6
"""A presented credential's first characters: guesses of one key from many addresses share them."""


def attempt_scopes(client: str, presented: str | None) -> tuple[str, ...]:
    """What a failed attempt counts against: its address, and its credential's prefix if any."""
    if presented:
        return (f"address {client}", f"prefix {presented[:PREFIX_CHARS]}")
    return (f"address {client}",)


class FailureLimiter:
    """Refuses failing attempts in a scope (an address, a credential prefix) once it has seen
    `limit` of them within `window` seconds; refused attempts count too, so a guesser who keeps
    going stays refused. Callers ask it only about attempts whose credential failed.

    Memory is bounded: at most `max_clients` scopes are tracked, the oldest forgotten first, and
    each keeps its last `limit` failures only.
    """

    def __init__(self, *, limit: int = 10, window: float = 60.0, max_clients: int = 10_000) -> None:
        self._limit = limit
        self._window = window
        self._max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, scope: str, now: float) -> deque[float]:
        attempts = self._failures.get(scope)
        if attempts is None:
            return deque(maxlen=self._limit)
        while attempts and now - attempts[0] > self._window:
            attempts.popleft()
        return attempts

    def blocked(self, *scopes: str, now: float | None = None) -> bool:
        """Any of `scopes` has reached the limit."""
        at = time.monotonic() if now is None else now
        return any(len(self._recent(scope, at)) >= self._limit for scope in scopes)

    def failed(self, *scopes: str, now: float | None = None) -> None:
        at = time.monotonic() if now is None else now
        for scope in scopes:
            attempts = self._recent(scope, at)
            attempts.append(at)
            self._failures[scope] = attempts
            self._failures.move_to_end(scope)
        while len(self._failures) > self._max_clients:
            self._failures.popitem(last=False)
