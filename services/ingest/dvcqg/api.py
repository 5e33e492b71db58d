"""The portal-compatible intake's routes: `POST /dvcqg/api/auth/login`, `/dvcqg/api/integration`
(DongBoHoSoMC, CapNhatTienDoHoSoMC) and `/dvcqg/api/share` (TraCuuHoSo).

An adapter written for the portal changes only its URL. Each item is checked exactly as the Kafka
worker will check it (`EventHandler.admit`), so `error_code` 0 means the worker will accept
every item; the call is all or nothing, and 0 is answered only once the broker acknowledged every
item. govsync upserts: a create of a dossier it already has, or an update of one it has not, is
accepted as it stands (never "đã tồn tại"), which every adapter of DOMAIN.md §1 takes as success.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from schemas.cloudevents import EventType
from services.common.auth import FailureLimiter
from services.common.httpapp import read_bounded
from services.ingest.api import EventSink, Outgoing
from services.ingest.dossiers.state import DossierState
from services.ingest.dvcqg import protocol
from services.ingest.dvcqg.accounts import Account, AccountBook
from services.ingest.dvcqg.metrics import LOGIN, CallOutcome, DvcqgMetrics
from services.ingest.dvcqg.sessions import SessionKeys
from services.ingest.envelope import from_structured, json_values_at_most
from services.ingest.errors import (
    AccountAgencyNotAllowedError,
    AgencyNotAllowedError,
    BrokerUnavailableError,
    ContractError,
    EventRefusedError,
    MalformedCallError,
    PortalCallRefusedError,
    at_stage,
)
from services.ingest.handling import EventHandler
from services.ingest.metrics import ENTRY_DVCQG

PREFIX = "/dvcqg"
Clock = Callable[[], datetime]
_MAX_PROBLEMS = 50


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI request body: the portal's JSON (its items are in `schemas/json/`)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _envelope(services: list[str], data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "session": {"type": "string"},
            "madonvi": {"type": "string", "description": "Agency code, e.g. 000.00.20.H57."},
            "service": {"type": "string", "enum": services},
            "isUpdating": {"type": "string", "enum": ["True", "False"]},
            "data": data,
        },
        "required": ["session", "madonvi", "service", "data"],
    }


_ITEM = {"type": "object", "properties": {"MaHoSo": {"type": "string"}}, "required": ["MaHoSo"]}
_LOGIN_BODY = _body(
    {
        "type": "object",
        "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
        "required": ["username", "password"],
    }
)
_INTEGRATION_BODY = _body(
    _envelope(
        [protocol.SERVICE_DOSSIER, protocol.SERVICE_PROGRESS],
        {"type": "array", "items": _ITEM, "minItems": 1},
    )
)
_SHARE_BODY = _body(
    _envelope(
        [protocol.SERVICE_LOOKUP],
        {"type": "object", "properties": {"mahoso": {"type": "string"}}, "required": ["mahoso"]},
    )
)
_ANSWERS: dict[int | str, dict[str, Any]] = {
    status: {"description": "The portal's answer: `error_code`, `message` (docs/vendors.md)."}
    for status in (400, 413, 429, 503)
}


def utc_now() -> datetime:
    return datetime.now(UTC)


class DossierLookup(Protocol):
    def find(self, code: str) -> DossierState | None: ...


class StateLookup:
    """TraCuuHoSo from the worker's own dossier states (the partitions assigned to this replica),
    packed as the worker holds them; an archived dossier is still one the source sent."""

    def __init__(self, partitions: Mapping[int, Mapping[str, bytes]]) -> None:
        self._partitions = partitions

    def find(self, code: str) -> DossierState | None:
        for states in list(self._partitions.values()):
            found = states.get(code)
            if found is not None:
                return DossierState.from_bytes(found)
        return None


@dataclass(frozen=True, slots=True)
class DvcqgConfig:
    max_request_bytes: int
    max_items: int


class _AnsweredError(Exception):
    """Carries a finished answer out of the nested steps."""

    def __init__(self, response: JSONResponse) -> None:
        self.response = response


def _reply(body: dict[str, Any], status: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers or None)


def _problems(label: str, index: int, error: EventRefusedError) -> list[dict[str, Any]]:
    pairs = (
        list(error.errors)
        if isinstance(error, ContractError) and error.errors
        else [("data", str(error))]
    )
    return [{"index": index, "item": label, "field": f, "problem": p} for f, p in pairs]


def _event_ids(account: Account, key: str | None, count: int) -> list[str]:
    """Ids from the caller's Idempotency-Key (a resent call repeats them), else fresh ones."""
    if key:
        base = hashlib.sha256(f"{account.username}\n{key}".encode()).hexdigest()[:32]
        return [f"dvcqg-{base}-{i}" for i in range(count)]
    return [f"dvcqg-{uuid.uuid4().hex}" for _ in range(count)]


