"""`govsync dvcqg-account USERNAME --agency CODE...`: prints an account entry with its hashed
password, to merge into `GOVSYNC_DVCQG_ACCOUNTS` (the password is read from standard input, or
asked for twice on a terminal, and never printed)."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Sequence

from services.ingest.dossiers.normalise import AGENCY_CODE
from services.ingest.dvcqg.accounts import hash_password


def _password() -> str | None:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        return None
    return first


def main(username: str, agencies: Sequence[str], source: str | None = None) -> int:
    codes = sorted({code.strip().upper() for code in agencies})
    bad = [code for code in codes if not AGENCY_CODE.match(code)]
    if bad or not codes:
        sys.stderr.write(f"agency codes of the form 000.00.00.G22 are needed, not {bad}\n")
        return 2
    password = _password()
    if not password:
        sys.stderr.write("no password given (or the two did not match)\n")
        return 2
    entry: dict[str, object] = {"password_hash": hash_password(password), "agencies": codes}
    if source:
        entry["source"] = source
    sys.stdout.write(json.dumps({username: entry}, ensure_ascii=False) + "\n")
    return 0
