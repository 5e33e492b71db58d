"""The key partitioner puts every key where aiokafka's own (the Java client's murmur2) puts it."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from services.common.partitioner import partition_for_key


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=64))
def test_every_key_lands_where_aiokafka_puts_it(key: bytes, partitions: int) -> None:
    all_partitions = list(range(partitions))
    expected = DefaultPartitioner()(key, all_partitions, all_partitions)
    assert partition_for_key(key, all_partitions, all_partitions) == expected


def test_dossier_codes_spread_over_every_partition() -> None:
    codes = [f"000.00.10.H29-26{n:07d}".encode() for n in range(2_000)]
    landed = [partition_for_key(code, [0, 1, 2], [0, 1, 2]) for code in codes]
    assert {p: landed.count(p) for p in (0, 1, 2)} == {
        p: sum(1 for c in codes if DefaultPartitioner()(c, [0, 1, 2], [0, 1, 2]) == p)
        for p in (0, 1, 2)
    }
    assert min(landed.count(p) for p in (0, 1, 2)) > 500


def test_no_key_picks_an_available_partition() -> None:
    random.seed(3)
    picks = {partition_for_key(None, [0, 1, 2, 3], [2, 3]) for _ in range(50)}
    assert picks == {2, 3}
    assert partition_for_key(None, [5], []) == 5
