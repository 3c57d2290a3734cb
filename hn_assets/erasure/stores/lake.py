"""Bronze Delta tables and their history.

A Delta delete only adds a version: the older versions' Parquet files still hold the rows, and the
log's older commits hold them too (per-file min/max statistics, the delete's own predicate). So
after the delete each table is vacuumed with retention 0 (`enforce_retention_duration=False`), then
checkpointed, and its log entries before the checkpoint are removed (`delta.logRetentionDuration`
set to 0 for that one cleanup, then put back). Time travel to a version before the erasure is gone
by design; the app transactions that make ingest idempotent survive in the checkpoint.

delta-rs deletes by rewriting files (no deletion vectors), which keeps each table readable as plain
Parquet by `transform/delta_source.py`; the protocol is checked after the delete anyway, because a
table that needs a Delta reader would fail every dbt run.

The vacuum deletes every unreferenced file, including one a concurrent writer has written but not
committed yet: the job runs in the Dagster pool `bronze_lake` and, on a local lake, under the
ingest's lake lock.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.fs as pafs
from deltalake import DeltaTable

from hn_assets.erasure.registry import CouldNotErase
from hn_assets.erasure.subject import RAW_KEY_COLUMNS, RAW_TEXT_COLUMNS, Matcher, Subject
from hn_assets.ingest.bronze import DeltaLake
from hn_assets.ingest.pipeline import lake_lock

LOG_RETENTION = "delta.logRetentionDuration"
DEFAULT_LOG_RETENTION = "interval 30 days"  # Delta's default


class DeltaLakeStore:
    def __init__(self, name: str, lake: DeltaLake, tables: list[str]):
        self.name, self.lake, self.tables = name, lake, tables
        self.notes: list[str] = []

    def _present(self) -> list[tuple[str, DeltaTable]]:
        return [(t, dt) for t in self.tables if (dt := self.lake.table(t)) is not None]

    def scan(self, subject: Subject) -> int:
        """Rows in each table's current version, in data files no version references any more, and
        log entries that mention the subject."""
        options = self.lake.storage_options
        return sum(_table_hits(self.lake.uri(t), dt, subject.matcher, options) for t, dt in self._present())

    def erase(self, subject: Subject) -> int:
        removed, self.notes = 0, []
        options = self.lake.storage_options
        with lake_lock(self.lake.root):
            for table, dt in self._present():
                history = _history_hits(self.lake.uri(table), dt, subject.matcher, options)
                deleted = _delete(dt, subject.matcher, options)
                # Purged after a delete, and whenever history still holds the subject (an interrupted erasure).
                if deleted or history:
                    _purge_history(dt)
                    _check_plain(table, dt)
                    self.notes.append(f"{table}: {deleted} rows deleted, history purged ({history} old entries)")
                removed += deleted
        return removed


def _table_hits(uri: str, dt: DeltaTable, matcher: Matcher, options: dict | None = None) -> int:
    current = _count(pl.scan_delta(uri, version=dt.version(), storage_options=options), matcher)
    return current + _history_hits(uri, dt, matcher, options)


def _history_hits(uri: str, dt: DeltaTable, matcher: Matcher, options: dict | None = None) -> int:
    stale = sum(_count(pl.scan_parquet(f, storage_options=options), matcher) for f in _unreferenced_files(uri, dt))
    return stale + _log_hits(uri, matcher)


def _count(frame: pl.LazyFrame, matcher: Matcher) -> int:
    expr, _ = matcher.row_filter(frame)
    return 0 if expr is None else frame.filter(expr).select(pl.len()).collect().item()


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    return pafs.FileSystem.from_uri(uri if "://" in uri else Path(uri).resolve().as_uri())


def _unreferenced_files(uri: str, dt: DeltaTable) -> list[str]:
    """Data files on storage that the current version does not reference (older versions' files)."""
    filesystem, base = _filesystem(uri)
    current = {u.rsplit("/", 1)[-1] for u in dt.file_uris()}
    found = filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    return [
        f"{uri.rstrip('/')}/{info.path[len(base) :].lstrip('/')}"
        for info in found
        if info.type == pafs.FileType.File
        and info.path.endswith(".parquet")
        and "/_delta_log/" not in info.path
        and info.base_name not in current
    ]


def _log_hits(uri: str, matcher: Matcher) -> int:
    """Log actions (JSON lines of the commits) that mention a listed token or order id."""
    filesystem, base = _filesystem(uri)
    entries = filesystem.get_file_info(pafs.FileSelector(f"{base}/_delta_log", allow_not_found=True))
    hits = 0
    for info in entries:
        if info.type == pafs.FileType.File and info.path.endswith(".json"):
            with filesystem.open_input_stream(info.path) as stream:
                lines = pl.Series(stream.read().decode("utf-8", "replace").splitlines(), dtype=pl.String)
            hits += int(_line_hits(lines, matcher).sum())
    return hits


def _line_hits(lines: pl.Series, matcher: Matcher) -> pl.Series:
    return lines.to_frame("line").select(matcher.text(pl.col("line")))["line"] | matcher.raw_text(lines)


def _delete(dt: DeltaTable, matcher: Matcher, options: dict | None = None) -> int:
    """Delete the subject's rows; the predicate names exactly the matching values of each column."""
    frame = pl.scan_delta(dt.table_uri, version=dt.version(), storage_options=options)
    expr, keys = matcher.row_filter(frame)
    if expr is None:
        return 0
    text = [n for n, t in frame.collect_schema().items() if t == pl.String]
    rows = frame.filter(expr).select(text).collect()
    if rows.is_empty():
        return 0
    clauses = []
    for column in text:
        if column in RAW_KEY_COLUMNS | RAW_TEXT_COLUMNS:
            values = sorted(set(keys[column]) & set(rows[column].drop_nulls().to_list()))
        else:
            values = rows.filter(matcher.text(pl.col(column)))[column].unique().sort().to_list()
        if values:
            clauses.append(f'"{column}" IN ({", ".join(_literal(v) for v in values)})')
    return int(dt.delete(" OR ".join(clauses))["num_deleted_rows"])


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _purge_history(dt: DeltaTable) -> None:
    """Remove what older versions keep: their data files, then their log entries."""
    dt.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False)
    configured = dt.metadata().configuration.get(LOG_RETENTION)
    dt.alter.set_table_properties({LOG_RETENTION: "interval 0 seconds"})
    dt.create_checkpoint()
    dt.cleanup_metadata()
    dt.alter.set_table_properties({LOG_RETENTION: configured or DEFAULT_LOG_RETENTION})


def _check_plain(table: str, dt: DeltaTable) -> None:
    dt.update_incremental()
    protocol = dt.protocol()
    if protocol.min_reader_version > 1 or protocol.reader_features:
        raise CouldNotErase(
            f"{table} now needs a Delta reader ({protocol.reader_features}); dbt's delta_source cannot read it"
        )
