"""Folders of Parquet files read outside DuckDB: the gold exports and the training sets.

Each file that holds the subject is rewritten without their rows (atomically, as a hidden file
renamed over it). For the gold exports this closes the gap until the warehouse rebuild re-exports
them (Feast, the training set and the GX checks read these files, not DuckDB); a training set
keeps its version folder, and its manifest records the erasure and the new row count, because
models and MLflow runs name that version. Rejected for training sets: deleting the version, which
would break every run that names it for one customer's rows.
"""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from hn_assets.erasure.registry import StoreAbsent
from hn_assets.erasure.subject import Matcher, Subject


class ParquetFolderStore:
    def __init__(self, name: str, root: Path):
        self.name, self.root = name, root
        self.notes: list[str] = []

    def files(self) -> list[Path]:
        if not self.root.exists():
            raise StoreAbsent(f"no folder {self.root.name}/")
        return sorted(p for p in self.root.rglob("*.parquet") if not p.name.startswith("."))

    def scan(self, subject: Subject) -> int:
        return sum(int(_hits(pl.read_parquet(f), subject.matcher).sum()) for f in self.files())

    def erase(self, subject: Subject) -> int:
        removed, self.notes = 0, []
        for path in self.files():
            frame = pl.read_parquet(path)
            hit = _hits(frame, subject.matcher)
            if hit.any():
                _replace(path, frame.filter(~hit))
                removed += int(hit.sum())
                self.erased(path, int(hit.sum()), frame.height - int(hit.sum()))
        return removed

    def erased(self, path: Path, removed: int, rows: int) -> None:
        """Hook after a file was rewritten (the training sets update their manifest)."""

    def subject_rows(self, subject: Subject) -> pl.DataFrame:
        """Every row of the subject in the folder (before it is erased), one frame."""
        parts = [frame.filter(_hits(frame, subject.matcher)) for frame in map(pl.read_parquet, self.files())]
        parts = [p for p in parts if p.height]
        return pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame()


class TrainingSetStore(ParquetFolderStore):
    def erased(self, path: Path, removed: int, rows: int) -> None:
        manifest = path.parent / "manifest.json"
        if not manifest.exists():
            return
        content = json.loads(manifest.read_text())
        content["rows"] = rows
        at = datetime.now(UTC).isoformat(timespec="seconds")
        content.setdefault("erasures", []).append({"at": at, "rows_removed": removed})
        manifest.write_text(json.dumps(content, indent=2))
        self.notes.append(f"{path.parent.name}: {removed} rows")


def _hits(frame: pl.DataFrame, matcher: Matcher) -> pl.Series:
    return matcher.rows(frame)


def _replace(path: Path, frame: pl.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    temporary = path.with_name(f".{path.name}.erasing")
    temporary.write_bytes(buffer.getvalue())
    os.replace(temporary, path)
