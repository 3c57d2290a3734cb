"""Landing files: discovery, identity, reading into all-string frames, archiving and retention."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import orjson
import polars as pl

from hn_assets.contracts import FeedContract

LANDING_SUFFIXES = (".jsonl", ".csv", ".parquet")
LINE_COL, RAW_COL, PARSE_ERROR_COL, FILE_COL = "_line", "_raw", "_parse_error", "_source_file"
# Rows per batch of a tabular landing file: with two batches read ahead and delta-rs's partition
# writers, 100k keeps a 10M-row ingest at ~1.8 GB (250k peaked at 2.8-3.3 GB), for ~1 s more.
BATCH_ROWS = 100_000


class BadLandingFile(Exception):
    """A landing file that cannot be read as its format at all (empty, not UTF-8 text, a broken
    Parquet footer, a CSV that breaks mid-file): it is quarantined whole, with this reason."""

    def __init__(self, relative: str, reason: str):
        super().__init__(f"{relative}: {reason}")
        self.relative, self.reason = relative, reason


@dataclass(frozen=True)
class LandingFile:
    feed: str
    path: Path
    landing_root: Path

    @cached_property
    def digest(self) -> str:
        sha = hashlib.sha256()
        with open(self.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        return sha.hexdigest()

    @property
    def app_id(self) -> str:
        """Delta transaction id: the same content is taken once per table, whatever its name."""
        return f"ingest/{self.feed}/{self.digest[:40]}"

    @property
    def relative(self) -> str:
        return str(self.path.relative_to(self.landing_root))


def discover(landing_root: Path, feed: str) -> list[LandingFile]:
    folder = landing_root / feed
    if not folder.exists():
        return []
    return [
        LandingFile(feed, p, landing_root)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.suffix in LANDING_SUFFIXES and not p.name.startswith(".")
    ]


def _frame(columns: dict[str, list], contract: FeedContract) -> pl.DataFrame:
    schema = {name: pl.String for name in contract.field_names}
    schema.update({LINE_COL: pl.Int64, RAW_COL: pl.String, PARSE_ERROR_COL: pl.String})
    return pl.DataFrame(columns, schema=schema)


def empty_frame(contract: FeedContract) -> pl.DataFrame:
    """A landing frame with no rows: gives a new bronze table its schema."""
    return _frame({}, contract).with_columns(pl.lit(None, pl.String).alias(FILE_COL))


def _as_text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _jsonl_slow(lines: list[bytes], numbers: list[int], contract: FeedContract) -> pl.DataFrame:
    """Line by line: malformed lines become parse errors instead of failing the file."""
    names = contract.field_names
    cols: dict[str, list] = {n: [] for n in names}
    errors = []
    for line in lines:
        try:
            record = orjson.loads(line)
            error = None if isinstance(record, dict) else "record is not a JSON object"
        except orjson.JSONDecodeError as exc:
            record, error = {}, f"malformed JSON: {exc}"
        if error:
            record = {}
        errors.append(error)
        for n in names:
            cols[n].append(_as_text(record.get(n)))
    cols.update({LINE_COL: numbers, RAW_COL: [b.decode("utf-8", "replace") for b in lines], PARSE_ERROR_COL: errors})
    return _frame(cols, contract)


def _jsonl_fast(lines: list[bytes], numbers: list[int], contract: FeedContract) -> pl.DataFrame:
    df = pl.read_ndjson(io.BytesIO(b"\n".join(lines)), schema={n: pl.String for n in contract.field_names})
    if df.height != len(lines):
        raise ValueError("line count mismatch")
    return df.with_columns(
        pl.Series(LINE_COL, numbers, pl.Int64),
        pl.Series(RAW_COL, lines, pl.Binary).cast(pl.String, strict=False),
        pl.lit(None, pl.String).alias(PARSE_ERROR_COL),
    )


def _is_object(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def _utf8(data: bytes, path: Path) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadLandingFile(path.name, f"not UTF-8 text (byte {exc.start})") from None


def read_jsonl(path: Path, contract: FeedContract) -> pl.DataFrame:
    """Vectorised read; on a bad line, only the lines that do not parse take the slow path."""
    data = path.read_bytes()
    _utf8(data, path)
    numbered = [(i + 1, line.rstrip(b"\r")) for i, line in enumerate(data.split(b"\n")) if line.strip()]
    numbers, lines = [n for n, _ in numbered], [line for _, line in numbered]
    try:
        return _jsonl_fast(lines, numbers, contract)
    except Exception:  # noqa: BLE001 - some line does not decode: separate the good from the bad
        pass
    good = [_is_object(line) for line in lines]
    pick = lambda items, keep: [x for x, g in zip(items, good) if g is keep]
    try:
        ok = _jsonl_fast(pick(lines, True), pick(numbers, True), contract)
    except Exception:  # noqa: BLE001 - e.g. nested values where text is expected: fully line by line
        return _jsonl_slow(lines, numbers, contract)
    bad = _jsonl_slow(pick(lines, False), pick(numbers, False), contract)
    return pl.concat([ok, bad]).sort(LINE_COL)


def _text_frame(batch: pl.DataFrame, contract: FeedContract, first_line: int) -> pl.DataFrame:
    """A batch of a tabular file (CSV, Parquet) as a landing frame; missing fields are null."""
    names = contract.field_names
    batch = batch.with_columns([pl.lit(None, pl.String).alias(n) for n in names if n not in batch.columns])
    # The raw text is rebuilt from the fields only for rows that end in quarantine.
    return batch.select(
        *names,
        pl.int_range(first_line, first_line + batch.height, dtype=pl.Int64).alias(LINE_COL),
        pl.lit(None, pl.String).alias(RAW_COL),
        pl.lit(None, pl.String).alias(PARSE_ERROR_COL),
    )


def read_csv_batches(path: Path, contract: FeedContract, batch_rows: int) -> Iterator[pl.DataFrame]:
    """Streams a CSV in batches of `batch_rows` (bounded memory for multi-GB landing files).

    A first batch polars cannot parse (ragged rows) takes the row-by-row path, so each bad row is
    quarantined with its reason; a file that is not UTF-8, or that breaks after batches were taken
    (rows already streamed cannot be taken back), raises BadLandingFile: the file is quarantined whole.
    """
    batches = iter(pl.scan_csv(path, infer_schema=False).collect_batches(chunk_size=batch_rows))
    try:
        first = next(batches, None)
    except Exception:  # noqa: BLE001 - ragged or broken CSV: the csv module tells row by row
        _utf8(path.read_bytes(), path)
        yield _csv_slow(path, contract)
        return
    line = 2
    try:
        for batch in _chain(first, batches):
            yield _text_frame(batch, contract, line)
            line += batch.height
    except pl.exceptions.PolarsError as exc:
        reason = f"breaks the CSV format after line {line}: {str(exc).splitlines()[0][:200]}"
        raise BadLandingFile(path.name, reason) from None


def read_parquet_batches(path: Path, contract: FeedContract, batch_rows: int) -> Iterator[pl.DataFrame]:
    """Streams a Parquet file in batches, every field as text (the contract check types them);
    "line" is the 1-based row number. A file that cannot be read fails its feed's ingest, named."""
    try:
        scan = pl.scan_parquet(path)
        present = scan.collect_schema().names()
        scan = scan.select(pl.col(c).cast(pl.String) for c in contract.field_names if c in present)
        row = 1
        for batch in scan.collect_batches(chunk_size=batch_rows):
            yield _text_frame(batch, contract, row)
            row += batch.height
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise BadLandingFile(path.name, f"not readable Parquet: {str(exc).splitlines()[0][:200]}") from None


