"""The relay's one rewrite: an ApiVersions v3 answer loses its top-level tagged fields, no more."""

from __future__ import annotations

import struct

import pytest

from services.localrun.compat import strip_api_versions_tags


def answer(keys: list[tuple[int, int, int]], tags: bytes) -> bytes:
    """An ApiVersions v3 answer from the correlation id on, as the embedded broker writes it."""
    body = struct.pack(">ih", 7, 0) + bytes([len(keys) + 1])
    for key, low, high in keys:
        body += struct.pack(">hhh", key, low, high) + b"\x00"
    return body + struct.pack(">i", 0) + tags


KEYS = [(0, 0, 11), (1, 0, 13), (3, 0, 12), (18, 0, 4)]
# Tansu 0.6's four tags: SupportedFeatures (empty), FinalizedFeaturesEpoch (-1),
# FinalizedFeatures (empty), ZkMigrationReady (false); librdkafka 2.0.2 misreads them.
TANSU_TAGS = bytes.fromhex("040001010108ffffffffffffffff020101030100")


def test_drops_the_tagged_fields_and_keeps_the_rest() -> None:
    stripped = strip_api_versions_tags(answer(KEYS, TANSU_TAGS))
    assert stripped == answer(KEYS, b"\x00")


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(answer(KEYS, b"\x00"), id="already-empty"),
        pytest.param(answer(KEYS, TANSU_TAGS)[:12], id="truncated"),
        pytest.param(b"\x00\x00\x00\x07", id="correlation-id-only"),
    ],
)
def test_anything_else_passes_unchanged(frame: bytes) -> None:
    assert strip_api_versions_tags(frame) == frame
