"""Landing -> bronze, the pure core: read landing files, enforce the contracts, filter privacy,
commit Delta. No Dagster here; `hn_assets/defs/ingest/` is the asset shell around it."""
