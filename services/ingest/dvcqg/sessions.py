"""Session tokens of the portal-compatible intake: HMAC-SHA256 signed, with an expiry.

Stateless: any replica that shares the secret honours a token, and a restart keeps sessions. A
token names its account and the fingerprint of the account's password hash, so removing the
account or changing its password ends its sessions at once. Pure apart from the clock passed in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from services.ingest.dvcqg.accounts import Account, AccountBook
from services.ingest.errors import SessionRefusedError

_VERSION = 1


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class SessionKeys:
    secret: bytes
    ttl: timedelta

    @classmethod
    def random(cls, ttl: timedelta) -> SessionKeys:
        return cls(secrets.token_bytes(32), ttl)

    def _sign(self, payload: str) -> str:
        return _encode(hmac.new(self.secret, payload.encode(), hashlib.sha256).digest())

    def issue(self, account: Account, *, now: datetime) -> str:
        claims = {
            "v": _VERSION,
            "u": account.username,
            "f": account.fingerprint,
            "exp": int((now + self.ttl).timestamp()),
            "n": secrets.token_hex(8),
        }
        payload = _encode(orjson.dumps(claims))
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: object, accounts: AccountBook, *, now: datetime) -> Account:
        """The session's account; raises `SessionRefusedError` saying why not."""
        if not isinstance(token, str) or not token:
            raise SessionRefusedError("no session: log in first (/api/auth/login)")
        payload, _, signature = token.partition(".")
        if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            raise SessionRefusedError("the session is not one this service issued")
        try:
            claims = orjson.loads(_decode(payload))
            username, tag, expires = claims["u"], claims["f"], int(claims["exp"])
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise SessionRefusedError("the session is not one this service issued") from None
        if now.timestamp() >= expires:
            raise SessionRefusedError("the session has expired: log in again")
        account = accounts.get(username) if isinstance(username, str) else None
        if account is None or account.fingerprint != tag:
            raise SessionRefusedError("the session's account changed: log in again")
        return account
