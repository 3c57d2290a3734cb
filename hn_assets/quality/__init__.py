"""Data quality: Great Expectations suites declared as data, and their validation.
`hn_assets/defs/quality/` runs them as Dagster asset checks."""
