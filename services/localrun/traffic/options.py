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
    national_repository_share: float = 0.2
    """Dossiers with a file taken from the national repository (`DuocLayTuKhoDMQG`, 4.4)."""
    vneid_share: float = 0.4
    """Dossiers whose applicant's account is verified with VNeID (4.5b)."""
    # How sources send a dossier's life (`plans.Pattern`); a dossier follows at most one, the
    # rest are sent the plain way (a header at every change, often followed by a step).
    bare_life_share: float = 0.04
    """Every change a bare DongBoHoSoMC item, no envelope and no step: times from its dates."""
    sparse_header_share: float = 0.06
    """Headers only at the first change, at reception and at some later ones; steps for the
    rest."""
    late_facts_share: float = 0.06
    """The first change only as a step, the next header without channel, fees, payment,
    flags and attachments: the facts arrive with the headers after it."""
    backfill_share: float = 0.04
    """Dossiers whose whole life lies `backfill_days` in the past (an export of old dossiers)."""
    backfill_days: float = 60.0
    reexport_share: float = 0.05
    """Finished dossiers whose final header the source exports again `reexport_after_seconds`
    later: the same item (a duplicate) or, for a finished one, with its result file linked."""
    reexport_after_seconds: float = 3.0
    recode_share: float = 0.03
    """Dossiers whose agency gets a new code mid-life (agencies merged and re-coded)."""
    dvcqg_share: float = 0.2
    """Dossiers sent through ingest's portal-compatible intake (`/dvcqg`) the way an existing
    adapter sends them (DongBoHoSoMC, then CapNhatTienDoHoSoMC), whole dossiers so their order
    holds; the same share of the malformed events goes there too (refused at the intake). Drawn
    among the plainly sent dossiers, as many as this share of all dossiers (see `generator`)."""
    http_share: float = 0.1
    """Of the dossiers whose source writes structured CloudEvents (neither binary nor bare
    items), those it posts to ingest's HTTP intake (`/v1/events`) instead of producing them;
    the same share of the malformed events goes there too (refused with a 4xx)."""
    recode_at_reception: bool = True
    """The new code from reception on (else from a random later change): a sync worker that
    counts a dossier under the agency of its first received revision then agrees with one that
    counts it under its current agency."""
