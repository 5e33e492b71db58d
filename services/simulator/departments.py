"""The simulated portal's units: a root department and one child per agency code (`madonvi`).

The portal's reporting API names units by department id (a UUID) and code (`H29`, `H29.01` …),
not by `madonvi` (DOMAIN.md §2), so a mapping is configuration on both sides. Here it is given
to the `Simulator`, and an agency code it was not given gets a department of its own, with an id
derived from the code (uuid5), so a test can compute it or read it from `/_sim/portal/departments`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

NAMESPACE = uuid.UUID("6f1c2a4e-3b0d-5c7e-9a8f-0d1e2f3a4b5c")
"""Of the derived department ids: `uuid5(NAMESPACE, madonvi)`."""

Level = Literal["PROVINCE", "COMMUNE"]


@dataclass(frozen=True, slots=True)
class Department:
    id: str
    code: str
    name: str
    level: Level = "PROVINCE"

    @property
    def type(self) -> str:
        return "COMMUNE_PEOPLE_COMMITTEE" if self.level == "COMMUNE" else "PROVINCIAL_DEPARTMENT"

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "code": self.code, "name": self.name, "level": self.level}


def derived(madonvi: str) -> Department:
    """The department of an agency code nobody configured."""
    return Department(str(uuid.uuid5(NAMESPACE, madonvi)), madonvi, f"Đơn vị {madonvi}")


ROOT = Department(str(uuid.uuid5(NAMESPACE, "root")), "H29", "UBND tỉnh (mô phỏng)")


@dataclass(frozen=True, slots=True)
class Departments:
    """`root` and, per agency code, its department (configured, else derived)."""

    root: Department = ROOT
    configured: Mapping[str, Department] = field(default_factory=dict)

    def of(self, madonvi: str) -> Department:
        return self.configured.get(madonvi) or derived(madonvi)

    def children(self, codes: set[str]) -> dict[str, Department]:
        """Every configured department and those of `codes`, by agency code."""
        every = dict(self.configured)
        for code in codes - every.keys():
            every[code] = derived(code)
        return every
