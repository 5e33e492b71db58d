"""The default names govsync uses on the broker: its topics and consumer groups, defined once.

Every settings class takes its defaults from here (`GOVSYNC_TOPIC_*` and the group settings
override them); the local run and the dead-letter command read the same names.
"""

from __future__ import annotations

DOSSIER = "govsync.dossier.v1"
"""Dossier and progress events from the case-handling systems (ingest's input)."""
DOSSIER_NORMALIZED = "govsync.dossier.normalized.v1"
"""`DossierRecord`s, keyed by dossier code: ingest's output, sync's input."""
DLQ = "govsync.dlq.v1"
"""Dead letters of every service."""
INGEST_STATE = "govsync.ingest.state.v1"
"""Compacted: ingest's per-dossier state, co-partitioned with `DOSSIER`."""
EDOCUMENT = "govsync.edocument.v1"
"""edXML document and status packages."""
EDOCUMENT_NORMALIZED = "govsync.edocument.normalized.v1"
"""`EDocumentRecord`s and `EDocumentStatusRecord`s, keyed by document id."""
EDOCUMENT_LEDGER = "govsync.ingest.edocuments.v1"
"""Compacted: ingest's e-document counting ledger, keyed by document id, co-partitioned with
`EDOCUMENT` (an entry lives in the partition of the record that created it)."""
SYNC_ACKED_TEMPLATE = "govsync.sync.{target}.acked.v1"
"""Compacted: the revisions a destination acknowledged, co-partitioned with `DOSSIER_NORMALIZED`."""

DEFAULT_PARTITIONS = 6
"""Partitions of a topic a service creates (the local run, a cluster that lets it create them)."""

INGEST_GROUP = "govsync-ingest"
SYNC_GROUP_PREFIX = "govsync-sync-"
"""Followed by the target: `govsync-sync-portal`, `govsync-sync-ndxp`."""
SCORES_GROUP = "govsync-scores"
"""The scores service's consumer group (all three of its topics)."""

RESEND_HEADER = "govsync-resend"
"""On a `DOSSIER_NORMALIZED` record the reconciliation re-published: the one target it is for
(`portal`); every other consumer treats it as the copy it is."""
RESEND_UPTO_HEADER = "govsync-resend-upto"
"""With `RESEND_HEADER`: the dossier's latest revision when the re-send was decided. The target
delivers the copy only while it has acknowledged nothing newer."""
