"""Short-lived, read-only access to the DuckDB warehouse (dbt is its only writer)."""

from contextlib import contextmanager
from pathlib import Path

import duckdb


@contextmanager
def read_only(path: Path, memory_limit: str = "1GB"):
    """A read-only connection held as briefly as possible: any open handle blocks dbt's writes."""
    connection = duckdb.connect(str(path), read_only=True, config={"memory_limit": memory_limit})
    try:
        yield connection
    finally:
        connection.close()


def table_profiles(
    path: Path, names: set[str], uncounted: frozenset[str] = frozenset(), memory_limit: str = "1GB"
) -> dict[str, dict]:
    """Column types and row count of each named silver/gold relation; `uncounted` ones get no count
    (counting a view reruns its query)."""
    if not path.exists():
        return {}
    profiles: dict[str, dict] = {}
    with read_only(path, memory_limit) as con:
        relations = con.execute(
            "select table_schema, table_name from information_schema.tables where table_schema in ('silver', 'gold')"
        ).fetchall()
        for schema, name in relations:
            if name not in names:
                continue
            columns = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, name],
            ).fetchall()
            rows = (
                None if name in uncounted else con.execute(f'select count(*) from "{schema}"."{name}"').fetchall()[0][0]
            )
            profiles[name] = {"rows": rows, "columns": columns}
    return profiles
