"""Ingest one feed: landing files -> validated, privacy-filtered bronze rows + quarantine."""

from __future__ import annotations

import fcntl
import multiprocessing
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from queue import Full, Queue
from threading import Event, Thread
from urllib.parse import urlparse

import polars as pl

from hn_assets.contracts import FEEDS, QUARANTINE_TABLE, FeedContract
from hn_assets.erasure.erasure_list import drop_erased  # docs/privacy.md, "Erasure"
from hn_assets.ingest.bronze import PARTITION_COLUMN, DeltaLake
from hn_assets.ingest.landing import (
    BATCH_ROWS,
    FILE_COL,
    LINE_COL,
    BadLandingFile,
    LandingFile,
    archive,
    discover,
    empty_frame,
    read_landing_batches,
)
from hn_assets.ingest.privacy import Pseudonymiser, apply_privacy, quarantine_records
from hn_assets.ingest.validate import REASON_COL, Plausible, check


@dataclass
class FeedReport:
    feed: str
    files: int = 0
    files_already_ingested: int = 0
    landed: int = 0  # records this batch commits, counted as they are read (an unreadable file: one)
    accepted: int = 0
    quarantined: int = 0
    committed: int = 0  # read back from both Delta tables by batch id
    reasons: Counter = field(default_factory=Counter)
    files_quarantined: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # the feed's ingest failed (nothing committed for it); others go on

    @property
    def balanced(self) -> bool:
        return self.error is None and self.landed == self.committed


def _quarantine_rows(
    rejected: pl.DataFrame, contract: FeedContract, pseudonymiser: Pseudonymiser, ingested_at: datetime, batch_id: str
) -> pl.DataFrame:
    """Rejected rows for bronze_quarantine: the record rebuilt from the contract's fields and
    filtered as bronze rows are (`privacy.quarantine_record`); reasons, which quote values, scrubbed."""
    masked = quarantine_records(rejected, contract, pseudonymiser, REASON_COL)
    return (
        rejected.select(
            pl.lit(contract.name, pl.String).alias("feed"),
            pl.col(FILE_COL).alias("source_file"),
            pl.col(LINE_COL).alias("line_number"),
        )
        .with_columns(masked["reason"], masked["raw_record"])
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
    quarantine_root: Path | None = None,
    plausible: Plausible | None = None,
) -> FeedReport:
    """Take `files` into `bronze_<feed>` and `bronze_quarantine`, each in one Delta commit.

    Records stream through in batches (bounded memory); rejected ones are kept aside and
    committed after the accepted ones. Files a table already holds (by content hash) are skipped
    for that table, so a rerun after a crash completes the batch without duplicates. A file that
    cannot be read at all aborts the (uncommitted) write and the feed is taken again without it:
    the file moves to `quarantine_root` with one bronze_quarantine row saying why, so one bad file
    never stops the others. Ingested files move to the archive. The report's `committed` is read
    back from Delta by batch id, so the counts-balance check compares what landed with what the
    tables hold, not two halves of one in-memory split.
    """
    contract = FEEDS[feed]
    batch_id = batch_id or uuid.uuid4().hex[:12]
    ingested_at = datetime.now(UTC)
    if not files:
        _create_empty_tables(contract, lake, pseudonymiser, ingested_at, batch_id)
        return FeedReport(feed)
    bad: dict[str, str] = {}
    while True:
        try:
            good = [f for f in files if f.relative not in bad]
            report = _take_files(contract, good, lake, pseudonymiser, ingested_at, batch_id, batch_rows, plausible)
            break
        except BadLandingFile as exc:
            bad[exc.relative] = exc.reason
    report.files = len(files)
    _quarantine_files(contract, [f for f in files if f.relative in bad], bad, lake, ingested_at, batch_id, report)
    report.committed = lake.count_batch(contract.bronze_table, batch_id) + lake.count_batch(
        QUARANTINE_TABLE, batch_id, feed=contract.name
    )
    for f in files:
        if f.relative in bad:
            if quarantine_root is not None:
                archive(f, quarantine_root)
        elif archive_root is not None:
            archive(f, archive_root)
    return report


def _take_files(
    contract: FeedContract,
    files: list[LandingFile],
    lake: DeltaLake,
    pseudonymiser: Pseudonymiser,
    ingested_at: datetime,
    batch_id: str,
    batch_rows: int,
    plausible: Plausible | None,
) -> FeedReport:
    """One attempt at the readable files; raises BadLandingFile (nothing committed) for a file
    that turns out unreadable, even when the failure surfaces through delta-rs's writer."""
    report = FeedReport(contract.name, files=len(files))
    ids = {f.relative: f.app_id for f in files}
    in_bronze = lake.committed_ids(contract.bronze_table, list(ids.values()))
    in_quarantine = lake.committed_ids(QUARANTINE_TABLE, list(ids.values()))
    todo = [f for f in files if f.app_id not in in_bronze or f.app_id not in in_quarantine]
    report.files_already_ingested = len(files) - len(todo)
    bronze_files = [f.relative for f in todo if f.app_id not in in_bronze]
    quarantine_files = [f.relative for f in todo if f.app_id not in in_quarantine]
    rejected_parts: list[pl.DataFrame] = []
    unreadable: list[BadLandingFile] = []

    def accepted_rows():
        for file in todo:
            to_bronze, to_quarantine = file.relative in bronze_files, file.relative in quarantine_files
            try:
                # Records of customers on the erasure list are dropped before anything counts them.
                batches = drop_erased(read_landing_batches(file, contract, batch_rows), contract, lake, pseudonymiser)
                # Two stages ahead of the writer: reading the next batch overlaps checking this one.
                for raw in read_ahead(batches):
                    accepted, rejected = check(raw, contract, plausible)
                    # What this batch commits: a table that already holds the file takes nothing of it.
                    report.landed += accepted.height * to_bronze + rejected.height * to_quarantine
                    report.accepted += accepted.height
                    report.quarantined += rejected.height
                    report.reasons.update(r.split(";")[0].split(":")[0] for r in rejected[REASON_COL].to_list())
                    if to_quarantine:
                        rejected_parts.append(rejected)
                    if to_bronze:
                        yield _bronze_rows(accepted, contract, pseudonymiser, ingested_at, batch_id)
            except BadLandingFile as exc:
                unreadable.append(exc)
                raise

    if not todo:
        return report
    rows = read_ahead(accepted_rows())
    try:
        if bronze_files:
            lake.append_stream(contract.bronze_table, rows, [ids[r] for r in bronze_files])
        for _ in rows:  # files the bronze table already holds: read them for their rejected rows only
            pass
    except Exception:
        if unreadable:
            raise unreadable[0] from None
        raise
    if quarantine_files and rejected_parts:
        lake.append(
            QUARANTINE_TABLE,
            _quarantine_rows(pl.concat(rejected_parts), contract, pseudonymiser, ingested_at, batch_id),
            [ids[r] for r in quarantine_files],
        )
    return report


