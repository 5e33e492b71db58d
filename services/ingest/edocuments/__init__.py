"""An e-document's path through ingest: the edXML package read, its signatures verified, counted."""
