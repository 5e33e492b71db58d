"""Sync: deliver normalised dossier status to the Public Service Portal and NDXP."""