def _quarantine_files(
    contract: FeedContract,
    files: list[LandingFile],
    reasons: dict[str, str],
    lake: DeltaLake,
    ingested_at: datetime,
    batch_id: str,
    report: FeedReport,
) -> None:
    """One bronze_quarantine row per unreadable file (no record content: none could be read)."""
    new = [f for f in files if f.app_id not in lake.committed_ids(QUARANTINE_TABLE, [f.app_id])]
    report.files_quarantined = {f.relative: reasons[f.relative] for f in files}
    report.landed += len(new)
    report.quarantined += len(new)
    report.reasons.update("file" for _ in new)
    if not new:
        return
    rows = pl.DataFrame(
        {
            "feed": [contract.name] * len(new),
            "source_file": [f.relative for f in new],
            "line_number": [None] * len(new),
            "reason": [f"file: {reasons[f.relative]}" for f in new],
            "raw_record": [None] * len(new),
        },
        schema={
            "feed": pl.String,
            "source_file": pl.String,
            "line_number": pl.Int64,
            "reason": pl.String,
            "raw_record": pl.String,
        },
    ).with_columns(
        pl.lit(ingested_at).alias("_ingested_at"),
        pl.lit(batch_id).alias("_batch_id"),
        pl.lit(ingested_at.date()).alias(PARTITION_COLUMN),
    )
    lake.append(QUARANTINE_TABLE, rows, [f.app_id for f in new])


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


@dataclass(frozen=True)
class IngestTarget:
    """Where and how one ingest runs, picklable for the child process (which must not import
    Dagster: the resource itself is neither picklable nor cheap to import there)."""

    landing: Path
    archive: Path
    quarantine: Path
    bronze_root: str
    storage_options: dict | None
    pseudonym_key: bytes
    store_opened: date
    future_margin: timedelta

    def plausible(self) -> Plausible:
        opened = datetime.combine(self.store_opened, time(), tzinfo=UTC)
        return Plausible(earliest=opened, latest=datetime.now(UTC) + self.future_margin)


@contextmanager
def lake_lock(root: str):
    """Serialises bronze writers of one lake on this machine. Two ingests of the same files would
    otherwise both pass the committed-id check before either commits; under the lock the second
    one finds the files gone (archived) or already committed. An object-store lake has no local
    file to lock: there the Dagster pool `bronze_lake` (limit 1) serialises the runs."""
    if urlparse(root).scheme not in ("", "file"):
        yield
        return
    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".ingest.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ingest_one(feed: str, target: IngestTarget, batch_id: str | None) -> FeedReport:
    """One feed, under the lake lock, with the files pending once the lock is held. Any error is
    returned in the report (picklable), so one feed's failure never stops another."""
    try:
        with lake_lock(target.bronze_root):
            return ingest_feed(
                feed,
                discover(target.landing, feed),
                DeltaLake(target.bronze_root, target.storage_options),
                Pseudonymiser(target.pseudonym_key),
                archive_root=target.archive,
                batch_id=batch_id,
                quarantine_root=target.quarantine,
                plausible=target.plausible(),
            )
    except Exception as exc:  # noqa: BLE001 - reported per feed; the asset fails the step after the others
        return FeedReport(feed, error=f"{type(exc).__name__}: {str(exc)[:500]}")


def ingest_landing(lakehouse, feeds=None, batch_id: str | None = None, in_child_process: bool = False):
    """Ingest every pending landing file of `feeds` (None: all feeds; an empty list: none); yields
    one report per feed.

    `lakehouse` is a LakehouseResource (its `ingest_target()`). With `in_child_process`, the work
    runs in a spawned worker: polars and delta-rs keep the memory they once allocated (1.5 GB after
    10M events), and it returns to the OS only when that worker exits, so the run's own process
    stays small for the dbt build that follows.
    """
    target, feeds = lakehouse.ingest_target(), list(FEEDS) if feeds is None else list(feeds)
    if not in_child_process:
        for feed in feeds:
            yield _ingest_one(feed, target, batch_id)
        return
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as worker:
        for feed in feeds:
            yield worker.submit(_ingest_one, feed, target, batch_id).result()
