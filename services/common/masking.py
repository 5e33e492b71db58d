"""Masks personal data (citizen ID, phone, e-mail) in text before it is logged or sent on."""

from __future__ import annotations

import re

# Longest first: a 12-digit citizen ID must not be half-eaten by the 9- or 10-digit rules.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Bounded parts (RFC 5321: 64-character local part, 63-character labels): an unbounded
    # `[\w.+-]+@` rescans the rest of a long word from every position, quadratic in its length.
    (re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}"), "<email>"),
    # Citizen ID (CCCD, 12 digits), old ID card (CMND, 9 digits), tax codes and phones:
    # any run of 9 to 15 digits, optionally split by spaces, dots or dashes, or +84-prefixed.
    (re.compile(r"(?<![\w])(?:\+?84[\s.-]?)?\d(?:[\s.-]?\d){8,14}(?![\w])"), "<number>"),
)


def mask_personal_data(text: str) -> str:
    """Return `text` with e-mail addresses and ID or phone numbers replaced by placeholders."""
    for pattern, placeholder in _PATTERNS:
        text = pattern.sub(placeholder, text)
    return text
