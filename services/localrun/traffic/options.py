"""The shape of the local run's traffic: rates, shares and the agencies it speaks for."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_AGENCIES = ("000.00.20.H57", "000.00.10.H29", "000.00.00.G22", "000.12.31.H56")
# Agencies outside the run that send e-documents to the run's own (incoming documents).
OTHER_AGENCIES = ("000.00.30.H01", "000.00.41.H31")


@dataclass(frozen=True, slots=True)
class TrafficOptions:
    """The shape of the traffic; shares are probabilities in [0, 1]."""

    dossiers_per_second: float = 15.0
    agencies: tuple[str, ...] = DEFAULT_AGENCIES
    source: str = "urn:vn:gov:dvc:local"
    online_share: float = 0.55
    postal_share: float = 0.10
    """The rest is in person."""
    paid_online_share: float = 0.6
    """Of dossiers whose procedure has a fee."""
    digitised_share: float = 0.7
    reject_share: float = 0.05
    withdraw_share: float = 0.04
    supplement_share: float = 0.15
    """Dossiers with one supplement request; a fifth as many again get two (always late)."""
    late_share: float = 0.2
    """Dossiers whose due date falls before their finish (less the time of one supplement)."""
    step_seconds: float = 2.0
    """Mean time between two status changes of a dossier."""
    progress_share: float = 0.5
    """Status changes followed by a CapNhatTienDoHoSoMC processing step."""
    duplicate_rate: float = 0.02
    out_of_order_rate: float = 0.02
    malformed_rate: float = 0.02
    binary_share: float = 0.2
    bare_share: float = 0.1
    """Dossiers whose first event (status 1) comes as a bare item without an envelope."""
    dialect_share: float = 0.35
    """Dossiers whose source writes keys, dates and codes its own way."""
    edocuments_per_second: float = 0.0
    """New edXML document packages per second (0: none)."""
    edocument_incoming_share: float = 0.25
    """Documents sent to the run's agencies by others; the rest are issued by its own."""
    edocument_verified_share: float = 0.6
    """Signed by the trusted signer; then untrusted, tampered (invalid), and the rest unsigned."""
    edocument_untrusted_share: float = 0.15
    edocument_invalid_share: float = 0.1
    edocument_duplicate_rate: float = 0.05
    """Packages sent twice (the second one is a duplicate, never counted)."""
