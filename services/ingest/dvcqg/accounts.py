"""Logins of the portal-compatible intake: scrypt password hashes, each account bound to the
agency codes (`madonvi`) it may write.

Only the hash is configured (`govsync dvcqg-account` prints an entry). scrypt is in the standard
library and memory-hard; its cost (about 16 MiB and tens of milliseconds per check) is paid once
per login, since adapters reuse the session token until it is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from services.ingest.dossiers.normalise import AGENCY_CODE
from services.ingest.settings import DvcqgAccount

SCHEME = "scrypt"
# OWASP's minimum for scrypt: N=2^14 (16 MiB with r=8), p=1.
_N, _R, _P, _LENGTH = 2**14, 8, 1, 32
_MAX_MEMORY = 64 * 1024 * 1024


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash`, the form an account's `password_hash` takes."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_LENGTH, maxmem=_MAX_MEMORY
    )
    return f"{SCHEME}${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored`; a malformed `stored` never matches."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(digest, validate=True)
        computed = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=_MAX_MEMORY,
        )
    except ValueError:
        return False
    return hmac.compare_digest(computed, expected)


def fingerprint(password_hash: str) -> str:
    """A short tag of the stored hash, carried in session tokens: a new password ends them."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def account_source(username: str, entry: DvcqgAccount) -> str:
    """The CloudEvents `source` of what the account writes."""
    return entry.source or f"urn:govsync:dvcqg:{username}"


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    agencies: frozenset[str]
    source: str
    fingerprint: str


class AccountBook:
    """The configured accounts; checks a login in about the same time whether or not it exists."""

    def __init__(self, accounts: Mapping[str, DvcqgAccount]) -> None:
        self._hashes: dict[str, str] = {}
        self._accounts: dict[str, Account] = {}
        for username, entry in accounts.items():
            bad = sorted(code for code in entry.agencies if not AGENCY_CODE.match(code))
            if bad:
                raise ValueError(
                    f"dvcqg account {username!r}: agency codes not of the form 000.00.00.G22: {bad}"
                )
            self._hashes[username] = entry.password_hash
            self._accounts[username] = Account(
                username=username,
                agencies=entry.agencies,
                source=account_source(username, entry),
                fingerprint=fingerprint(entry.password_hash),
            )
        # Checked against for unknown usernames, so their answer costs the same scrypt.
        self._decoy = hash_password(secrets.token_hex(16))

    def __len__(self) -> int:
        return len(self._accounts)

    def get(self, username: str) -> Account | None:
        return self._accounts.get(username)

    def authenticate(self, username: str, password: str) -> Account | None:
        """The account if the password matches (CPU-bound: call it off the event loop)."""
        stored = self._hashes.get(username)
        matched = verify_password(password, stored or self._decoy)
        return self._accounts[username] if matched and stored is not None else None
