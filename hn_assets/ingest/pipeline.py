"""Ingest one feed: landing files -> validated, privacy-filtered bronze rows + quarantine."""

from __future__ import annotations

import multiprocessing
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from queue import Full, Queue
from threading import Event, Thread

import polars as pl

from hn_assets.contracts import FEEDS, QUARANTINE_TABLE, FeedContract
from hn_assets.ingest.bronze import PARTITION_COLUMN, DeltaLake
from hn_assets.ingest.landing import (
    BATCH_ROWS,
    FILE_COL,
    LINE_COL,
    RAW_COL,
    LandingFile,
    archive,
    discover,
    empty_frame,
    read_landing_batches,
)
from hn_assets.ingest.privacy import Pseudonymiser, apply_privacy, mask_raw
from hn_assets.ingest.validate import REASON_COL, check


@dataclass
class FeedReport:
    feed: str
    files: int = 0
    files_already_ingested: int = 0
    landed: int = 0
    accepted: int = 0
    quarantined: int = 0
    reasons: Counter = field(default_factory=Counter)

    @property
    def balanced(self) -> bool:
        return self.landed == self.accepted + self.quarantined


def _quarantine_rows(
    rejected: pl.DataFrame, contract: FeedContract, pseudonymiser: Pseudonymiser, ingested_at: datetime, batch_id: str
) -> pl.DataFrame:
    as_json = pl.struct(list(contract.field_names)).struct.json_encode()
    raw = rejected.select(pl.coalesce(pl.col(RAW_COL), as_json)).to_series()
    masked = pl.Series("raw_record", [mask_raw(r, contract, pseudonymiser) for r in raw.to_list()], pl.String)
    return (
        rejected.select(
            pl.lit(contract.name, pl.String).alias("feed"),
            pl.col(FILE_COL).alias("source_file"),
            pl.col(LINE_COL).alias("line_number"),
            pl.col(REASON_COL).alias("reason"),
        )
        .with_columns(masked)
        .with_columns(
            pl.lit(ingested_at).alias("_ingested_at"),
            pl.lit(batch_id).alias("_batch_id"),
            pl.lit(ingested_at.date()).alias(PARTITION_COLUMN),
        )
    )


def _bronze_rows(
    accepted: pl.DataFrame, contract: FeedContract, pseudonymiser: Pseudonymiser, ingested_at: datetime, batch_id: str
) -> pl.DataFrame:
    date_col = pl.col(contract.date_field)
    event_date = date_col.dt.date() if contract.field(contract.date_field).type == "timestamp" else date_col
    rows = accepted.select(*contract.field_names, FILE_COL).with_columns(event_date.alias(PARTITION_COLUMN))
    rows = apply_privacy(rows, contract, pseudonymiser)
    return rows.with_columns(pl.lit(ingested_at).alias("_ingested_at"), pl.lit(batch_id).alias("_batch_id"))


def _create_empty_tables(
    contract: FeedContract, lake: DeltaLake, pseudonymiser: Pseudonymiser, ingested_at: datetime, batch_id: str
) -> None:
    accepted, rejected = check(empty_frame(contract), contract)
    lake.create_if_missing(
        contract.bronze_table, _bronze_rows(accepted, contract, pseudonymiser, ingested_at, batch_id)
    )
    lake.create_if_missing(QUARANTINE_TABLE, _quarantine_rows(rejected, contract, pseudonymiser, ingested_at, batch_id))


