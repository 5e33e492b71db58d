"""The key partitioner of the Java client (murmur2 of the key), as aiokafka's `DefaultPartitioner`
computes it, in a fraction of the time.

aiokafka hashes each key byte by byte in Python, about 10 µs for a dossier code: a few percent of
ingest's time per record. This one reads the key's 32-bit words in one `struct` call. The
partition of every key is the same as aiokafka's and the Java client's, so records of one
dossier land where every other Kafka client would put them.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORDS: dict[int, struct.Struct] = {}


def _words(count: int) -> struct.Struct:
    found = _WORDS.get(count)
    if found is None:
        found = struct.Struct(f"<{count}I")
        if len(_WORDS) < 256:  # keys are short: a few sizes
            _WORDS[count] = found
    return found


def murmur2(data: bytes) -> int:
    """MurmurHash2 (32 bits, Kafka's seed) of `data`, unsigned."""
    length = len(data)
    h = _SEED ^ length
    for k in _words(length // 4).unpack_from(data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    tail, extra = length & ~3, length & 3
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h = ((h ^ data[tail]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_for_key(
    key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
) -> int:
    """aiokafka's partitioner signature: a key's partition, or a random one for no key."""
    if key is None:
        return random.choice(available or all_partitions)  # noqa: S311 - spreading, not secrecy
    return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
