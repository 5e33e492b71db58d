"""govsync: the bridge from case-handling and document systems to the national platforms."""
