"""Masks personal data (citizen ID, phone, e-mail) in text before it is logged or sent on."""

from __future__ import annotations

import re

# What people put between the digits of a phone or ID number: spaces (two, too), dots, slashes,
# dashes and an area code's parentheses. Never a newline or a colon (times keep their form).
_SEP = r"[ \t\u00a0./()\-]{0,3}"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Bounded parts (RFC 5321: 64-character local part, 63-character labels): an unbounded
    # `[\w.+-]+@` rescans the rest of a long word from every position, quadratic in its length.
    (re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}"), "<email>"),
    # Citizen ID (CCCD, 12 digits), old ID card (CMND, 9), tax codes, phones: 9 or more digits,
    # whatever surrounds them (CCCD001204012345, hoso_001204012345.pdf, 001204012345A), split
    # by separators or not, +84 or an area code in parentheses in front. A run glued to a letter
    # must start with three digits: `H57-2026-0001` stays a dossier code, `sdt0912 345 678` is
    # masked. Each alternative advances over digits it keeps, so the cost is linear.
    (
        re.compile(
            rf"(?<![^\W_])\+?\(?\d(?:{_SEP}\d){{8,}}"  # after a space, punctuation or `_`
            rf"|(?<=[^\W\d_])\d{{3}}(?:{_SEP}\d){{6,}}"  # right after a letter
        ),
        "<number>",
    ),
)


def mask_personal_data(text: str) -> str:
    """Return `text` with e-mail addresses and ID or phone numbers replaced by placeholders."""
    for pattern, placeholder in _PATTERNS:
        text = pattern.sub(placeholder, text)
    return text
