"""Landing -> bronze: read landing files, enforce the contracts, filter privacy, commit Delta."""
