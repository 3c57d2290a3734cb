"""The DuckDB warehouse (silver and gold): erased by rebuilding it with dbt into a fresh file.

Chosen: move `warehouse.duckdb` aside, run a dbt full refresh (the `rebuild` callable: the job
passes dbt through its resource, inside the `duckdb_warehouse` pool), then delete the old file;
if the rebuild fails, the old file is put back and the erasure reports the warehouse as failed, so
the platform keeps a working warehouse and a rerun repeats the erasure.

Rejected: deleting rows through a short writer connection. It would make a second writer of a
warehouse whose one writer is dbt; it would have to know every model's key columns, and would still
leave the customer's share inside aggregates (`fct_product_demand_daily`, `product_features`) and
in the incremental models' state; and DuckDB keeps deleted rows in the file's free blocks until
they are reused. A full refresh into a fresh file recomputes every model from the erased bronze.
The cost is a full build (minutes at 10M events) per erasure: erasures are rare, and several
customers can be listed before one rebuild.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from hn_assets.erasure.registry import StoreAbsent
from hn_assets.erasure.subject import RAW_KEY_COLUMNS, RAW_TEXT_COLUMNS, Matcher, Subject
from hn_assets.transform import warehouse

SCHEMAS = ("silver", "gold")  # bronze holds views over the Delta files only


class WarehouseStore:
    def __init__(self, name: str, database: Path, rebuild: Callable[[], None], memory_limit: str = "1GB"):
        self.name, self.database, self.rebuild, self.memory_limit = name, database, rebuild, memory_limit
        self.notes: list[str] = []

    def scan(self, subject: Subject) -> int:
        if not self.database.exists():
            raise StoreAbsent("no warehouse.duckdb")
        with warehouse.read_only(self.database, self.memory_limit) as con:
            return sum(_table_hits(con, schema, table, subject.matcher) for schema, table in _tables(con))

    def erase(self, subject: Subject) -> int:
        before = self.scan(subject)
        if not before:
            return 0  # nothing of them in silver or gold: no rebuild
        aside = self.database.with_name(f"{self.database.name}.erasing")
        wal = self.database.with_name(f"{self.database.name}.wal")
        shutil.move(self.database, aside)
        if wal.exists():
            wal.unlink()  # DuckDB checkpoints on close: a leftover WAL belongs to no open writer
        try:
            self.rebuild()
        except Exception:
            self.database.unlink(missing_ok=True)
            shutil.move(aside, self.database)
            raise
        aside.unlink()
        return before - self.scan(subject)


def _tables(con) -> list[tuple[str, str]]:
    placeholders = ", ".join("?" for _ in SCHEMAS)
    return con.execute(
        "select schema_name, table_name from duckdb_tables() "
        f"where database_name = current_database() and schema_name in ({placeholders}) order by all",
        list(SCHEMAS),
    ).fetchall()


def _table_hits(con, schema: str, table: str, matcher: Matcher) -> int:
    columns = con.execute(
        "select column_name from duckdb_columns() where database_name = current_database() "
        "and schema_name = ? and table_name = ? and data_type = 'VARCHAR'",
        [schema, table],
    ).fetchall()
    relation = f'"{schema}"."{table}"'
    conditions, params = [], []
    for (column,) in columns:
        if column in RAW_KEY_COLUMNS | RAW_TEXT_COLUMNS:
            distinct = con.sql(f'select distinct "{column}" from {relation}').pl().lazy()
            keys = matcher.raw_keys(distinct, column)
            if keys:
                conditions.append(f'"{column}" in (select unnest(?))')
                params.append(keys)
        else:
            conditions.append(f'coalesce(regexp_matches("{column}", ?), false)')
            params.append(matcher.pattern)
    if not conditions:
        return 0
    return con.execute(f"select count(*) from {relation} where {' or '.join(conditions)}", params).fetchone()[0]
