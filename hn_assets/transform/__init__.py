"""Silver and gold support outside dbt's SQL: the dbt-duckdb plugin that shows bronze Delta tables
to DuckDB, and short-lived read-only access to the warehouse. `hn_assets/defs/transform/` is the
asset shell (dagster-dbt)."""
