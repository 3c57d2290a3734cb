"""Landing writer: one folder per feed, one file per export day, JSON lines or CSV.

Records are buffered by export day and flushed when no later session can still add to that day,
so the output is deterministic. Dirt (malformed lines, duplicates, late arrivals, unknown event
types, bad types, missing fields) is injected here, as it would appear in a real export.
"""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import orjson

DIRT_KINDS = ("malformed_json", "duplicate", "late", "unknown_event_type", "bad_type", "missing_field")


class LandingWriter:
    def __init__(self, root: Path, dirty_rate: float, rng: random.Random):
        self.root = root
        self.dirty_rate = dirty_rate
        self.rng = rng
        self._jsonl: dict[tuple[str, date], list[bytes]] = defaultdict(list)
        self.dirt_counts = {k: 0 for k in DIRT_KINDS}
        self.records = defaultdict(int)
        self.files: list[Path] = []

    def _path(self, feed: str, day: date, ext: str) -> Path:
        folder = self.root / feed / f"dt={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{feed}_{day.isoformat()}.{ext}"

    def add_json(self, feed: str, day: date, record: dict, dirty: bool = False) -> None:
        """Buffer one JSON record for the export file of `day` (dirt only where `dirty` is allowed)."""
        self.records[feed] += 1
        if dirty and self.rng.random() < self.dirty_rate:
            kind = self.rng.choice(DIRT_KINDS)
            self.dirt_counts[kind] += 1
            day = self._dirty(feed, day, record, kind)
            if day is None:
                return
        self._jsonl[(feed, day)].append(orjson.dumps(record))

    def _dirty(self, feed: str, day: date, record: dict, kind: str) -> date | None:
        buffer = self._jsonl[(feed, day)]
        if kind == "malformed_json":
            buffer.append(orjson.dumps(record)[: self.rng.randint(5, 40)])
            return None
        if kind == "duplicate":
            buffer.append(orjson.dumps(record))
        elif kind == "late":
            return day + timedelta(days=self.rng.randint(1, 2))
        elif kind == "unknown_event_type" and "event_type" in record:
            record["event_type"] = self.rng.choice(("hover", "scroll", "wishlist_add"))
        elif kind == "bad_type":
            key = "price" if record.get("price") is not None else "schema_version"
            record[key] = self.rng.choice(("n/a", "12,5", "abc"))
        elif kind == "missing_field":
            record.pop("event_id" if "event_id" in record else next(iter(record)), None)
        return day

    def flush_json(self, before: date | None = None) -> None:
        """Write every buffered export day strictly before `before` (all when None)."""
        for key in sorted(k for k in self._jsonl if before is None or k[1] < before):
            feed, day = key
            lines = self._jsonl.pop(key)
            if not lines:
                continue
            path = self._path(feed, day, "jsonl")
            with open(path, "ab") as handle:
                handle.write(b"\n".join(lines) + b"\n")
            self.files.append(path)

    def write_csv(self, feed: str, day: date, columns: list[str], rows: list[dict]) -> None:
        if not rows:
            return
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="raise")
        writer.writeheader()
        writer.writerows(rows)
        path = self._path(feed, day, "csv")
        path.write_text(buf.getvalue())
        self.records[feed] += len(rows)
        self.files.append(path)
