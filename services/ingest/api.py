"""HTTP intake for systems that cannot produce to Kafka: `POST /v1/events`.

Each event is checked as the Kafka worker will check it (`EventHandler.admit`: the per-event
limit, envelope, contract, normalisation and decision), so a 202 means the worker will not
dead-letter it, and a caller hears about a bad event at once, with the fields at fault.
Accepted events are written to the source topic in structured mode; the answer is 202 only once
the broker has acknowledged them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from schemas.cloudevents import BATCH_CONTENT_TYPE, STRUCTURED_CONTENT_TYPE, CloudEvent
from services.common.auth import FailureLimiter, KeyRing, attempt_scopes
from services.common.httpapp import read_bounded
from services.common.problem import FieldProblem, problem_response, problem_responses
from services.ingest.edocuments.normalise import VerificationBudget
from services.ingest.envelope import from_structured, json_values_at_most
from services.ingest.errors import (
    AgencyNotAllowedError,
    BrokerUnavailableError,
    ContractError,
    EventRefusedError,
    EventTooLargeError,
    RequestTooLargeError,
    at_stage,
)
from services.ingest.handling import EventHandler
from services.ingest.metrics import ENTRY_HEADER, ENTRY_HTTP, IngestMetrics


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    entry: str = ENTRY_HTTP
    """The intake it came through, told to the worker in the `ENTRY_HEADER` record header."""


class EventSink(Protocol):
    async def publish(self, items: Sequence[Outgoing]) -> None: ...


class KafkaEventSink:
    """Writes the accepted events and waits for every acknowledgement."""

    def __init__(self, producer: AIOKafkaProducer, *, timeout_seconds: float = 10.0) -> None:
        self._producer = producer
        self._timeout = timeout_seconds

    async def publish(self, items: Sequence[Outgoing]) -> None:
        content_type = ("content-type", STRUCTURED_CONTENT_TYPE.encode())
        try:
            async with asyncio.timeout(self._timeout):
                futures = [
                    await self._producer.send(
                        i.topic,
                        value=i.value,
                        key=i.key,
                        headers=[content_type, (ENTRY_HEADER, i.entry.encode())],
                    )
                    for i in items
                ]
                await asyncio.gather(*futures)
        except (KafkaError, TimeoutError) as exc:
            raise BrokerUnavailableError("the broker did not acknowledge the events") from exc


class Accepted(BaseModel):
    accepted: list[str] = Field(description="Ids of the accepted events, in request order.")


@dataclass(frozen=True, slots=True)
class IntakeConfig:
    dossier_topic: str
    edocument_topic: str
    max_request_bytes: int
    max_batch_events: int
    max_pdfs_per_request: int = 20
    concurrency: int = 2


_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        STRUCTURED_CONTENT_TYPE: {"schema": CloudEvent.model_json_schema()},
        BATCH_CONTENT_TYPE: {
            "schema": {"type": "array", "items": CloudEvent.model_json_schema(), "minItems": 1}
        },
        "application/json": {"schema": CloudEvent.model_json_schema()},
    },
}


class _RefusedError(Exception):
    """Carries the problem response out of the nested checks."""

    def __init__(self, response: JSONResponse) -> None:
        self.response = response


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _field_problems(index: int | None, error: EventRefusedError) -> list[FieldProblem]:
    if isinstance(error, ContractError) and error.errors:
        return [FieldProblem(index=index, field=f, problem=p) for f, p in error.errors]
    return [FieldProblem(index=index, field="data", problem=str(error))]


def add_intake_routes(
    app: FastAPI,
    *,
    config: IntakeConfig,
    keys: KeyRing,
    sink: EventSink,
    handler: EventHandler,
    metrics: IngestMetrics,
    limiter: FailureLimiter,
) -> None:
    """Mount `POST /v1/events` on the service's app."""
    gate = asyncio.Semaphore(config.concurrency)

    def refuse(outcome: str, status: int, title: str, detail: str, **kw: Any) -> _RefusedError:
        metrics.intake.labels(outcome).inc()
        return _RefusedError(problem_response(status, title, detail, **kw))

    def authenticate(
        request: Request, authorization: str | None, api_key: str | None
    ) -> frozenset[str]:
        """A valid key is accepted whatever others did; failing attempts meet the limiter."""
        key = api_key
        if key is None and authorization and authorization.lower().startswith("bearer "):
            key = authorization[7:].strip()
        sources = keys.sources_for(key) if key else None
        if sources is not None:
            return sources
        scopes = attempt_scopes(_client(request), key)
        blocked = limiter.blocked(*scopes)
        limiter.failed(*scopes)
        if blocked:
            metrics.auth_failures.labels("rate_limited").inc()
            raise refuse(
                "unauthorized",
                429,
                "Too many failed attempts",
                "try again later",
                slug="rate-limited",
                headers={"Retry-After": "60"},
            )
        metrics.auth_failures.labels("unknown" if key else "missing").inc()
        raise refuse(
            "unauthorized",
            401,
            "Unauthorized",
            "the API key is not valid" if key else "an API key is required",
            headers={"WWW-Authenticate": "Bearer"},
        )

    async def read_body(request: Request) -> bytearray:
        def too_large() -> _RefusedError:
            detail = f"the body exceeds {config.max_request_bytes} bytes"
            return refuse("too_large", 413, "Request too large", detail, slug="too-large")

        return await read_bounded(request, config.max_request_bytes, too_large)

    def media_type(content_type: str) -> str:
        media = content_type.split(";")[0].strip().lower()
        if media not in (STRUCTURED_CONTENT_TYPE, BATCH_CONTENT_TYPE, "application/json"):
            raise refuse(
                "bad_request",
                415,
                "Unsupported media type",
                f"send {STRUCTURED_CONTENT_TYPE} or {BATCH_CONTENT_TYPE}",
                slug="media-type",
            )
        return media

    def parse(body: bytearray, media: str) -> list[Any]:
        if json_values_at_most(body) > handler.max_json_values:
            raise refuse(
                "too_large",
                413,
                "Request too large",
                f"the body holds more than {handler.max_json_values} JSON values",
                slug="too-large",
            )
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise refuse(
                "bad_request",
                400,
                "Malformed request",
                "the body is not valid JSON",
                slug="malformed",
            ) from None
        if media == BATCH_CONTENT_TYPE:
            if not isinstance(parsed, list) or not parsed:
                raise refuse(
                    "bad_request",
                    400,
                    "Malformed request",
                    "a batch is a non-empty JSON array of events",
                    slug="malformed",
                )
            if len(parsed) > config.max_batch_events:
                raise refuse(
                    "too_large",
                    413,
                    "Request too large",
                    f"a batch holds at most {config.max_batch_events} events",
                    slug="too-large",
                )
            return parsed
        if not isinstance(parsed, dict):
            raise refuse(
                "bad_request",
                400,
                "Malformed request",
                "an event is a JSON object",
                slug="malformed",
            )
        return [parsed]

    async def check(events: list[Any], sources: frozenset[str]) -> list[tuple[str, Outgoing]]:
        accepted: list[tuple[str, Outgoing]] = []
        problems: list[FieldProblem] = []
        now = datetime.now(UTC)
        budget = VerificationBudget(config.max_pdfs_per_request)
        for index in range(len(events)):
            # Taken out of the list: once written out as bytes, the parsed event can go.
            raw, events[index] = events[index], None
            if not isinstance(raw, dict):
                problems.append(FieldProblem(index=index, field="event", problem="not an object"))
                continue
            try:
                with at_stage("decode"):
                    envelope = from_structured(raw, max_json_values=handler.max_json_values)
                if envelope.source not in sources:
                    metrics.auth_failures.labels("source_not_allowed").inc()
                    raise refuse(
                        "forbidden",
                        403,
                        "Forbidden",
                        f"this API key may not publish events of source {envelope.source!r}",
                    )
                # The bytes the worker will read, checked as the worker will check them.
                with at_stage("decode"):
                    value = orjson.dumps(raw)
                del raw
                admitted = await handler.admit(envelope, value, now=now, budget=budget)
            except AgencyNotAllowedError as exc:
                metrics.auth_failures.labels("agency_not_allowed").inc()
                raise refuse("forbidden", 403, "Forbidden", str(exc)) from None
            except (EventTooLargeError, RequestTooLargeError) as exc:
                raise refuse(
                    "too_large", 413, "Request too large", str(exc), slug="too-large"
                ) from None
            except EventRefusedError as exc:
                problems.extend(_field_problems(index, exc))
                continue
            outgoing = Outgoing(admitted.topic, admitted.key, value)
            accepted.append((admitted.event_id, outgoing))
        if problems:
            raise refuse(
                "invalid",
                422,
                "Invalid events",
                "no event of the request was accepted; fix the listed fields and resend",
                slug="invalid",
                errors=problems[:100],
            )
        return accepted

    @app.post(
        "/v1/events",
        status_code=202,
        tags=["intake"],
        summary="Submit one CloudEvent or a batch",
        response_model=Accepted,
        openapi_extra={"requestBody": _REQUEST_BODY},
        responses=problem_responses(400, 401, 403, 413, 415, 422, 429, 503),
    )
    async def submit_events(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> Any:
        """All or nothing: either every event of the request is written, or none is."""
        try:
            sources = authenticate(request, authorization, x_api_key)
            media = media_type(request.headers.get("content-type", ""))
            # A few requests at a time hold bodies and verify packages: memory stays bounded.
            async with gate:
                accepted = await check(parse(await read_body(request), media), sources)
                try:
                    await sink.publish([outgoing for _, outgoing in accepted])
                except BrokerUnavailableError:
                    raise refuse(
                        "unavailable",
                        503,
                        "Service unavailable",
                        "the events could not be stored; resend them later",
                        slug="unavailable",
                        headers={"Retry-After": "5"},
                    ) from None
        except _RefusedError as refused:
            return refused.response
        metrics.intake.labels("accepted").inc()
        return JSONResponse(Accepted(accepted=[i for i, _ in accepted]).model_dump(), 202)