@dataclass(slots=True)
class _Checked:
    """A write call's items, checked: what to publish, or why not."""

    outgoing: list[Outgoing] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)


async def _check_items(
    items: list[Any],
    call: protocol.Call,
    account: Account,
    event_type: EventType,
    ids: list[str],
    *,
    handler: EventHandler,
    now: datetime,
) -> _Checked:
    """Each item as the CloudEvent it becomes, admitted exactly as the worker will handle it
    (`EventHandler.admit`: limits, normalisation, the source binding, the decision)."""
    checked = _Checked()
    for index, item in enumerate(items):
        label = protocol.item_label(index, item)
        event = protocol.cloudevent(
            item,
            event_id=ids[index],
            source=account.source,
            event_type=event_type,
            agency=call.madonvi,
            now=now,
        )
        try:
            with at_stage("decode"):
                value = orjson.dumps(event)
                envelope = from_structured(event, max_json_values=handler.max_json_values)
            admitted = await handler.admit(envelope, value, now=now)
            # The item's own MaDonVi, beside the envelope's madonvi checked before.
            agency = _item_agency(item)
            if agency is not None:
                protocol.check_agency(account, agency, where="MaDonVi")
        except (AgencyNotAllowedError, AccountAgencyNotAllowedError) as exc:
            checked.forbidden.append(f"{label}: {exc}")
            continue
        except MalformedCallError as exc:
            checked.problems.append(
                {"index": index, "item": label, "field": "MaDonVi", "problem": str(exc)}
            )
            continue
        except EventRefusedError as exc:
            checked.problems.extend(_problems(label, index, exc))
            continue
        checked.outgoing.append(Outgoing(admitted.topic, admitted.key, value, ENTRY_DVCQG))
    return checked


def _item_agency(item: object) -> str | None:
    if not isinstance(item, Mapping):
        return None
    for key, value in item.items():
        if isinstance(key, str) and key.strip().lower() == "madonvi" and isinstance(value, str):
            return value.strip().upper() or None
    return None


