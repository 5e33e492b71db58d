"""The HTTP intake fuzzed from its own OpenAPI document (schemathesis, through ASGI).

Every operation of `/openapi.json` gets generated requests, half of them with a valid API key (on
`/dvcqg`: a valid session and the account's agency) so that the checks behind authentication are
reached. No answer may be a 5xx, and every error must be an RFC 9457 problem
(`application/problem+json` with `type`, `title` and `status`), except on the portal-compatible
intake, whose every answer is the portal's (`error_code`, `message`). The app is the real one
(keys, limiter, pipelines, problem handlers) with a recording sink in place of the broker, which
the Kafka tests cover.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis.core.result import Ok

from services.ingest.dvcqg.accounts import AccountBook, hash_password
from services.ingest.dvcqg.sessions import SessionKeys
from services.ingest.settings import DvcqgAccount, IngestSettings
from tests.reliability.conftest import build_intake

pytestmark = pytest.mark.reliability
Figures = Callable[[str], None]

KEY = "fuzz-key-0123456789abcdef"
SOURCE = "urn:vn:gov:dvc:fuzz"
EXAMPLES_PER_OPERATION = 150
SESSION_SECRET = "fuzz-session-secret"
AGENCY = "000.00.20.H57"


def _portal_answer(status: int, body: Any) -> None:
    assert status in {200, 400, 413, 429}, body
    assert isinstance(body, dict), body
    assert isinstance(body["error_code"], int), body
    assert isinstance(body["message"], str), body
    assert body["message"], body


def test_no_5xx_and_every_error_is_a_problem(figures: Figures) -> None:
    settings_ = IngestSettings(
        api_keys={hashlib.sha256(KEY.encode()).hexdigest(): [SOURCE]},
        # The limiter is tested elsewhere; here it would answer 429 to most cases.
        auth_failure_limit=10**9,
        max_request_bytes=256 * 1024,
        dvcqg_accounts={
            "fuzz": DvcqgAccount(
                password_hash=hash_password("fuzz-password"), agencies=frozenset({AGENCY})
            )
        },
        dvcqg_session_secret=SecretStr(SESSION_SECRET),
    )
    intake = build_intake(settings_)
    account = AccountBook(settings_.dvcqg_accounts).get("fuzz")
    assert account is not None
    session = SessionKeys(
        SESSION_SECRET.encode(), timedelta(seconds=settings_.dvcqg_session_ttl_seconds)
    ).issue(account, now=datetime.now(UTC))
    schema = schemathesis.openapi.from_asgi("/openapi.json", intake.app)
    statuses: Counter[str] = Counter()
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "the OpenAPI document has invalid operations"
    assert any(op.path == "/v1/events" for op in operations)

    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(), with_key=st.booleans(), source=st.booleans())
        def check(case: Any, with_key: bool, source: bool) -> None:
            portal = case.path.startswith("/dvcqg")
            if portal and isinstance(case.body, dict):
                if with_key:
                    case.body = {**case.body, "session": session}
                if source:
                    case.body = {**case.body, "madonvi": AGENCY}
            elif with_key:
                headers = {
                    k: v for k, v in (case.headers or {}).items() if k.lower() != "x-api-key"
                }
                case.headers = {**headers, "X-API-Key": KEY}
            if source and isinstance(case.body, dict) and not portal:
                case.body = {**case.body, "source": SOURCE}
            response = case.call()
            status = response.status_code
            assert status < 500, response.text
            if portal:
                _portal_answer(status, response.json())
                status_key = f"{status} error_code {response.json()['error_code']}"
            else:
                status_key = str(status)
            statuses[f"{case.method} {case.path} {status_key}"] += 1
            if not portal and status >= 400:
                assert response.headers["content-type"][0].startswith("application/problem+json"), (
                    response.text
                )
                body = response.json()
                assert body["status"] == status
                assert isinstance(body["type"], str)
                assert body["type"]
                assert isinstance(body["title"], str)
                assert body["title"]

        check()

    total = sum(statuses.values())
    figures(
        f"fuzz cases: {total} over {len(operations)} operations; {dict(sorted(statuses.items()))}"
    )
    assert total >= EXAMPLES_PER_OPERATION
    # The fuzzing reached past authentication: some requests were judged on their content.
    assert any(key.startswith("POST /v1/events 4") and not key.endswith("401") for key in statuses)
    # ... and on /dvcqg, past the session and the agency to the items themselves.
    assert statuses["POST /dvcqg/api/integration 200 error_code 3"] > 0
