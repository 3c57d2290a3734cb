"""Bronze Delta tables: append-only, one commit per table per batch, idempotent per landing file.

Each commit records the landing files it took as Delta transaction identifiers (app_id = the
file's content hash), so a rerun skips exactly the files a table already holds: a crash between two
tables' commits is completed by the rerun, never duplicated.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake
from deltalake.exceptions import TableNotFoundError

PARTITION_COLUMN = "event_date"
# Streaming writes keep a writer open per partition: small row groups and files bound the memory.
STREAM_WRITER = WriterProperties(max_row_group_size=65_536)
STREAM_TARGET_FILE_BYTES = 64 * 1024 * 1024


@dataclass
class DeltaLake:
    root: str
    storage_options: dict[str, str] | None = None

    def uri(self, table: str) -> str:
        return f"{self.root.rstrip('/')}/{table}"

    def table(self, table: str) -> DeltaTable | None:
        try:
            return DeltaTable(self.uri(table), storage_options=self.storage_options)
        except TableNotFoundError:
            return None

    def committed_ids(self, table: str, app_ids: list[str]) -> set[str]:
        dt = self.table(table)
        if dt is None:
            return set()
        return {a for a in app_ids if dt.transaction_version(a) is not None}

    def append(self, table: str, df: pl.DataFrame, app_ids: list[str]) -> None:
        """One atomic commit: the rows and the ids of the landing files they came from.

        A batch with no rows still commits, so the table records that it has taken those files.
        """
        if df.is_empty() and not app_ids:
            return
        df.write_delta(
            self.uri(table),
            mode="append",
            storage_options=self.storage_options,
            delta_write_options={
                "partition_by": [PARTITION_COLUMN],
                "schema_mode": "merge",
                "commit_properties": CommitProperties(app_transactions=[Transaction(a, 1) for a in app_ids]),
            },
        )

    def append_stream(self, table: str, frames: Iterator[pl.DataFrame], app_ids: list[str]) -> int:
        """Like `append`, for data that comes in batches: still one atomic commit. Returns rows written."""
        iterator = iter(frames)
        first = next(iterator, None)
        if first is None:
            return 0
        # String views pass to delta-rs as they are; the oldest Arrow layout would copy every string.
        arrow_first = first.to_arrow(compat_level=pl.CompatLevel.newest())
        schema, written = arrow_first.schema, [first.height]

        def batches():
            yield from arrow_first.to_batches()
            for frame in iterator:
                written.append(frame.height)
                yield from frame.to_arrow(compat_level=pl.CompatLevel.newest()).cast(schema).to_batches()

        write_deltalake(
            self.uri(table),
            pa.RecordBatchReader.from_batches(schema, batches()),
            mode="append",
            partition_by=[PARTITION_COLUMN],
            schema_mode="merge",
            storage_options=self.storage_options,
            writer_properties=STREAM_WRITER,
            target_file_size=STREAM_TARGET_FILE_BYTES,
            commit_properties=CommitProperties(app_transactions=[Transaction(a, 1) for a in app_ids]),
        )
        return sum(written)

    def create_if_missing(self, table: str, empty: pl.DataFrame) -> None:
        """Create an empty table with the given schema, so readers of a feed never seen find it."""
        if self.table(table) is None:
            empty.write_delta(
                self.uri(table),
                mode="append",
                storage_options=self.storage_options,
                delta_write_options={"partition_by": [PARTITION_COLUMN]},
            )

    def count_batch(self, table: str, batch_id: str, feed: str | None = None) -> int:
        """Rows the table holds from one ingest batch (optionally of one feed): read back from
        the committed snapshot, so a safeguard compares against what is really there."""
        if self.table(table) is None:
            return 0
        rows = pl.scan_delta(self.uri(table), storage_options=self.storage_options).filter(
            pl.col("_batch_id") == batch_id
        )
        if feed is not None:
            rows = rows.filter(pl.col("feed") == feed)
        return rows.select(pl.len()).collect().item()

    def read(self, table: str) -> pl.DataFrame:
        return pl.read_delta(self.uri(table), storage_options=self.storage_options)

    def stats(self, table: str) -> dict:
        """Row count, version and schema from the Delta log (no data files read)."""
        dt = self.table(table)
        if dt is None:
            return {"rows": 0, "version": None, "schema": []}
        actions = pl.DataFrame(dt.get_add_actions(flatten=True))
        rows = int(actions["num_records"].sum()) if actions.height else 0
        schema = [(f.name, str(f.type)) for f in dt.schema().fields]
        return {"rows": rows, "version": dt.version(), "schema": schema}