def add_dvcqg_routes(
    app: FastAPI,
    *,
    config: DvcqgConfig,
    accounts: AccountBook,
    sessions: SessionKeys,
    sink: EventSink,
    handler: EventHandler,
    lookup: DossierLookup,
    metrics: DvcqgMetrics,
    limiter: FailureLimiter,
    clock: Clock = utc_now,
) -> None:
    """Mount the portal-compatible intake under `/dvcqg` on the ingest service's app."""

    async def read_json(request: Request, service: str) -> object:
        def too_large() -> _AnsweredError:
            metrics.call(service, CallOutcome.TOO_LARGE)
            message = f"Dữ liệu quá lớn (the body exceeds {config.max_request_bytes} bytes)"
            return _AnsweredError(_reply(protocol.answer(protocol.INVALID, message), 413))

        body = await read_bounded(request, config.max_request_bytes, too_large)
        if json_values_at_most(body) > handler.max_json_values:
            raise too_large()  # counted before parsing: empty objects cost 35 times their size
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            metrics.call(service, CallOutcome.INVALID)
            message = "Dữ liệu không hợp lệ (the body is not valid JSON)"
            raise _AnsweredError(_reply(protocol.answer(protocol.INVALID, message), 400)) from None

    def refused(service: str, error: PortalCallRefusedError) -> JSONResponse:
        outcome = {
            protocol.SESSION: CallOutcome.SESSION,
            protocol.FORBIDDEN: CallOutcome.FORBIDDEN,
        }
        body = protocol.refusal(error)
        metrics.call(service, outcome.get(body["error_code"], CallOutcome.INVALID))
        return _reply(body)

    def open_call(body: object, now: datetime) -> tuple[protocol.Call, Account]:
        call = protocol.read_call(body)
        account = sessions.verify(call.session, accounts, now=now)
        protocol.check_agency(account, call.madonvi)
        return call, account

    def service_of(body: object) -> str:
        service = body.get("service") if isinstance(body, dict) else None
        return service if isinstance(service, str) else "other"

    @app.post(
        f"{PREFIX}/api/auth/login",
        tags=["dvcqg"],
        summary="Portal-compatible login",
        openapi_extra=_LOGIN_BODY,
        responses=_ANSWERS,
    )
    async def login(request: Request) -> JSONResponse:
        """`{"username", "password"}` in, `{"session", "error_code": 0}` out."""
        try:
            body = await read_json(request, LOGIN)
        except _AnsweredError as answered:
            return answered.response
        username = body.get("username") if isinstance(body, dict) else None
        password = body.get("password") if isinstance(body, dict) else None
        if not isinstance(username, str) or not isinstance(password, str) or len(username) > 200:
            metrics.call(LOGIN, CallOutcome.LOGIN_FAILED)
            return _reply(protocol.answer(protocol.INVALID, protocol.LOGIN_REFUSED))
        # Per address and username: guessing one account is slowed, others still log in.
        client = f"{request.client.host if request.client else 'unknown'}|{username}"
        if limiter.blocked(client):
            metrics.call(LOGIN, CallOutcome.RATE_LIMITED)
            message = "Đăng nhập sai quá nhiều lần, thử lại sau (too many failed logins)"
            return _reply(protocol.answer(protocol.RETRY, message), 429, **{"Retry-After": "60"})
        account = await asyncio.to_thread(accounts.authenticate, username, password)
        if account is None:
            limiter.failed(client)
            metrics.call(LOGIN, CallOutcome.LOGIN_FAILED)
            return _reply(protocol.answer(protocol.INVALID, protocol.LOGIN_REFUSED))
        metrics.call(LOGIN, CallOutcome.OK)
        token = sessions.issue(account, now=clock())
        return _reply(protocol.answer(protocol.OK, protocol.LOGIN_OK, session=token))

    @app.post(
        f"{PREFIX}/api/integration",
        tags=["dvcqg"],
        summary="DongBoHoSoMC, CapNhatTienDoHoSoMC",
        openapi_extra=_INTEGRATION_BODY,
        responses=_ANSWERS,
    )
    async def integration(request: Request) -> JSONResponse:
        """All or nothing: every item is written (error_code 0) or none is (the reasons)."""
        service = "other"
        try:
            body = await read_json(request, service)
            service = service_of(body)
            now = clock()
            try:
                call, account = open_call(body, now)
                event_type, items = protocol.write_items(call, max_items=config.max_items)
            except PortalCallRefusedError as exc:
                return refused(service, exc)
            ids = _event_ids(account, request.headers.get("Idempotency-Key"), len(items))
            checked = await _check_items(
                items, call, account, event_type, ids, handler=handler, now=now
            )
            outgoing, problems, forbidden = checked.outgoing, checked.problems, checked.forbidden
            if forbidden:
                metrics.call(service, CallOutcome.FORBIDDEN)
                message = (
                    "Không được phép ghi cho đơn vị này (agencies this account may not write: "
                    + "; ".join(forbidden[:_MAX_PROBLEMS])
                    + "); no item of the call was written"
                )
                return _reply(protocol.answer(protocol.FORBIDDEN, message))
            if problems:
                metrics.call(service, CallOutcome.INVALID)
                listed = "; ".join(
                    f"{p['item']}: {p['field']}: {p['problem']}" for p in problems[:_MAX_PROBLEMS]
                )
                message = f"Dữ liệu không hợp lệ ({listed}); no item of the call was written"
                return _reply(
                    protocol.answer(protocol.INVALID, message, errors=problems[:_MAX_PROBLEMS])
                )
            try:
                await sink.publish(outgoing)
            except BrokerUnavailableError:
                metrics.call(service, CallOutcome.UNAVAILABLE)
                return _reply(
                    protocol.answer(protocol.RETRY, protocol.BUSY), 503, **{"Retry-After": "5"}
                )
        except _AnsweredError as answered:
            return answered.response
        metrics.call(service, CallOutcome.OK)
        metrics.items.labels(call.service).inc(len(outgoing))
        return _reply(protocol.answer(protocol.OK, protocol.SUCCESS))

    @app.post(
        f"{PREFIX}/api/share",
        tags=["dvcqg"],
        summary="TraCuuHoSo",
        openapi_extra=_SHARE_BODY,
        responses=_ANSWERS,
    )
    async def share(request: Request) -> JSONResponse:
        """`result` holds one row when govsync knows the dossier, for the account's agencies."""
        service = "other"
        try:
            body = await read_json(request, service)
            service = service_of(body)
            call, account = open_call(body, clock())
            if call.service != protocol.SERVICE_LOOKUP:
                raise MalformedCallError(
                    f"service {call.service[:50]!r} is not served at /api/share (TraCuuHoSo)"
                )
            code = protocol.lookup_code(call)
        except _AnsweredError as answered:
            return answered.response
        except PortalCallRefusedError as exc:
            return refused(service, exc)
        state = lookup.find(code)
        visible = state is not None and state.agency in account.agencies
        rows = [protocol.lookup_row(code, state)] if visible and state is not None else []
        metrics.call(service, CallOutcome.OK)
        return _reply(protocol.answer(protocol.OK, protocol.SUCCESS, result=rows))
