"""Landing-layout folders (landing, archive, quarantined files): raw records with raw ids.

A file that holds the customer is rewritten without their records, byte for byte otherwise where
the format allows (JSON lines), and removed when nothing else is left; other customers' records
stay. The rewrite is atomic (a hidden temporary file, then a rename) and keeps the file's mtime,
so an archived file's retention clock does not restart. Rejected: deleting whole files, which
would erase every other customer of that export day.

A file whose format cannot be parsed at all (the ingest quarantines those whole) is searched as
text, line by line; a binary one that cannot be searched is named in the notes.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import polars as pl

from hn_assets.contracts import FEEDS, FeedContract
from hn_assets.erasure.erasure_list import landing_hits
from hn_assets.erasure.registry import StoreAbsent
from hn_assets.erasure.subject import Matcher, Subject
from hn_assets.ingest.landing import LINE_COL, PARSE_ERROR_COL, RAW_COL, LandingFile, discover, read_landing_batches


class LandingFolderStore:
    def __init__(self, name: str, root: Path):
        self.name, self.root = name, root
        self.notes: list[str] = []

    def files(self) -> list[tuple[FeedContract, LandingFile]]:
        if not self.root.exists():
            raise StoreAbsent(f"no folder {self.root.name}/")
        return [(FEEDS[feed], f) for feed in FEEDS for f in discover(self.root, feed)]

    def scan(self, subject: Subject) -> int:
        return sum(len(_hit_lines(f, c, subject.matcher)) for c, f in self.files())

    def erase(self, subject: Subject) -> int:
        removed, self.notes = 0, []
        for contract, file in self.files():
            hits = _hit_lines(file, contract, subject.matcher)
            if hits:
                removed += _rewrite(file, contract, subject.matcher, hits)
        return removed


def _hit_lines(file: LandingFile, contract: FeedContract, matcher: Matcher) -> set[int]:
    """Line numbers (as the ingest counts them) of the records that belong to the subject."""
    try:
        frames = list(read_landing_batches(file, contract))
    except Exception:  # noqa: BLE001 - a file the ingest cannot parse: search its text
        return _text_hits(file.path, matcher)
    return {n for frame in frames for n in frame.filter(landing_hits(frame, contract, matcher))[LINE_COL].to_list()}


def _text_lines(path: Path) -> list[str]:
    return path.read_bytes().decode("utf-8", "replace").split("\n")


def _text_hits(path: Path, matcher: Matcher) -> set[int]:
    lines = pl.Series(RAW_COL, _text_lines(path))
    return {i + 1 for i, hit in enumerate(matcher.raw_text(lines).to_list()) if hit}


def _rewrite(file: LandingFile, contract: FeedContract, matcher: Matcher, hits: set[int]) -> int:
    suffix = file.path.suffix
    try:
        if suffix == ".parquet":
            return _rewrite_parquet(file.path, contract, matcher)
        if suffix == ".csv":
            return _rewrite_csv(file.path, contract, matcher)
    except (pl.exceptions.PolarsError, OSError, csv.Error, UnicodeDecodeError):
        pass  # unparseable: fall back to the text lines
    return _rewrite_lines(file.path, hits)


def _rewrite_lines(path: Path, hits: set[int]) -> int:
    """JSON lines (and unparseable text): drop the hit lines, keep every other byte."""
    lines = path.read_bytes().split(b"\n")
    kept = [line for i, line in enumerate(lines) if i + 1 not in hits]
    _replace(path, b"\n".join(kept) if any(line.strip() for line in kept) else None)
    return len(lines) - len(kept)


def _rewrite_csv(path: Path, contract: FeedContract, matcher: Matcher) -> int:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    frame = pl.DataFrame(
        {
            **{n: [dict(zip(header, r)).get(n) or None for r in body] for n in contract.field_names},
            RAW_COL: [",".join(r) for r in body],
            PARSE_ERROR_COL: [None if len(r) == len(header) else "ragged" for r in body],
        },
        schema={**{n: pl.String for n in contract.field_names}, RAW_COL: pl.String, PARSE_ERROR_COL: pl.String},
    )
    hit = landing_hits(frame, contract, matcher).to_list()
    kept = [r for r, h in zip(body, hit) if not h]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *kept])
    _replace(path, buffer.getvalue().encode() if kept else None)
    return len(body) - len(kept)


def _rewrite_parquet(path: Path, contract: FeedContract, matcher: Matcher) -> int:
    frame = pl.read_parquet(path)
    present = [n for n in contract.field_names if n in frame.columns]
    text = frame.select(pl.col(n).cast(pl.String) for n in present)
    hit = landing_hits(text, contract, matcher)
    kept = frame.filter(~hit)
    buffer = io.BytesIO()
    kept.write_parquet(buffer)
    _replace(path, buffer.getvalue() if kept.height else None)
    return frame.height - kept.height


def _replace(path: Path, content: bytes | None) -> None:
    """Atomically replace (or, with no content left, remove) a file, keeping its times."""
    if content is None:
        path.unlink()
        return
    stat = path.stat()
    temporary = path.with_name(f".{path.name}.erasing")
    temporary.write_bytes(content)
    os.utime(temporary, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(temporary, path)
