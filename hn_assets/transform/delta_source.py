"""dbt-duckdb plugin: every bronze Delta table as a view over its current snapshot's Parquet files.

When dbt opens the warehouse, `bronze.<table>` is (re)created for each Delta table under the lake
root as `read_parquet([the snapshot's files])`, with partition values typed from their paths.
DuckDB then reads bronze with its own Parquet reader: in parallel, with projection and filter
pushdown, inside its memory limit, nothing copied; and the whole dbt invocation sees one snapshot
per table, the one current when it started. The views hold plain file lists, so any process can
query them, as of the last dbt invocation (a later vacuum, e.g. by an erasure, removes files they
name until dbt next opens the warehouse).

Why not dbt-duckdb's built-in `delta` source plugin: it hands DuckDB a pyarrow dataset, which DuckDB
either scans through Arrow (at 10M events twice the time, plus ~3 GB of Arrow read-ahead outside
DuckDB's memory limit) or copies into the warehouse on every run (`materialization: table`).

Only plain tables can be read this way: a table whose protocol needs a Delta reader (deletion
vectors, column mapping) fails the dbt run with its name. Object-store lakes need DuckDB's httpfs
extension and a DuckDB secret in the profile (see docs/scale-out.md).

Profile: `plugins: [{module: hn_assets.transform.delta_source, config: {lake_root: ..., schema: bronze}}]`.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

import pyarrow.fs as pafs
from dbt.adapters.duckdb.plugins import BasePlugin
from deltalake import DeltaTable

# Delta primitive types of partition columns -> DuckDB types (values come from the file paths).
PARTITION_TYPES = {
    "string": "VARCHAR",
    "date": "DATE",
    "integer": "INTEGER",
    "long": "BIGINT",
    "short": "SMALLINT",
    "byte": "TINYINT",
    "boolean": "BOOLEAN",
    "double": "DOUBLE",
    "float": "FLOAT",
    "timestamp": "TIMESTAMPTZ",
    "timestamp_ntz": "TIMESTAMP",
}


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict) -> None:
        self.lake_root = plugin_config["lake_root"]
        self.schema = plugin_config.get("schema", "bronze")
        self.storage_options = plugin_config.get("storage_options")

    def configure_connection(self, conn) -> None:
        conn.execute(f"create schema if not exists {_ident(self.schema)}")
        for name, uri in delta_tables(self.lake_root):
            table = DeltaTable(uri, storage_options=self.storage_options)
            replace_view(conn, self.schema, name, snapshot_sql(conn, table, uri))


def delta_tables(root: str) -> list[tuple[str, str]]:
    """(name, uri) of every Delta table directly under `root`."""
    local = urlparse(root).scheme in ("", "file")
    filesystem, base = pafs.FileSystem.from_uri(os.path.abspath(root) if local else root)
    found = []
    for entry in filesystem.get_file_info(pafs.FileSelector(base, allow_not_found=True)):
        log = filesystem.get_file_info(f"{entry.path}/_delta_log")
        if entry.type == pafs.FileType.Directory and log.type == pafs.FileType.Directory:
            found.append((entry.base_name, f"{root.rstrip('/')}/{entry.base_name}"))
    return sorted(found)


def snapshot_sql(conn, table: DeltaTable, uri: str) -> str:
    protocol = table.protocol()
    if protocol.min_reader_version > 1 or protocol.reader_features:
        raise ValueError(
            f"Delta table {uri} needs a Delta reader (reader version {protocol.min_reader_version}, "
            f"features {protocol.reader_features}); bronze tables must stay plain Parquet"
        )
    files = table.file_uris()
    if not files:
        return _empty_select(conn, table)
    options = "union_by_name = true"  # files written before a column was added read it as null
    partitions = _partition_types(table)
    if partitions:
        types = ", ".join(f"{_literal(c)}: {_literal(t)}" for c, t in partitions.items())
        options += f", hive_partitioning = true, hive_types = {{{types}}}"
    return f"select * from read_parquet([{', '.join(map(_literal, files))}], {options})"


def replace_view(conn, schema: str, name: str, sql: str) -> None:
    qualified = f"{_ident(schema)}.{_ident(name)}"
    is_table = conn.execute(
        "select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = ? and table_name = ?",
        [schema, name],
    ).fetchone()[0]
    if is_table:  # warehouses built before this plugin hold copies
        conn.execute(f"drop table {qualified}")
    conn.execute(f"create or replace view {qualified} as {sql}")


def _partition_types(table: DeltaTable) -> dict[str, str]:
    fields = {f.name: f.type for f in table.schema().fields}
    types = {}
    for column in table.metadata().partition_columns:
        delta_type = getattr(fields[column], "type", None)
        if delta_type not in PARTITION_TYPES:
            raise ValueError(f"partition column {column} has type {fields[column]}, not readable from a path")
        types[column] = PARTITION_TYPES[delta_type]
    return types


def _empty_select(conn, table: DeltaTable) -> str:
    """A table with no files yet: its columns, typed, and no rows."""
    cursor = conn.cursor()
    try:
        cursor.register("empty_delta_snapshot", table.to_pyarrow_dataset().schema.empty_table())
        columns = cursor.execute("describe empty_delta_snapshot").fetchall()
    finally:
        cursor.close()
    return (
        "select " + ", ".join(f"cast(null as {kind}) as {_ident(name)}" for name, kind, *_ in columns) + " where false"
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
