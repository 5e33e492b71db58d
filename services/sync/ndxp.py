"""The NDXP gateway client (DOMAIN.md §4): client-credentials token and the status record post.

Gateway error codes: 100 authentication (the token is fetched again once), 101 IP not allowed
(an operator must act: retried, never dead-lettered), 106 wrong agency id, 200 incomplete record,
201 not found, 302 wrong data type and 500 incorrect data (the record is refused: dead-lettered).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from schemas.dossier import DossierRecord
from services.common.masking import mask_personal_data
from services.sync.errors import (
    AuthenticationError,
    DestinationUnavailableError,
    RejectedError,
)
from services.sync.mapping import idempotency_key, ndxp_status
from services.sync.metrics import SyncMetrics
from services.sync.settings import NdxpSettings
from services.sync.transport import json_object, post

TARGET = "ndxp"
AUTH_CODES = frozenset({100})
OPERATOR_CODES = frozenset({101})
REJECTED_CODES = frozenset({106, 200, 201, 302, 500})
_UNAUTHORISED = 401
_FORBIDDEN = 403


def _error_code(body: dict[str, Any]) -> int | None:
    for name in ("errorCode", "error_code", "code"):
        value = body.get(name)
        if value is not None:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None


class NdxpClient:
    """Posts status records to NDXP; `send` is the `Destination` protocol of `delivery.py`."""

    def __init__(
        self,
        settings: NdxpSettings,
        client: httpx.AsyncClient,
        metrics: SyncMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._client = client
        self._metrics = metrics
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.token_obtained = False

    async def fetch_token(self) -> str:
        """Ask for a new token now and cache it until shortly before it expires."""
        settings = self._settings
        response = await post(
            self._client,
            settings.token_path,
            metrics=self._metrics,
            service="token",
            data={
                "grant_type": "client_credentials",
                "client_id": settings.client_id,
                "client_secret": settings.client_secret.get_secret_value(),
            },
        )
        if not response.is_success:
            self._metrics.request("token", "auth_failed", 0.0)
            raise AuthenticationError(f"token: HTTP {response.status_code}")
        body = json_object(response, "token")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            self._metrics.request("token", "protocol", 0.0)
            raise AuthenticationError("token: no access_token in the answer")
        try:
            lifetime = float(body.get("expires_in", 300))
        except (TypeError, ValueError):
            lifetime = 300.0
        margin = min(settings.token_margin_seconds, lifetime / 2)
        self._token = token
        self._expires_at = self._clock() + lifetime - margin
        self.token_obtained = True
        self._metrics.request("token", "ok", 0.0)
        return token

    async def _current_token(self) -> str:
        if self._token is not None and self._clock() < self._expires_at:
            return self._token
        async with self._lock:
            if self._token is not None and self._clock() < self._expires_at:
                return self._token
            return await self.fetch_token()

    def _drop_token(self, token: str) -> None:
        if self._token == token:
            self._token = None

    async def send(self, record: DossierRecord, *, known: bool) -> None:
        """Post the record's status; `known` does not matter to NDXP (the post is an upsert)."""
        del known
        body = json.dumps(ndxp_status(record), ensure_ascii=False).encode()
        key = idempotency_key(record.dossier_code, record.revision, TARGET)
        for attempt in range(2):
            token = await self._current_token()
            if await self._post(body, key, token):
                return
            self._drop_token(token)
            if attempt:
                raise AuthenticationError("status: token refused after a fresh one")

    async def _post(self, body: bytes, key: str, token: str) -> bool:
        """True when accepted, False when the token was refused; raises for everything else."""
        started = self._clock()
        response = await post(
            self._client,
            self._settings.status_path,
            metrics=self._metrics,
            service="status",
            content=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Idempotency-Key": key,
            },
        )
        elapsed = self._clock() - started
        try:
            answer = json_object(response, "status")
        except DestinationUnavailableError:
            answer = {}
        code = _error_code(answer)
        if response.status_code == _UNAUTHORISED or code in AUTH_CODES:
            self._metrics.request("status", "auth_failed", elapsed)
            return False
        if response.is_success and code in (None, 0):
            self._metrics.request("status", "ok", elapsed)
            return True
        if code in OPERATOR_CODES or response.status_code == _FORBIDDEN:
            self._metrics.request("status", "auth_failed", elapsed)
            raise AuthenticationError(f"status: gateway refused the caller (code {code})")
        self._metrics.request("status", "rejected", elapsed)
        text = json.dumps(answer, ensure_ascii=False) if answer else response.text
        raise RejectedError(
            f"status: HTTP {response.status_code}, code {code}",
            answer=mask_personal_data(text[:2000]),
        )

    async def aclose(self) -> None:
        """Nothing is batched for NDXP; present for symmetry with the portal client."""