def ingest_feed(
    feed: str,
    files: list[LandingFile],
    lake: DeltaLake,
    pseudonymiser: Pseudonymiser,
    archive_root: Path | None = None,
    batch_id: str | None = None,
    batch_rows: int = BATCH_ROWS,
) -> FeedReport:
    """Take `files` into `bronze_<feed>` and `bronze_quarantine`, each in one Delta commit.

    Records stream through in batches (bounded memory); rejected ones are kept aside and
    committed after the accepted ones. Files a table already holds (by content hash) are skipped
    for that table, so a rerun after a crash completes the batch without duplicates. Ingested
    files move to the archive.
    """
    contract = FEEDS[feed]
    report = FeedReport(feed, files=len(files))
    batch_id = batch_id or uuid.uuid4().hex[:12]
    ingested_at = datetime.now(UTC)
    if not files:
        _create_empty_tables(contract, lake, pseudonymiser, ingested_at, batch_id)
        return report
    ids = {f.relative: f.app_id for f in files}
    in_bronze = lake.committed_ids(contract.bronze_table, list(ids.values()))
    in_quarantine = lake.committed_ids(QUARANTINE_TABLE, list(ids.values()))
    todo = [f for f in files if f.app_id not in in_bronze or f.app_id not in in_quarantine]
    report.files_already_ingested = len(files) - len(todo)
    bronze_files = [f.relative for f in todo if f.app_id not in in_bronze]
    quarantine_files = [f.relative for f in todo if f.app_id not in in_quarantine]
    rejected_parts: list[pl.DataFrame] = []

    def accepted_rows():
        for file in todo:
            # Two stages ahead of the writer: reading the next batch overlaps checking this one.
            for raw in read_ahead(read_landing_batches(file, contract, batch_rows)):
                accepted, rejected = check(raw, contract)
                report.landed += raw.height
                report.accepted += accepted.height
                report.quarantined += rejected.height
                report.reasons.update(r.split(";")[0].split(":")[0] for r in rejected[REASON_COL].to_list())
                rejected_parts.append(rejected.filter(pl.col(FILE_COL).is_in(quarantine_files)))
                if file.relative in bronze_files:
                    yield _bronze_rows(accepted, contract, pseudonymiser, ingested_at, batch_id)

    if todo:
        rows = read_ahead(accepted_rows())
        if bronze_files:
            lake.append_stream(contract.bronze_table, rows, [ids[r] for r in bronze_files])
        for _ in rows:  # files the bronze table already holds: read them for their rejected rows only
            pass
        rejected = pl.concat(rejected_parts) if rejected_parts else None
        if quarantine_files and rejected is not None:
            lake.append(
                QUARANTINE_TABLE,
                _quarantine_rows(rejected, contract, pseudonymiser, ingested_at, batch_id),
                [ids[r] for r in quarantine_files],
            )
    if archive_root is not None:
        for f in files:
            archive(f, archive_root)
    return report


def read_ahead(items: Iterator, depth: int = 2) -> Iterator:
    """`items`, produced by a background thread up to `depth` ahead: reading, checking and
    pseudonymising the next batch (polars work, mostly outside the GIL) overlaps delta-rs writing
    this one. An error in the producer is raised here; stopping early stops the producer."""
    queue: Queue = Queue(maxsize=depth)
    stop, end = Event(), object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        queue.put(item, timeout=0.1)
                        break
                    except Full:
                        pass
                if stop.is_set():
                    return
            queue.put(end)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            queue.put(exc)

    producer = Thread(target=produce, name="ingest-read-ahead", daemon=True)
    producer.start()
    try:
        while (item := queue.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _ingest_one(
    feed: str,
    landing: str,
    archive: str,
    bronze_root: str,
    storage_options: dict | None,
    batch_id: str | None,
    pseudonym_key: bytes,
) -> FeedReport:
    return ingest_feed(
        feed,
        discover(Path(landing), feed),
        DeltaLake(bronze_root, storage_options),
        Pseudonymiser(pseudonym_key),
        archive_root=Path(archive),
        batch_id=batch_id,
    )


def ingest_landing(lakehouse, feeds=None, batch_id: str | None = None, in_child_process: bool = False):
    """Ingest every pending landing file of `feeds` (all by default); yields one report per feed.

    `lakehouse` is a LakehouseResource (landing, archive, Delta lake, pseudonym key). With `in_child_process`, the
    work runs in a spawned worker: polars and delta-rs keep the memory they once allocated (1.5 GB
    after 10M events), and it returns to the OS only when that worker exits, so the run's own
    process stays small for the dbt build that follows.
    """
    lake = lakehouse.delta()
    args = (
        str(lakehouse.landing),
        str(lakehouse.archive),
        lake.root,
        lake.storage_options,
        batch_id,
        lakehouse.pseudonym_key(),
    )
    if not in_child_process:
        for feed in feeds or FEEDS:
            yield _ingest_one(feed, *args)
        return
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as worker:
        for feed in feeds or FEEDS:
            yield worker.submit(_ingest_one, feed, *args).result()
