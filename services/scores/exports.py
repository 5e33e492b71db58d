"""The drill-down lists as CSV and as an Excel workbook (the format PAR staff work in)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime

from openpyxl import Workbook

from services.common.dates import LOCAL_TZ
from services.scores.store import ListedDossier
from services.scores.texts import CHANNELS, COLUMNS, REASONS, STATUSES

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _when(value: datetime | None) -> str:
    return value.astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M") if value else ""


def cells(item: ListedDossier) -> list[str]:
    verdict = item.judgement
    return [
        item.code,
        item.agency,
        item.procedure_code or "",
        STATUSES.get(item.status or 0, ""),
        CHANNELS.get(item.channel or 0, ""),
        _when(item.received_at),
        _when(item.due_at),
        _when(item.ended_at),
        "Có" if item.portal_holds else "Không",
        "Có" if verdict.counted else "Không",
        REASONS[verdict.reason] if verdict.reason else "",
    ]


def to_csv(items: Iterable[ListedDossier]) -> bytes:
    """UTF-8 with a byte order mark, so that Excel opens the Vietnamese text correctly."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for item in items:
        writer.writerow(cells(item))
    return ("\ufeff" + out.getvalue()).encode()


def to_xlsx(items: Iterable[ListedDossier], *, title: str) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    sheet.append(list(COLUMNS))
    for item in items:
        sheet.append(cells(item))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