def _chain(first: pl.DataFrame | None, rest: Iterator[pl.DataFrame]) -> Iterator[pl.DataFrame]:
    if first is not None:
        yield first
    yield from rest


def _csv_slow(path: Path, contract: FeedContract) -> pl.DataFrame:
    names = contract.field_names
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise BadLandingFile(path.name, "no header row")
    header, body = rows[0], rows[1:]
    cols: dict[str, list] = {n: [] for n in names}
    numbers, raws, errors = [], [], []
    for i, row in enumerate(body, start=2):
        ok = len(row) == len(header)
        record = dict(zip(header, row)) if ok else {}
        for n in names:
            value = record.get(n)
            cols[n].append(value if value != "" else None)
        numbers.append(i)
        raws.append(",".join(row))
        errors.append(None if ok else f"CSV row has {len(row)} fields, header has {len(header)}")
    cols.update({LINE_COL: numbers, RAW_COL: raws, PARSE_ERROR_COL: errors})
    return _frame(cols, contract)


def read_landing_batches(
    file: LandingFile, contract: FeedContract, batch_rows: int = BATCH_ROWS
) -> Iterator[pl.DataFrame]:
    """The file's records as all-text frames (with line numbers), in batches for large CSVs.
    Raises BadLandingFile (named by its landing path) for a file that cannot be read at all."""
    if file.path.stat().st_size == 0:
        raise BadLandingFile(file.relative, "empty file")
    readers = {
        ".jsonl": lambda: [read_jsonl(file.path, contract)],
        ".csv": lambda: read_csv_batches(file.path, contract, batch_rows),
        ".parquet": lambda: read_parquet_batches(file.path, contract, batch_rows),
    }
    try:
        for frame in readers[file.path.suffix]():
            yield frame.with_columns(pl.lit(file.relative).alias(FILE_COL))
    except BadLandingFile as exc:
        raise BadLandingFile(file.relative, exc.reason) from None


def archive(file: LandingFile, archive_root: Path) -> Path:
    """Move an ingested file out of landing; its mtime marks when retention starts."""
    target = archive_root / file.relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(file.path), target)
    os.utime(target)
    return target


def purge_archive(archive_root: Path, retention_days: int, now: float | None = None) -> int:
    """Delete archived landing files older than the retention period; returns how many."""
    cutoff = (now or time.time()) - retention_days * 86_400
    removed = 0
    if archive_root.exists():
        for path in archive_root.rglob("*"):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed
