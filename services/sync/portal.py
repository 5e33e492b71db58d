"""The Public Service Portal client (DOMAIN.md §1): session, batched DongBoHoSoMC, progress, lookup.

Concurrent `send` calls for the same service, `isUpdating` and agency are gathered into one
request of up to `batch_size` items, flushed when full or after `linger_ms`. A batch is all or
nothing at the portal; when it is refused, its items are sent one by one so that only the
offending dossier is dead-lettered. "đã tồn tại" on a create and "không tồn tại" on an update
flip `isUpdating` once. The session is shared, refreshed once when refused, and never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from schemas.dossier import DossierRecord
from services.common.masking import mask_personal_data
from services.sync.errors import (
    AuthenticationError,
    DestinationUnavailableError,
    DossierExistsError,
    DossierMissingError,
    PermanentError,
    RejectedError,
    SessionExpiredError,
    SyncError,
    TransientError,
)
from services.sync.mapping import (
    SERVICE_DOSSIER,
    SERVICE_LOOKUP,
    Item,
    idempotency_key,
    portal_item,
    portal_service,
)
from services.sync.metrics import SyncMetrics
from services.sync.settings import PortalSettings
from services.sync.transport import json_object, post

TARGET = "portal"
REVISIONS_HEADER = "Govsync-Revisions"
_UNAUTHORISED = frozenset({401, 403})
_EXISTS = ("đã tồn tại", "da ton tai")
_MISSING = ("không tồn tại", "khong ton tai", "chưa tồn tại")


def _normalised(message: object) -> str:
    return unicodedata.normalize("NFC", str(message or "")).casefold()


@dataclass(frozen=True, slots=True)
class _BatchKey:
    service: str
    updating: bool
    madonvi: str


@dataclass(slots=True)
class _Entry:
    code: str
    revision: int
    item: Item
    future: asyncio.Future[None]


@dataclass(slots=True)
class _Batch:
    entries: list[_Entry] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


def _copy(error: TransientError) -> TransientError:
    # One exception object per waiter: raising a shared one from many tasks tangles tracebacks.
    clone = type(error)(str(error), retry_after=error.retry_after)
    clone.__cause__ = error.__cause__
    return clone


class PortalClient:
    """Sends records to the portal; `send` is the `Destination` protocol of `delivery.py`."""

    def __init__(
        self, settings: PortalSettings, client: httpx.AsyncClient, metrics: SyncMetrics
    ) -> None:
        self._settings = settings
        self._client = client
        self._metrics = metrics
        self._session: str | None = None
        self._login_lock = asyncio.Lock()
        self._batches: dict[_BatchKey, _Batch] = {}
        self._flushing: set[asyncio.Task[None]] = set()
        self.logged_in = False

    # --- session ---------------------------------------------------------------------------

    async def login(self) -> str:
        """Log in now and keep the session; raises `AuthenticationError` if refused."""
        settings = self._settings
        response = await post(
            self._client,
            settings.auth_path,
            metrics=self._metrics,
            service="login",
            json={"username": settings.username, "password": settings.password.get_secret_value()},
            headers={"dstcode": settings.dstcode, "Content-Type": "application/json"},
        )
        if response.status_code in _UNAUTHORISED:
            self._metrics.request("login", "auth_failed", 0.0)
            raise AuthenticationError(f"login: HTTP {response.status_code}")
        body = json_object(response, "login")
        session = body.get("session")
        if (
            str(body.get("error_code")).strip() != "0"
            or not isinstance(session, str)
            or not session
        ):
            self._metrics.request("login", "auth_failed", 0.0)
            raise AuthenticationError(f"login refused (error_code {body.get('error_code')})")
        self._metrics.request("login", "ok", 0.0)
        self._session = session
        self.logged_in = True
        return session

    async def _current_session(self) -> str:
        if self._session is not None:
            return self._session
        async with self._login_lock:
            if self._session is not None:
                return self._session
            return await self.login()

    def _drop_session(self, session: str) -> None:
        if self._session == session:
            self._session = None

    # --- one call --------------------------------------------------------------------------

    async def call(
        self,
        path: str,
        service: str,
        data: Sequence[Item] | dict[str, Any],
        *,
        madonvi: str,
        updating: bool = False,
        key: str | None = None,
        revisions: Sequence[int] = (),
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One envelope call; logs in again once if the session is refused."""
        for attempt in range(2):
            session = await self._current_session()
            envelope: dict[str, Any] = {
                "session": session,
                "madonvi": madonvi,
                "service": service,
                "isUpdating": "True" if updating else "False",
                "data": data,
            } | (extra or {})
            headers = {"dstcode": self._settings.dstcode, "Content-Type": "application/json"}
            if key is not None:
                headers["Idempotency-Key"] = key
            if revisions:
                headers[REVISIONS_HEADER] = ",".join(str(r) for r in revisions)
            try:
                return await self._exchange(path, service, envelope, headers)
            except SessionExpiredError:
                self._drop_session(session)
                if attempt:
                    raise AuthenticationError(f"{service}: session refused after login") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(
        self, path: str, service: str, envelope: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await post(
            self._client,
            path,
            metrics=self._metrics,
            service=service,
            content=json.dumps(envelope, ensure_ascii=False).encode(),
            headers=headers,
        )
        elapsed = loop.time() - started
        if response.status_code in _UNAUTHORISED:
            self._metrics.request(service, "auth_failed", elapsed)
            raise SessionExpiredError(service)
        try:
            body = json_object(response, service)
        except DestinationUnavailableError:
            self._metrics.request(service, "protocol", elapsed)
            if response.is_success:
                raise
            raise RejectedError(
                f"{service}: HTTP {response.status_code}",
                answer=mask_personal_data(response.text[:1000]),
            ) from None
        code = str(body.get("error_code", "")).strip()
        if code == "0" and response.is_success:
            self._metrics.request(service, "ok", elapsed)
            return body
        message = _normalised(body.get("message"))
        answer = mask_personal_data(json.dumps(body, ensure_ascii=False)[:2000])
        settings = self._settings
        if any(text in message for text in _EXISTS):
            self._metrics.request(service, "rejected", elapsed)
            raise DossierExistsError(service)
        if any(text in message for text in _MISSING):
            self._metrics.request(service, "rejected", elapsed)
            raise DossierMissingError(service)
        if code in settings.session_error_codes:
            self._metrics.request(service, "auth_failed", elapsed)
            raise SessionExpiredError(service)
        if code in settings.retryable_error_codes:
            self._metrics.request(service, "unavailable", elapsed)
            raise DestinationUnavailableError(f"{service}: error_code {code}")
        self._metrics.request(service, "rejected", elapsed)
        raise RejectedError(f"{service}: error_code {code or '?'}", answer=answer)

    # --- lookup ----------------------------------------------------------------------------

    async def exists(self, code: str, madonvi: str | None = None) -> bool:
        """TraCuuHoSo: whether the portal already has the dossier."""
        body = await self.call(
            self._settings.share_path,
            SERVICE_LOOKUP,
            {"mahoso": code},
            madonvi=madonvi or self._settings.madonvi,
            extra={"mahoso": code},
        )
        result = body.get("result")
        return bool(result)

    async def holds(self, record: DossierRecord) -> bool:
        """Whether the portal holds `record`'s dossier (the step gate's question)."""
        try:
            return await self.exists(record.dossier_code, record.agency)
        except DossierMissingError:
            return False
        except DossierExistsError:
            return True

    # --- batched sending -------------------------------------------------------------------

    async def send(self, record: DossierRecord, *, known: bool) -> None:
        """Deliver one record (batched with others); raises `TransientError`/`PermanentError`."""
        service = portal_service(record)
        key = _BatchKey(
            service,
            known if service == SERVICE_DOSSIER else False,
            record.agency or self._settings.madonvi,
        )
        loop = asyncio.get_running_loop()
        entry = _Entry(
            record.dossier_code, record.revision, portal_item(record), loop.create_future()
        )
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = _Batch()
        batch.entries.append(entry)
        if len(batch.entries) >= self._settings.batch_size:
            self._flush(key)
        elif batch.timer is None:
            batch.timer = loop.call_later(self._settings.linger_ms / 1000, self._flush, key)
        await entry.future

    def _flush(self, key: _BatchKey) -> None:
        batch = self._batches.pop(key, None)
        if batch is None:
            return
        if batch.timer is not None:
            batch.timer.cancel()
        task = asyncio.create_task(self._send_batch(key, batch.entries))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _send_batch(self, key: _BatchKey, entries: list[_Entry]) -> None:
        try:
            await self._send_items(key, entries)
        except TransientError as exc:
            for entry in entries:
                if not entry.future.done():
                    entry.future.set_exception(_copy(exc))
            return
        except (PermanentError, DossierExistsError, DossierMissingError):
            if len(entries) > 1:
                # Only the portal knows which item it refused: ask item by item.
                await asyncio.gather(*(self._send_alone(key, entry) for entry in entries))
                return
            await self._send_alone(key, entries[0])
            return
        except BaseException as exc:
            for entry in entries:
                if not entry.future.done():
                    entry.future.set_exception(exc)
            raise
        for entry in entries:
            if not entry.future.done():
                entry.future.set_result(None)

    async def _send_items(
        self, key: _BatchKey, entries: Sequence[_Entry], *, updating: bool | None = None
    ) -> None:
        keys = [idempotency_key(e.code, e.revision, TARGET) for e in entries]
        request_key = (
            keys[0]
            if len(keys) == 1
            else "batch-" + hashlib.sha256("|".join(keys).encode()).hexdigest()[:40]
        )
        await self.call(
            self._settings.integration_path,
            key.service,
            [e.item for e in entries],
            madonvi=key.madonvi,
            updating=key.updating if updating is None else updating,
            key=request_key,
            revisions=[e.revision for e in entries],
        )

    async def _send_alone(self, key: _BatchKey, entry: _Entry) -> None:
        try:
            try:
                await self._send_items(key, [entry])
            except DossierExistsError:
                if key.service != SERVICE_DOSSIER or key.updating:
                    raise
                await self._send_items(key, [entry], updating=True)
            except DossierMissingError:
                if key.service != SERVICE_DOSSIER or not key.updating:
                    raise
                await self._send_items(key, [entry], updating=False)
        except (DossierExistsError, DossierMissingError) as exc:
            error: BaseException = RejectedError(
                f"{key.service}: {type(exc).__name__}",
                answer="the portal disagrees whether the dossier exists"
                if key.service == SERVICE_DOSSIER
                else "the dossier is not on the portal (its header was not accepted)",
            )
        except SyncError as exc:
            error = _copy(exc) if isinstance(exc, TransientError) else exc
        except BaseException as exc:
            if not entry.future.done():
                entry.future.set_exception(exc)
            raise
        else:
            if not entry.future.done():
                entry.future.set_result(None)
            return
        if not entry.future.done():
            entry.future.set_exception(error)

    async def aclose(self) -> None:
        """Send what is waiting for its linger, and wait for batches on their way."""
        for key in list(self._batches):
            self._flush(key)
        if self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)
