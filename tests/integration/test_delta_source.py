"""The dbt-duckdb plugin that shows bronze Delta tables to DuckDB, on real Delta tables and DuckDB files."""

from datetime import UTC, date, datetime

import duckdb
import polars as pl
import pytest
from deltalake import write_deltalake

from hn_assets.transform.delta_source import Plugin, delta_tables

pytestmark = pytest.mark.integration


def _events(n: int, day: date, start: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(start, start + n)],
            "price": [float(i) for i in range(n)],
            "_ingested_at": [datetime(2026, 9, 1, tzinfo=UTC)] * n,
            "event_date": [day] * n,
        }
    )


def _plugin(root) -> Plugin:
    return Plugin(name="delta_source", plugin_config={"lake_root": str(root), "schema": "bronze"})


def _open(db, root) -> duckdb.DuckDBPyConnection:
    """What dbt-duckdb does when it opens the warehouse: connect, then let the plugin configure it."""
    con = duckdb.connect(str(db))
    _plugin(root).configure_connection(con)
    return con


def test_views_show_each_snapshot_typed_and_are_readable_by_other_processes(tmp_path):
    root, db = tmp_path / "bronze", tmp_path / "warehouse.duckdb"
    _events(3, date(2026, 9, 1)).write_delta(
        root / "bronze_events", delta_write_options={"partition_by": ["event_date"]}
    )
    (root / "not_a_table").mkdir()

    assert [name for name, _ in delta_tables(str(root))] == ["bronze_events"]
    with _open(db, root) as con:
        assert con.execute("select count(*), min(event_date) from bronze.bronze_events").fetchone() == (
            3,
            date(2026, 9, 1),
        )
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns where table_name = 'bronze_events'"
            ).fetchall()
        )
    assert types["event_date"] == "DATE" and types["_ingested_at"] == "TIMESTAMP WITH TIME ZONE"

    # A later commit (with a new column) is seen by the next dbt invocation, not the earlier one.
    later = _events(2, date(2026, 9, 2), start=3).with_columns(pl.lit("web").alias("channel"))
    later.write_delta(
        root / "bronze_events",
        mode="append",
        delta_write_options={"partition_by": ["event_date"], "schema_mode": "merge"},
    )
    with duckdb.connect(str(db), read_only=True) as other:  # another process's view of the old snapshot
        assert other.execute("select count(*) from bronze.bronze_events").fetchone() == (3,)
    with _open(db, root) as con:
        assert con.execute("select count(*), count(channel) from bronze.bronze_events").fetchone() == (5, 2)


def test_an_empty_table_is_a_typed_view_and_old_copies_are_replaced(tmp_path):
    root, db = tmp_path / "bronze", tmp_path / "warehouse.duckdb"
    write_deltalake(str(root / "bronze_empty"), _events(0, date(2026, 9, 1)).to_arrow(), partition_by=["event_date"])
    with duckdb.connect(str(db)) as con:  # a warehouse from before the plugin held a copied table
        con.execute("create schema bronze; create table bronze.bronze_empty as select 1 as stale")
    with _open(db, root) as con:
        assert con.execute("select count(*) from bronze.bronze_empty").fetchone() == (0,)
        assert [c[0] for c in con.execute("describe bronze.bronze_empty").fetchall()] == [
            "event_id",
            "price",
            "_ingested_at",
            "event_date",
        ]
        assert con.execute(
            "select table_type from information_schema.tables where table_name = 'bronze_empty'"
        ).fetchone() == ("VIEW",)
