"""One `Store` (name, scan, erase) per kind of storage the platform writes (see `registry`)."""
