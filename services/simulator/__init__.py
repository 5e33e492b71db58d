"""A local Public Service Portal and NDXP speaking govsync's protocols, with faults on demand."""
