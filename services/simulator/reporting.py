"""The portal's reporting API, simulated: `POST /portal/api/v1/reporting/evaluation/{endpoint}`.

DOMAIN.md §2: body `{rootDepartmentId, timeType: month|quarter|year, year, month|quarter,
currentPage, pageSize}`, answer HTTP 201 `{code: "OK", data, message}` in the shapes the portal
was seen to use (ChippedTopaz/qd766's recorded answers): `transparency`, `dossier-digitized`
and `handling-satisfaction` give an `overview` of the root and a paged `evaluation` of its
departments, each with `metrics` rows (`code`, `name`, `numerator`, `denominator`, `ratio` in
percent, `score`, `maxScore`); `dvc-progress-tree`, `provide-online-tree` and
`formality-online-payment-tree` give a `parent` and all its `children` with their own totals.
Every figure is computed from what the simulator holds now (`scores.py`); the rows the agency's
dossiers cannot give (procedure publication, certified copies, satisfaction) are null, as the
portal leaves rows without data. The simulator's own departures, knowingly: the 3.3 tree has a
`ratio` (online share * the 1.4 rate) but no points, the 3.6 tree scores 3.6 alone (max 6), and
`formalityId` filters are ignored. A rootDepartmentId that is one department's answers for it
alone; an unknown one is a 400.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.simulator.departments import Department
from services.simulator.routing import fault_response, simulator_of
from services.simulator.scores import (
    Held,
    Period,
    Tally,
    held,
    on_time_rate,
    online_rate,
    percent,
    points,
    processing_days,
    round2,
    share,
    sync_denominator,
    tally,
)
from services.simulator.simulator import PORTAL, Simulator
from services.simulator.state import PortalDossier

router = APIRouter(prefix="/portal/api/v1/reporting/evaluation")

SOURCE = "govsync simulator: computed from the dossiers it holds"


@dataclass(frozen=True, slots=True)
class Unit:
    department: Department
    tally: Tally


@dataclass(frozen=True, slots=True)
class Report:
    """One question to the reporting API, answered: the root, its departments, the period."""

    period: Period
    root: Unit
    root_is_top: bool
    children: list[Unit]
    page: int
    page_size: int
    monthly: Callable[[int], Tally]
    """The root's counts for one month of the period's year (the progress chart)."""


def _int(body: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{key} must be a number")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{key} must be a number") from None


def report(sim: Simulator, body: dict[str, Any]) -> Report:
    """What `body` asks about, counted; raises ValueError for a question the portal refuses."""
    kind = str(body.get("timeType") or "")
    year = _int(body, "year")
    if year is None:
        raise ValueError("year is required")
    number = _int(body, "month") if kind == "month" else _int(body, "quarter")
    period = Period.of(kind, year, number)
    page = max(_int(body, "currentPage", 1) or 1, 1)
    page_size = max(_int(body, "pageSize", 200) or 200, 1)
    departments = sim.departments
    by_agency: dict[str, list[Held]] = {}
    for dossier in sim.state.portal.values():
        by_agency.setdefault(dossier.madonvi, []).append(_read(sim, dossier))
    children = departments.children(set(by_agency))
    delta = sim.faults.received_count_delta
    limits = sim.legal_limits_days

    def count(agencies: list[str], of: Period) -> Tally:
        total = Tally()
        for agency in agencies:
            total.add(tally(by_agency.get(agency, []), of, delta=delta, legal_limits=limits))
        return total

    units = {agency: Unit(d, count([agency], period)) for agency, d in children.items()}
    wanted = str(body.get("rootDepartmentId") or departments.root.id)
    if wanted == departments.root.id:
        agencies = list(units)
        top = Tally()
        for u in units.values():
            top.add(u.tally)
        root = Unit(departments.root, top)
        included = sorted(units.values(), key=lambda u: u.department.code)
    else:
        agencies = [a for a, u in units.items() if u.department.id == wanted][:1]
        if not agencies:
            raise ValueError(f"rootDepartmentId không tồn tại: {wanted}")
        root, included = units[agencies[0]], []

    def monthly(month: int) -> Tally:
        if period.kind == "month":
            return root.tally  # the one month asked about
        return count(agencies, Period.of("month", period.year, month))

    is_top = root.department == departments.root
    return Report(period, root, is_top, included, page, page_size, monthly)


def _read(sim: Simulator, dossier: PortalDossier) -> Held:
    """`held(...)` of one dossier, kept until it changes (a report reads every one)."""
    key = (dossier.madonvi, dossier.status, dossier.updates, len(dossier.steps), id(dossier.header))
    known = sim.scored.get(dossier.code)
    if known is not None and known[0] == key:
        return known[1]
    facts = held(dossier.madonvi, dossier.header, dossier.status, dossier.steps)
    sim.scored[dossier.code] = (key, facts)
    return facts


# --- rows --------------------------------------------------------------------------------------


def _metric(
    code: str,
    name: str,
    maximum: float,
    numerator: float | None = None,
    denominator: float | None = None,
    *,
    full_at: float = 1.0,
) -> dict[str, Any]:
    rate = None if numerator is None or denominator is None else share(numerator, denominator)
    return {
        "code": code,
        "name": name,
        "numerator": numerator,
        "denominator": denominator,
        "ratio": percent(rate),
        "score": points(maximum, rate, full_at=full_at),
        "maxScore": maximum,
    }


def _unit_row(
    stt: int, unit: Unit, metrics: list[dict[str, Any]], maximum: float, *, top: bool
) -> dict[str, Any]:
    department = unit.department
    scores = [m["score"] for m in metrics if m["score"] is not None]
    total = round2(sum(scores)) if scores else None
    return {
        "stt": stt,
        "departmentId": department.id,
        "departmentName": department.name,
        "departmentCode": department.code,
        "departmentType": "PROVINCE" if top else department.type,
        "departmentLevel": department.level,
        "agencyLevel": "level_1" if top else "level_2",
        "totalScore": total,
        "totalMaxScore": maximum,
        "ratio": None if total is None else percent(total / maximum),
        "metrics": metrics,
        "scoreDelta": None,
    }


def _overview(
    r: Report, metrics: Callable[[Tally], list[dict[str, Any]]], maximum: float
) -> dict[str, Any]:
    total_pages = max((len(r.children) + r.page_size - 1) // r.page_size, 1)
    shown = r.children[(r.page - 1) * r.page_size : r.page * r.page_size]
    first = (r.page - 1) * r.page_size + 1
    return {
        "overview": _unit_row(1, r.root, metrics(r.root.tally), maximum, top=r.root_is_top),
        "evaluation": [
            _unit_row(first + n, u, metrics(u.tally), maximum, top=False)
            for n, u in enumerate(shown)
        ],
        "pagination": {
            "total": len(r.children),
            "currentPage": r.page,
            "pageSize": r.page_size,
            "totalPages": total_pages,
        },
        "source": SOURCE,
    }


def transparency(r: Report) -> dict[str, Any]:
    def metrics(t: Tally) -> list[dict[str, Any]]:
        denominator = sync_denominator(t, r.period)
        return [
            _metric("PUBLISH_ON_TIME", "Tỷ lệ TTHC công bố đúng hạn", 6),
            _metric("PUBLIC_UPDATE_ON_TIME", "Tỷ lệ TTHC cập nhật, công khai đúng hạn", 4),
            _metric("PUBLIC_CONTENT_FULL", "Tỷ lệ TTHC công khai đầy đủ nội dung", 2),
            _metric(
                "DOSSIER_SYNC",
                "Tỷ lệ hồ sơ đồng bộ lên Cổng DVCQG",
                6,
                t.received,
                denominator if denominator.is_integer() else round(denominator, 2),
            ),
        ]

    return _overview(r, metrics, 18) | {"monthlyChart": []}


def dossier_digitized(r: Report) -> dict[str, Any]:
    def metrics(t: Tally) -> list[dict[str, Any]]:
        return [
            _metric(
                "ORIGINAL_RESULT_AVAILABLE",
                "Tỷ lệ hồ sơ thủ tục hành chính có cấp kết quả giải quyết"
                " thủ tục hành chính điện tử",
                6,
                t.result_file,
                t.finished,
            ),
            _metric(
                "SO_HOA_GIAY_TO_GIAI_QUYET",
                "Tỷ lệ hồ sơ thủ tục hành chính thực hiện số hóa hồ sơ",
                4,
                t.attachments,
                t.received,
            ),
            _metric(
                "REUSED_DIGITIZED_DATA",
                "Tỷ lệ hồ sơ khai thác, sử dụng lại thông tin, dữ liệu số hóa",
                2,
                t.digitised,
                t.received,
                full_at=0.8,
            ),
            _metric(
                "SYNCED_WITH_DVCQG_PERSONAL_STORAGE",
                "Tỷ lệ hồ sơ TTHC được số hóa có kết nối, chia sẻ dữ liệu phục vụ tái sử dụng",
                4,
                t.from_repository,
                t.received,
            ),
            _metric(
                "CITIZEN_DATA_CONNECTED_DOSSIER",
                "Tỷ lệ hồ sơ TTHC có sử dụng thông tin, dữ liệu dân cư",
                2,
                t.vneid,
                t.received,
            ),
            _metric(
                "CITIZEN_DATA_CONNECTED_FORMALITY",
                "Tỷ lệ TTHC triển khai kết nối, chia sẻ dữ liệu dân cư phục vụ GQ TTHC",
                2,
            ),
            _metric(
                "ELECTRONIC_CERTIFIED_COPY",
                "Tỷ lệ cung cấp dịch vụ chứng thực bản sao điện tử từ bản chính",
                2,
            ),
        ]

    return _overview(r, metrics, 22)


def handling_satisfaction(r: Report) -> dict[str, Any]:
    # Ratings and complaints are the portal's alone: no row the simulator could fill.
    return _overview(r, lambda t: [], 18)


def _tree_totals(u: Unit, *, child: bool) -> dict[str, Any]:
    department = u.department
    head: dict[str, Any] = {
        "departmentId": department.id,
        "departmentName": department.name,
        "departmentCode": department.code,
    }
    if child:
        head["level"] = department.level
    return head


def _or_zero(value: float | None) -> float:
    return 0.0 if value is None else value


def dvc_progress_tree(r: Report) -> dict[str, Any]:
    def totals(t: Tally) -> dict[str, Any]:
        rate = on_time_rate(t)
        return {
            "totalReceived": t.reported_handled,
            "totalOnTime": t.on_time,
            "totalOverdue": max(t.reported_handled - t.on_time, 0),
            "avgProcessingDays": processing_days(t),
            "ratio": _or_zero(percent(rate)),
        }

    def score(t: Tally) -> float:
        return _or_zero(points(20, on_time_rate(t)))

    chart = []
    for month in range(1, 13):
        if month in r.period.months:
            rate = on_time_rate(r.monthly(month))
            on_time = _or_zero(percent(rate))
            overdue = 0.0 if rate is None else round(100 - on_time, 2)
        else:
            on_time, overdue = 0.0, 0.0
        chart.append({"month": f"{month:02d}", "onTimePct": on_time, "overduePct": overdue})
    t = r.root.tally
    return {
        "parent": _tree_totals(r.root, child=False)
        | totals(t)
        | {"totalCompleted": t.completed, "totalScore": score(t), "totalMaxScore": 20},
        "children": [
            _tree_totals(u, child=True)
            | totals(u.tally)
            | {"score": score(u.tally), "maxScore": 20, "scoreDelta": None}
            for u in r.children
        ],
        "monthlyChart": chart,
    }


def provide_online_tree(r: Report) -> dict[str, Any]:
    def totals(t: Tally) -> dict[str, Any]:
        return {
            "totalScore": None,
            "totalMaxScore": 12,
            "ratio": _or_zero(percent(online_rate(t, r.period))),
            "channelOnlineSum": t.online,
            "channelDirectSum": t.received - t.online - t.postal,
            "channelPostalSum": t.postal,
            "channelTotalSum": t.received,
        }

    return {
        "parent": _tree_totals(r.root, child=False) | totals(r.root.tally),
        "children": [
            _tree_totals(u, child=True) | totals(u.tally) | {"scoreDelta": None} for u in r.children
        ],
        "monthlyChart": [],
    }


def formality_online_payment_tree(r: Report) -> dict[str, Any]:
    def totals(t: Tally) -> dict[str, Any]:
        rate = share(t.paid_online, t.fee_bearing)
        return {
            "totalMaxScore": 6,
            "totalScore": _or_zero(points(6, rate)),
            "totalDossierOnlinePaymentSuccess": t.paid_online,
            "totalDossierFinancialObligation": t.fee_bearing,
            "ratio": _or_zero(percent(rate)),
        }

    return {
        "parent": _tree_totals(r.root, child=False) | totals(r.root.tally),
        "children": [
            _tree_totals(u, child=True) | totals(u.tally) | {"scoreDelta": None} for u in r.children
        ],
    }


ENDPOINTS: dict[str, Callable[[Report], dict[str, Any]]] = {
    "transparency": transparency,
    "dvc-progress-tree": dvc_progress_tree,
    "provide-online-tree": provide_online_tree,
    "formality-online-payment-tree": formality_online_payment_tree,
    "dossier-digitized": dossier_digitized,
    "handling-satisfaction": handling_satisfaction,
}


@router.post("/{endpoint}")
async def evaluation(request: Request, endpoint: str) -> JSONResponse:
    sim = simulator_of(request)
    service = f"reporting/{endpoint}"
    build = ENDPOINTS.get(endpoint)
    if build is None:
        return JSONResponse({"code": "NOT_FOUND", "message": endpoint}, status_code=404)
    if (failed := await fault_response(sim, PORTAL, service)) is not None:
        return failed
    body = await request.json()
    try:
        question = report(sim, body if isinstance(body, dict) else {})
    except ValueError as exc:
        sim.record(PORTAL, service, 400, None)
        return JSONResponse(
            {"code": "BAD_REQUEST", "data": None, "message": str(exc)}, status_code=400
        )
    sim.record(PORTAL, service, 201, None)
    return JSONResponse({"code": "OK", "data": build(question), "message": "OK"}, status_code=201)
