"""Ingest: consume, validate and normalise dossier and e-document events."""
