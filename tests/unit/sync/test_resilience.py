"""Backoff with full jitter, Retry-After, the circuit breaker and error classification."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.sync.delivery import BackoffPolicy, CircuitBreaker, CircuitState, _trips_breaker
from services.sync.errors import (
    AuthenticationError,
    DestinationUnavailableError,
    DossierExistsError,
    PermanentError,
    RateLimitedError,
    RejectedError,
    SessionExpiredError,
    TransientError,
    UndecodableRecordError,
)
from services.sync.ndxp import AUTH_CODES, OPERATOR_CODES, REJECTED_CODES, _error_code
from services.sync.transport import retry_after

POLICY = BackoffPolicy(initial=0.2, maximum=5.0, retry_after_max=60.0)


@pytest.mark.parametrize(
    ("attempt", "rand", "retry", "expected"),
    [
        pytest.param(0, 0.999, None, 0.1998, id="first-ceiling-initial"),
        pytest.param(3, 0.5, None, 0.8, id="doubles"),
        pytest.param(20, 0.999, None, 4.995, id="capped"),
        pytest.param(0, 0.0, None, 0.0, id="full-jitter-can-be-zero"),
        pytest.param(0, 0.5, 3.0, 3.0, id="retry-after-wins"),
        pytest.param(20, 0.9, 1.0, 4.5, id="jitter-longer-than-retry-after"),
        pytest.param(0, 0.5, 600.0, 60.0, id="retry-after-capped"),
    ],
)
def test_backoff(attempt: int, rand: float, retry: float | None, expected: float) -> None:
    assert POLICY.delay(attempt, rand, retry) == pytest.approx(expected)


def test_backoff_huge_attempt_does_not_overflow() -> None:
    assert POLICY.delay(10_000, 0.5) == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("3", 3.0, id="seconds"),
        pytest.param(" 1.5 ", 1.5, id="fractional"),
        pytest.param("-4", 0.0, id="negative-clamped"),
        pytest.param("Wed, 01 Jan 2025 00:00:10 GMT", 10.0, id="http-date"),
        pytest.param("soon", None, id="garbage"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_retry_after(header: str | None, expected: float | None) -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert retry_after(header, now=now) == expected


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_and_probes_once() -> None:
    clock = Clock()
    breaker = CircuitBreaker(3, 1.0, clock=clock, max_reset_seconds=4)
    for _ in range(2):
        assert breaker.acquire() == 0
        breaker.failure()
    assert breaker.state is CircuitState.CLOSED
    breaker.failure()
    assert breaker.state is CircuitState.OPEN  # type: ignore[comparison-overlap]  # mypy narrows a property
    assert breaker.acquire() == pytest.approx(1.0)
    clock.now = 1.0
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.acquire() == 0  # the probe
    assert breaker.acquire() > 0  # everyone else waits for it
    breaker.failure()
    assert breaker.state is CircuitState.OPEN
    clock.now = 2.5
    assert breaker.state is CircuitState.OPEN  # the second opening lasts twice as long
    clock.now = 3.0
    assert breaker.acquire() == 0
    breaker.success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.acquire() == 0


def test_breaker_success_resets_the_count_and_abandon_frees_the_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(2, 1.0, clock=clock)
    breaker.failure()
    breaker.success()
    breaker.failure()
    assert breaker.state is CircuitState.CLOSED
    breaker.failure()
    clock.now = 1.0
    assert breaker.acquire() == 0
    breaker.abandon()
    assert breaker.acquire() == 0


@pytest.mark.parametrize(
    ("error", "retryable", "trips"),
    [
        pytest.param(DestinationUnavailableError("x"), True, True, id="unavailable"),
        pytest.param(RateLimitedError("x", retry_after=1), True, False, id="429-paces-only"),
        pytest.param(AuthenticationError("x"), True, True, id="auth"),
    ],
)
def test_transient_classification(error: TransientError, retryable: bool, trips: bool) -> None:
    assert error.retryable is retryable
    assert _trips_breaker(error) is trips


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(RejectedError("x", answer="a"), id="rejected"),
        pytest.param(UndecodableRecordError("x"), id="undecodable"),
    ],
)
def test_permanent_classification(error: PermanentError) -> None:
    assert error.retryable is False


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(SessionExpiredError("x"), id="session"),
        pytest.param(DossierExistsError("x"), id="exists"),
    ],
)
def test_protocol_answers_are_not_permanent(error: Exception) -> None:
    assert not isinstance(error, PermanentError | TransientError)


@pytest.mark.parametrize(
    ("body", "code", "group"),
    [
        pytest.param({"errorCode": 100}, 100, AUTH_CODES, id="100-auth"),
        pytest.param({"errorCode": "101"}, 101, OPERATOR_CODES, id="101-ip"),
        pytest.param({"error_code": 106}, 106, REJECTED_CODES, id="106-agency"),
        pytest.param({"code": 200}, 200, REJECTED_CODES, id="200-incomplete"),
        pytest.param({"errorCode": 201}, 201, REJECTED_CODES, id="201-not-found"),
        pytest.param({"errorCode": 302}, 302, REJECTED_CODES, id="302-type"),
        pytest.param({"errorCode": 500}, 500, REJECTED_CODES, id="500-incorrect"),
    ],
)
def test_ndxp_codes(body: dict[str, object], code: int, group: frozenset[int]) -> None:
    assert _error_code(body) == code
    assert code in group
