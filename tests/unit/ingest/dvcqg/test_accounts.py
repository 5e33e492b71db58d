"""Logins: scrypt hashes, accounts bound to their agencies, sessions signed and expiring."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from services.ingest.dvcqg.accounts import AccountBook, hash_password, verify_password
from services.ingest.dvcqg.sessions import SessionKeys
from services.ingest.errors import SessionRefusedError
from services.ingest.settings import DvcqgAccount

AGENCY = "000.00.20.H57"
NOW = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def book(
    password: str = "s3cret",  # noqa: S107
    agencies: frozenset[str] = frozenset({AGENCY}),
) -> AccountBook:
    entry = DvcqgAccount(password_hash=hash_password(password), agencies=agencies)
    return AccountBook({"opencps": entry})


def test_hash_is_salted_and_verifies() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second
    assert first.startswith("scrypt$16384$8$1$")
    assert verify_password("s3cret", first)
    assert not verify_password("S3cret", first)


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param("", id="empty"),
        pytest.param("bcrypt$x", id="other-scheme"),
        pytest.param("scrypt$16384$8$1$not-base64!$AAAA", id="bad-salt"),
        pytest.param("scrypt$abc$8$1$AAAA$AAAA", id="bad-cost"),
    ],
)
def test_malformed_hashes_never_match(stored: str) -> None:
    assert not verify_password("anything", stored)


def test_authenticate_knows_only_configured_accounts() -> None:
    accounts = book()
    account = accounts.authenticate("opencps", "s3cret")
    assert account is not None
    assert account.agencies == {AGENCY}
    assert account.source == "urn:govsync:dvcqg:opencps"
    assert accounts.authenticate("opencps", "wrong") is None
    assert accounts.authenticate("nobody", "s3cret") is None


def test_agency_codes_are_checked_at_start() -> None:
    with pytest.raises(ValueError, match="H57"):
        book(agencies=frozenset({"H57"}))


def test_session_round_trip_and_expiry() -> None:
    accounts = book()
    account = accounts.get("opencps")
    assert account is not None
    keys = SessionKeys(b"k" * 32, timedelta(hours=1))
    token = keys.issue(account, now=NOW)
    assert keys.verify(token, accounts, now=NOW + timedelta(minutes=59)) == account
    with pytest.raises(SessionRefusedError, match="expired"):
        keys.verify(token, accounts, now=NOW + timedelta(hours=1))


def test_forged_and_foreign_sessions_are_refused() -> None:
    accounts = book()
    account = accounts.get("opencps")
    assert account is not None
    token = SessionKeys(b"k" * 32, timedelta(hours=1)).issue(account, now=NOW)
    other = SessionKeys(b"x" * 32, timedelta(hours=1))
    with pytest.raises(SessionRefusedError, match="not one this service issued"):
        other.verify(token, accounts, now=NOW)
    payload, _, signature = token.partition(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] += 10**6
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    keys = SessionKeys(b"k" * 32, timedelta(hours=1))
    with pytest.raises(SessionRefusedError, match="not one this service issued"):
        keys.verify(f"{forged}.{signature}", accounts, now=NOW)
    for missing in (None, "", 42):
        with pytest.raises(SessionRefusedError, match="log in first"):
            keys.verify(missing, accounts, now=NOW)


def test_a_new_password_ends_the_sessions() -> None:
    keys = SessionKeys(b"k" * 32, timedelta(hours=1))
    before = book("old")
    account = before.get("opencps")
    assert account is not None
    token = keys.issue(account, now=NOW)
    with pytest.raises(SessionRefusedError, match="changed"):
        keys.verify(token, book("new"), now=NOW)
