"""The inference log as monitoring reads it: `bronze_inference_log` (contracts.FEEDS["inference_log"])
deduplicated by request id, cut to a recent window, with the logged feature vector (a JSON object
text in `features`) spread into one column per feature.

The window ends at `end` (default: the newest logged score, so a replay of simulated days is
monitored on its own clock) and reaches back `days`. Fallback answers (no model score) are kept in
the frame but left out of drift, skew and performance by `model_rows`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import polars as pl

TABLE = "bronze_inference_log"
COLUMNS = (
    "request_id",
    "scored_at",
    "session_key",
    "user_id",
    "personalization_consent",
    "model_version",
    "fallback",
    "feature_groups",
    "features",
    "raw_score",
    "calibrated_score",
    "decision",
    "device",
    "_ingested_at",
)
NO_TRAFFIC = "no live traffic in the window"


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    bot_scores_left_out: int = 0  # scores of sessions the batch flagged as bots (`without_bots`)

    def metadata(self) -> dict:
        return {
            "window_start": self.start.isoformat(),
            "window_end": self.end.isoformat(),
            "bot_scores_left_out": float(self.bot_scores_left_out),
        }


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def read_log(lake) -> pl.DataFrame | None:
    """The bronze inference log (a `DeltaLake`), or None when no score has been ingested yet."""
    if lake.table(TABLE) is None:
        return None
    scan = pl.scan_delta(lake.uri(TABLE), storage_options=lake.storage_options)
    present = [c for c in COLUMNS if c in scan.collect_schema().names()]
    return scan.select(present).collect()


def recent(
    log: pl.DataFrame | None, days: float = 7.0, end: datetime | str | None = None
) -> tuple[pl.DataFrame, Window | None]:
    """The scores of the window (deduplicated by request id, first ingested copy kept) and the window;
    (empty frame, None) when the log is empty."""
    if log is None or log.is_empty():
        return pl.DataFrame(), None
    if log.schema["scored_at"].time_zone is None:  # type: ignore[union-attr]
        log = log.with_columns(pl.col("scored_at").dt.replace_time_zone("UTC"))
    log = log.with_columns(pl.col("scored_at").dt.convert_time_zone("UTC"))
    order = ["_ingested_at", "request_id"] if "_ingested_at" in log.columns else ["request_id"]
    log = log.sort(order).unique("request_id", keep="first", maintain_order=True)
    if isinstance(end, str):
        end = datetime.fromisoformat(end)
    end = _utc(end) if end is not None else log["scored_at"].max()
    window = Window(end - timedelta(days=days), end)
    rows = log.filter((pl.col("scored_at") > window.start) & (pl.col("scored_at") <= window.end))
    return rows.sort("scored_at", "request_id"), window


def without_bots(rows: pl.DataFrame, window: Window, bot_sessions: list[str]) -> tuple[pl.DataFrame, Window]:
    """The window's scores without those of `bot_sessions` (gold's `is_bot`: the training spine
    `fct_session_snapshots` leaves bots out), and the window counting what was left out. A session
    the batch has not seen yet cannot be known as a bot and stays in."""
    if not bot_sessions or rows.is_empty():
        return rows, window
    kept = rows.filter(~pl.col("session_key").is_in(bot_sessions))
    return kept, replace(window, bot_scores_left_out=rows.height - kept.height)


def model_rows(window_rows: pl.DataFrame) -> pl.DataFrame:
    """The scores the model gave (not the documented fallback)."""
    if window_rows.is_empty():
        return window_rows
    return window_rows.filter(~pl.col("fallback").fill_null(False) & pl.col("calibrated_score").is_not_null())


def feature_frame(rows: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """request_id plus one column per feature of `schema` (typed like the reference), parsed from the
    logged JSON; a feature the service did not log is null."""
    parsed = [json.loads(text) if text else {} for text in rows["features"].to_list()]
    columns = {"request_id": rows["request_id"].to_list()}
    for name in schema:
        columns[name] = [vector.get(name) for vector in parsed]
    frame = pl.DataFrame(columns, strict=False, infer_schema_length=None)
    casts = []
    for name, dtype in schema.items():
        if dtype == pl.String:
            casts.append(pl.col(name).cast(pl.String))
        elif dtype == pl.Boolean:
            casts.append(pl.col(name).cast(pl.Boolean, strict=False))
        else:
            casts.append(pl.col(name).cast(pl.Float64, strict=False))
    return frame.with_columns(casts) if casts else frame


def logged_features(rows: pl.DataFrame) -> set[str]:
    """Every feature name that occurs in the logged vectors."""
    names: set[str] = set()
    for text in rows["features"].to_list():
        if text:
            names.update(json.loads(text))
    return names
