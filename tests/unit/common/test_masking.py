"""Personal data never leaves in a log line or a dead-letter reason."""

from __future__ import annotations

import pytest

from services.common.masking import mask_personal_data


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("CCCD 001203004567 hợp lệ", "CCCD <number> hợp lệ", id="citizen-id"),
        pytest.param("CMND 123456789", "CMND <number>", id="old-id-card"),
        pytest.param("gọi 0912345678 ngay", "gọi <number> ngay", id="mobile"),
        pytest.param("tel +84 912 345 678", "tel <number>", id="international-spaced"),
        pytest.param("sđt 0912.345.678", "sđt <number>", id="dotted"),
        pytest.param("mail an.nguyen@example.gov.vn.", "mail <email>.", id="email"),
        pytest.param(
            "hồ sơ H57-2026-0001 tại 000.00.00.G22",
            "hồ sơ H57-2026-0001 tại 000.00.00.G22",
            id="codes-kept",
        ),
        pytest.param(
            "offset 12345 partition 3", "offset 12345 partition 3", id="short-numbers-kept"
        ),
        pytest.param("20261102100000", "<number>", id="long-digit-runs-masked-too"),
    ],
)
def test_masking(text: str, expected: str) -> None:
    assert mask_personal_data(text) == expected
