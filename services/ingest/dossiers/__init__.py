"""A dossier's path through ingest, from the event's data to a decision: pure, no I/O."""
