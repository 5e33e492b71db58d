"""The sync process's HTTP face: health, readiness, metrics, and the dead-letter admin endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from services.common.auth import FailureLimiter, attempt_scopes, token_matches
from services.common.httpapp import create_base_app
from services.common.problem import install_problem_handlers
from services.dlq.store import Selection, aware, read_letters, replay


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = None
    stage: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=1000, ge=1, le=100_000)

    def selection(self) -> Selection:
        return Selection(self.reason, self.stage, self.source, self.since, self.until, self.limit)


def _bounds(
    since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """A time without its offset names no moment: 400, not a comparison that fails later."""
    try:
        return (
            aware(since, name="since") if since else None,
            aware(until, name="until") if until else None,
        )
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


def _admin_guard(
    token: SecretStr | None, failures: Counter, limiter: FailureLimiter
) -> Callable[[Request], Awaitable[None]]:
    """Bearer admin token, compared in constant time; repeated failures (by address and by
    token prefix) are refused for a while, a valid token never."""

    async def guard(request: Request) -> None:
        if token is None:
            raise HTTPException(status_code=404, detail="admin endpoints are disabled")
        given = request.headers.get("Authorization", "")
        presented = given[7:].strip() if given.lower().startswith("bearer ") else None
        if token_matches(presented, token.get_secret_value()):
            return  # never refused because of others' failures
        client = request.client.host if request.client else "unknown"
        scopes = attempt_scopes(client, presented)
        blocked = limiter.blocked(*scopes)
        limiter.failed(*scopes)
        if blocked:
            failures.labels("rate_limited").inc()
            raise HTTPException(
                status_code=429, detail="too many failed attempts", headers={"Retry-After": "60"}
            )
        failures.labels("missing" if not presented else "unknown").inc()
        raise HTTPException(
            status_code=401,
            detail="admin credential required",
            headers={"WWW-Authenticate": "Bearer"},
        )

    return guard


def create_app(
    *,
    target: str,
    registry: CollectorRegistry,
    readiness: Callable[[], Awaitable[dict[str, bool]]],
    admin_token: SecretStr | None,
    dlq_topic: str,
    reader_factory: Callable[[], AIOKafkaConsumer],
    producer: AIOKafkaProducer,
    replay_topics: frozenset[str] = frozenset(),
) -> FastAPI:
    """Operations endpoints plus `/admin/dlq` and `/admin/dlq/replay` behind a bearer token.

    A replay goes only to `replay_topics` (the topics govsync reads, never a state topic).
    """
    app = create_base_app(
        title=f"govsync sync ({target})", version="0.1.0", registry=registry, readiness=readiness
    )
    install_problem_handlers(app)
    failures = Counter(
        "govsync_admin_auth_failures",
        "Refused admin credentials, by reason.",
        ["reason"],
        registry=registry,
    )
    for reason in ("missing", "unknown", "rate_limited"):
        failures.labels(reason)
    admin = [Depends(_admin_guard(admin_token, failures, FailureLimiter()))]

    @app.get("/admin/dlq", tags=["admin"], dependencies=admin, summary="List dead letters")
    async def list_dead_letters(
        reason: Annotated[str | None, Query()] = None,
        stage: Annotated[str | None, Query()] = None,
        source: Annotated[str | None, Query()] = None,
        since: Annotated[datetime | None, Query()] = None,
        until: Annotated[datetime | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    ) -> list[dict[str, Any]]:
        selection = Selection(reason, stage, source, *_bounds(since, until), limit)
        letters = await read_letters(reader_factory, dlq_topic, selection)
        return [letter.summary() for letter in letters]

    @app.post(
        "/admin/dlq/replay", tags=["admin"], dependencies=admin, summary="Replay dead letters"
    )
    async def replay_dead_letters(body: ReplayRequest) -> dict[str, int]:
        _bounds(body.since, body.until)
        letters = await read_letters(reader_factory, dlq_topic, body.selection())
        done = await replay(producer, letters, topics=replay_topics)
        return {"replayed": done.replayed, "refused": done.refused}

    return app
