"""API keys by hash, admin tokens, and the failed-attempt limiter."""

from __future__ import annotations

from services.common.auth import FailureLimiter, KeyRing, hash_key, token_matches


def test_keyring_maps_keys_to_their_sources() -> None:
    ring = KeyRing({hash_key("alpha"): ["urn:a"], hash_key("beta").upper(): ["urn:b", "urn:c"]})
    assert ring.sources_for("alpha") == frozenset({"urn:a"})
    assert ring.sources_for("beta") == frozenset({"urn:b", "urn:c"})
    assert ring.sources_for("gamma") is None
    assert ring.sources_for("") is None


def test_revoked_key_is_simply_absent() -> None:
    assert KeyRing({}).sources_for("alpha") is None


def test_admin_token() -> None:
    assert token_matches("s3cret", "s3cret")
    assert not token_matches("s3cret", "other")
    assert not token_matches(None, "s3cret")
    assert not token_matches("s3cret", None)


def test_limiter_blocks_after_limit_within_window() -> None:
    limiter = FailureLimiter(limit=3, window=60)
    for t in (0.0, 1.0, 2.0):
        assert not limiter.blocked("1.2.3.4", now=t)
        limiter.failed("1.2.3.4", now=t)
    assert limiter.blocked("1.2.3.4", now=3.0)
    assert not limiter.blocked("5.6.7.8", now=3.0)
    assert not limiter.blocked("1.2.3.4", now=61.5)


def test_limiter_memory_is_bounded() -> None:
    limiter = FailureLimiter(limit=1, window=60, max_clients=2)
    for client in ("a", "b", "c"):
        limiter.failed(client, now=0)
    assert not limiter.blocked("a", now=1)
    assert limiter.blocked("c", now=1)
