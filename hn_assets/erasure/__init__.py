"""Erasure of one customer from every store, the pure core (no Dagster; the job is
`hn_assets/defs/privacy/erasure.py`, the command `hn erase`).

- `subject`: who is erased, as pseudonyms only (the customer's token and the keys linked to it),
  and how a store's values are matched against them;
- `erasure_list`: the list of erased pseudonyms (a Delta table beside bronze) and the filter that
  ingest applies to every landing batch, so a late or re-landed file cannot bring anyone back;
- `resolve`: finds the keys linked to a customer (their visitors, day-salted visitor tokens,
  orders) in bronze and in the raw landing and archive files;
- `registry`: the `Store` protocol (name, `scan`, `erase`), the run over a list of stores and the
  report; `stores`: one implementation per kind of store (files, Delta, Parquet, DuckDB, Feast
  online store, MLflow artifacts). A later layer (inference log, drift reference sets) plugs in by
  adding a `Store` to the list the job builds.
"""
