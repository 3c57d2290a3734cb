"""What every adapter shares: the landing frame shape, row ids, the write."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from hn_assets.contracts import ADAPTER_EVENT_MAPPINGS, FEEDS, SCHEMA_VERSION

CLICKSTREAM = FEEDS["clickstream_events"]


@dataclass
class LandResult:
    source: str
    rows: int
    flagged: int
    path: Path


# BLAKE2b-128, personalised for this one use: 2^64 rows before a collision is likely.
ID_DIGEST_BYTES, ID_PERSON = 16, b"hn-event-id"


def event_id(source: str, columns: list[str]) -> pl.Expr:
    """Deterministic id from the row's content: exact duplicate rows share an id (silver dedupes).

    `<source>-` + BLAKE2b-128 (hashlib, personalised `hn-event-id`) of the row's fields in `columns`
    order, each encoded as `<UTF-8 byte length>:<text>` (null as empty text, as the CSV reads an empty
    field). The length prefix makes the encoding unambiguous, where a separator join lets a field
    holding the separator collide with another row. Rejected: polars' `hash`, whose output may
    change between polars versions (reloading the same log after an upgrade would add every row
    again); a keyed hash, which would give the same public log different ids in each HN_HOME.
    """
    fields = [pl.col(c).fill_null("") for c in columns]
    encoded = pl.concat_str([pl.format("{}:{}", f.str.len_bytes(), f) for f in fields])
    digest = encoded.map_batches(_blake2b_hex, return_dtype=pl.String, is_elementwise=True)
    return pl.format(f"{source}-{{}}", digest)


def _blake2b_hex(encoded: pl.Series) -> pl.Series:
    return pl.Series(
        [hashlib.blake2b(e.encode(), digest_size=ID_DIGEST_BYTES, person=ID_PERSON).hexdigest() for e in encoded],
        dtype=pl.String,
    )


def map_event_type(source: str, raw: pl.Expr) -> pl.Expr:
    """The canonical event type; unmapped values stay as they are and fail the contract downstream.

    A when/then chain, not `replace`: polars' streaming engine runs it in bounded memory, where
    `replace` made a 10M-row load hold the whole file (3 GB)."""
    (first, canonical), *rest = ADAPTER_EVENT_MAPPINGS[source].items()
    mapped = pl.when(raw == first).then(pl.lit(canonical))
    for value, canonical in rest:
        mapped = mapped.when(raw == value).then(pl.lit(canonical))
    return mapped.otherwise(raw)


def missing_reason(source: str, required: list[str]) -> pl.Expr:
    """`source_error` text naming the required source columns a row lacks (null when complete)."""
    parts = [pl.when(pl.col(c).is_null() | (pl.col(c) == "")).then(pl.lit(c)) for c in required]
    names = pl.concat_str(parts, separator=", ", ignore_nulls=True)
    return pl.when(names != "").then(pl.format(f"{source} row incomplete (missing {{}})", names))


def read_source_csv(path: Path, columns: list[str], kind: str) -> pl.LazyFrame:
    """A lazy, all-text scan of a source CSV (streamed: multi-GB logs need not fit in memory)."""
    header = pl.read_csv(path, n_rows=0, infer_schema=False).columns
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(f"{path} is not a {kind} file: missing columns {', '.join(missing)}")
    return pl.scan_csv(path, infer_schema=False, truncate_ragged_lines=True)


def write_landing(frame: pl.LazyFrame, source: str, source_path: Path, landing_root: Path) -> LandResult:
    """Stream the mapped rows into one Parquet landing file with the contract's columns (all text,
    as read), atomically. Parquet, not CSV: ingest reads it back without parsing text again."""
    out = frame.with_columns(pl.lit(SCHEMA_VERSION).alias("schema_version"), pl.lit(source).alias("source"))
    present = out.collect_schema().names()
    out = out.with_columns([pl.lit(None, pl.String).alias(c) for c in CLICKSTREAM.field_names if c not in present])
    folder = landing_root / CLICKSTREAM.name / f"source={source}"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{source_path.stem}.parquet"
    tmp = folder / f".{target.name}.tmp"
    out.select(pl.col(c).cast(pl.String) for c in CLICKSTREAM.field_names).sink_parquet(tmp, compression="lz4")
    counts = (
        pl.scan_parquet(tmp)
        .select(pl.len().alias("rows"), pl.col("source_error").is_not_null().sum().alias("flagged"))
        .collect()
    )
    tmp.replace(target)
    return LandResult(source, counts["rows"].item(), counts["flagged"].item(), target)
