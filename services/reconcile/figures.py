"""The portal's own figures read from its reporting answers, beside govsync's (pure).

DOMAIN.md §2's evaluation endpoints, asked with the agency's `departmentId` as the root: the
metric rows (`transparency`, `dossier-digitized`) are the `overview`'s `metrics`, the trees
(`dvc-progress-tree`, `provide-online-tree`, `formality-online-payment-tree`) give their totals
on `parent`. Ratios are percentages there and fractions here.

    indicator  endpoint                       numerator / denominator              points
    ---------  -----------------------------  -----------------------------------  ----------
    1.4        transparency DOSSIER_SYNC      numerator / denominator              score
    2.1        dvc-progress-tree              totalOnTime / totalReceived          totalScore
    2.2        dvc-progress-tree              (avgProcessingDays is the rate)      —
    3.3        provide-online-tree            channelOnlineSum / channelTotalSum   totalScore
    3.6        formality-online-payment-tree  totalDossierOnlinePaymentSuccess /   totalScore
                                              totalDossierFinancialObligation
    4.1-4.5b   dossier-digitized              ORIGINAL_RESULT_AVAILABLE, SO_HOA_GIAY_TO_GIAI_QUYET,
                                              REUSED_DIGITIZED_DATA, SYNCED_WITH_DVCQG_PERSONAL_
                                              STORAGE, CITIZEN_DATA_CONNECTED_DOSSIER rows
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENDPOINTS = (
    "transparency",
    "dvc-progress-tree",
    "provide-online-tree",
    "formality-online-payment-tree",
    "dossier-digitized",
)

METRIC_ROWS: Mapping[str, tuple[str, str]] = {
    "1.4": ("transparency", "DOSSIER_SYNC"),
    "4.1": ("dossier-digitized", "ORIGINAL_RESULT_AVAILABLE"),
    "4.2": ("dossier-digitized", "SO_HOA_GIAY_TO_GIAI_QUYET"),
    "4.3": ("dossier-digitized", "REUSED_DIGITIZED_DATA"),
    "4.4": ("dossier-digitized", "SYNCED_WITH_DVCQG_PERSONAL_STORAGE"),
    "4.5b": ("dossier-digitized", "CITIZEN_DATA_CONNECTED_DOSSIER"),
}

TREES: Mapping[str, tuple[str, str | None, str | None, str | None]] = {
    # indicator: (endpoint, numerator, denominator, points)
    "2.1": ("dvc-progress-tree", "totalOnTime", "totalReceived", "totalScore"),
    "3.3": ("provide-online-tree", "channelOnlineSum", "channelTotalSum", "totalScore"),
    "3.6": (
        "formality-online-payment-tree",
        "totalDossierOnlinePaymentSuccess",
        "totalDossierFinancialObligation",
        "totalScore",
    ),
}


@dataclass(frozen=True, slots=True)
class Figure:
    numerator: float | None = None
    denominator: float | None = None
    rate: float | None = None
    """A fraction; 2.2: mean days."""
    points: float | None = None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _fraction(percent: object) -> float | None:
    value = _number(percent)
    return None if value is None else value / 100


def portal_figures(answers: Mapping[str, Any]) -> dict[str, Figure]:
    """Per indicator, the portal's figures from the `data` of each endpoint's answer."""
    out: dict[str, Figure] = {}
    for indicator, (endpoint, code) in METRIC_ROWS.items():
        data = answers.get(endpoint)
        overview = data.get("overview") if isinstance(data, Mapping) else None
        metrics = overview.get("metrics") if isinstance(overview, Mapping) else None
        for row in metrics if isinstance(metrics, list) else []:
            if isinstance(row, Mapping) and row.get("code") == code:
                out[indicator] = Figure(
                    _number(row.get("numerator")),
                    _number(row.get("denominator")),
                    _fraction(row.get("ratio")),
                    _number(row.get("score")),
                )
    for indicator, (endpoint, num, den, score) in TREES.items():
        data = answers.get(endpoint)
        parent = data.get("parent") if isinstance(data, Mapping) else None
        if not isinstance(parent, Mapping):
            continue
        out[indicator] = Figure(
            _number(parent.get(num)) if num else None,
            _number(parent.get(den)) if den else None,
            _fraction(parent.get("ratio")),
            _number(parent.get(score)) if score else None,
        )
        if indicator == "2.1":
            out["2.2"] = Figure(rate=_number(parent.get("avgProcessingDays")))
    return out


@dataclass(frozen=True, slots=True)
class Side:
    """One indicator on both sides and how far apart."""

    indicator: str
    govsync: Figure
    portal: Figure

    @property
    def points_difference(self) -> float | None:
        if self.govsync.points is None or self.portal.points is None:
            return None
        return self.portal.points - self.govsync.points

    @property
    def rate_difference(self) -> float | None:
        if self.govsync.rate is None or self.portal.rate is None:
            return None
        return self.portal.rate - self.govsync.rate


def side_by_side(ours: Mapping[str, Figure], theirs: Mapping[str, Figure]) -> list[Side]:
    """Every indicator the portal reported, in the order of `ours` (govsync's indicators)."""
    order = [i for i in ours if i in theirs] + [i for i in theirs if i not in ours]
    return [Side(i, ours.get(i, Figure()), theirs[i]) for i in order]
