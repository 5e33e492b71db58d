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
        pytest.param("CCCD001204012345", "CCCD<number>", id="glued-to-a-word"),
        pytest.param("hoso_001204012345.pdf", "hoso_<number>.pdf", id="in-a-file-name"),
        pytest.param("001204012345A", "<number>A", id="letter-after"),
        pytest.param("sdt0912 345 678", "sdt<number>", id="letter-before-spaced"),
        pytest.param("0912  345 678", "<number>", id="two-spaces"),
        pytest.param("0912/345/678", "<number>", id="slashes"),
        pytest.param("(091) 234 5678", "<number>", id="area-code-in-parentheses"),
        pytest.param("a" + "7" * 40 + "b", "a<number>b", id="forty-digits"),
        pytest.param("2026-11-02T08:00:00+07:00", "2026-11-02T08:00:00+07:00", id="iso-times-kept"),
    ],
)
def test_masking(text: str, expected: str) -> None:
    assert mask_personal_data(text) == expected
