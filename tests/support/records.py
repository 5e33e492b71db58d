"""Valid `DossierRecord`s for the tests: one builder, and streams of many dossiers, revised."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from schemas.dossier import (
    Applicant,
    Attachment,
    Channel,
    DossierHeader,
    DossierRecord,
    DossierStatus,
    Fee,
    IdentityDoc,
    ProgressStep,
    RecordKind,
    Timeliness,
)
from schemas.facts import DossierFacts

AGENCIES = ("000.00.10.H29", "000.00.22.H26", "000.00.00.G22")
PATH = (
    DossierStatus.SUBMITTED,
    DossierStatus.ACCEPTED,
    DossierStatus.IN_PROCESS,
    DossierStatus.SUPPLEMENT_REQUESTED,
    DossierStatus.IN_PROCESS,
    DossierStatus.FINISHED,
    DossierStatus.RETURNED,
)


def stream_header(status: DossierStatus, at: datetime, n: int) -> DossierHeader:
    return DossierHeader(
        procedure_code="1.001234",
        procedure_name="Cấp giấy phép xây dựng",
        sector_code="G09",
        receipt_number=f"BN-{n}",
        summary="Đề nghị cấp giấy phép",
        submitted_at=at - timedelta(days=1),
        received_at=at,
        due_at=at + timedelta(days=15),
        finished_at=at if status >= DossierStatus.FINISHED else None,
        channel=Channel.ONLINE if n % 2 else Channel.IN_PERSON,
        has_digitised_components=n % 3 == 0,
        paid_online=1,
        applicant=Applicant(
            name="Nguyễn Văn An",
            subject_type=1,
            id_number=f"0012030{n:05d}",
            identities=(IdentityDoc(kind=1, number=f"0012030{n:05d}"),),
            phone="0912345678",
            email="an.nguyen@example.vn",
        ),
        attachments=(Attachment(file_id=str(n), file_name="don.pdf", digitised=True),),
        fees=(Fee(name="Lệ phí", code="LP01", amount=Decimal(50000)),),
    )


def dossier_record(
    code: str,
    revision: int,
    kind: RecordKind,
    status: DossierStatus,
    *,
    agency: str,
    header: DossierHeader,
    step: ProgressStep,
    source: str = "test-source",
    event_id: str | None = None,
    at: datetime | None = None,
) -> DossierRecord:
    """A record of `kind`: it carries `header` if it is a dossier, `step` if it is progress.

    `event_id` defaults to `code-revision`; `at` (event and ingestion time) to now.
    """
    seen = datetime.now(UTC) if at is None else at
    return DossierRecord(
        facts=facts_of(agency, status, header),
        dossier_code=code,
        agency=agency,
        revision=revision,
        kind=kind,
        status=status,
        timeliness=Timeliness.IN_PROGRESS,
        source=source,
        event_id=f"{code}-{revision}" if event_id is None else event_id,
        event_time=seen,
        ingested_at=seen,
        header=header if kind is RecordKind.DOSSIER else None,
        step=step if kind is RecordKind.PROGRESS else None,
    )


def facts_of(agency: str | None, status: DossierStatus, header: DossierHeader) -> DossierFacts:
    """The facts a record of this header carries, as ingest would have accumulated them."""
    return DossierFacts(
        agency=agency,
        procedure_code=header.procedure_code,
        status=status,
        channel=header.channel,
        submitted_at=header.submitted_at,
        received_at=header.received_at,
        due_at=header.due_at,
        finished_at=header.finished_at,
        fee_bearing=any(f.amount > 0 for f in header.fees) if header.fees else None,
        paid_online=header.paid_online,
        digitised=header.has_digitised_components,
        attachments=bool(header.attachments),
        vneid_verified=header.vneid_verified,
    )


def record(
    code: str, revision: int, kind: RecordKind, status: DossierStatus, *, n: int, agency: str
) -> DossierRecord:
    """Revision `revision` of the `n`-th dossier of a stream, an hour after the one before."""
    at = datetime(2025, 7, 1, 1, 0, tzinfo=UTC) + timedelta(hours=revision)
    return dossier_record(
        code,
        revision,
        kind,
        status,
        agency=agency,
        header=stream_header(status, at, n),
        step=ProgressStep(handler="Cán bộ một cửa", handled_at=at, status=status, content="Xử lý"),
    )


def dossier_stream(
    prefix: str, dossiers: int, *, max_revisions: int = 5, seed: int = 7
) -> list[DossierRecord]:
    """Records of `dossiers` dossiers, interleaved the way a source would emit them."""
    rng = random.Random(seed)
    per_dossier: list[list[DossierRecord]] = []
    for n in range(dossiers):
        code = f"{prefix}-{n:05d}"
        agency = AGENCIES[n % len(AGENCIES)]
        count = rng.randint(1, max_revisions)
        records = []
        for revision in range(1, count + 1):
            status = PATH[min(revision - 1, len(PATH) - 1)]
            kind = RecordKind.DOSSIER if revision == 1 or revision % 2 == 1 else RecordKind.PROGRESS
            records.append(record(code, revision, kind, status, n=n, agency=agency))
        per_dossier.append(records)
    stream: list[DossierRecord] = []
    cursors = [0] * dossiers
    live = list(range(dossiers))
    while live:
        i = rng.choice(live)
        stream.append(per_dossier[i][cursors[i]])
        cursors[i] += 1
        if cursors[i] == len(per_dossier[i]):
            live.remove(i)
    return stream


def final_records(stream: list[DossierRecord]) -> dict[str, DossierRecord]:
    last: dict[str, DossierRecord] = {}
    for r in stream:
        last[r.dossier_code] = r
    return last


def last_headers(stream: list[DossierRecord]) -> dict[str, DossierRecord]:
    last: dict[str, DossierRecord] = {}
    for r in stream:
        if r.kind is RecordKind.DOSSIER:
            last[r.dossier_code] = r
    return last
