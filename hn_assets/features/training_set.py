"""Point-in-time training sets: the snapshot spine joined with a feature service, versioned."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from hn_assets.contracts import PURCHASE_LABEL as LABEL

SPINE_COLUMNS = ["snapshot_key", "session_key", "user_id", "last_product_id", "as_of", LABEL]


def spine(snapshot_files: str) -> pl.DataFrame:
    """Entity rows: each snapshot's session, its user and the product it last viewed, at as_of
    (`snapshot_files`: the glob of fct_session_snapshots' Parquet export)."""
    frame = pl.read_parquet(snapshot_files, columns=SPINE_COLUMNS)
    return frame.rename({"last_product_id": "product_id", "as_of": "event_timestamp"}).sort("snapshot_key")


def window(entity_rows: pl.DataFrame, weeks: int | None = None, end: date | None = None) -> pl.DataFrame:
    """The spine rows of a sliding window of recent weeks: `event_timestamp` (as_of) in
    [end - weeks, end). `end`: a date (exclusive, midnight UTC; for backtests such as "train as of
    the drift day"), default just after the newest snapshot; `weeks`: None keeps everything before
    `end` (with neither, the whole spine: the default, today's behaviour). Whole sessions only: a
    session is kept when its first snapshot lies in the window, so no session is cut in two."""
    if weeks is None and end is None:
        return entity_rows
    if weeks is not None and weeks < 1:
        raise ValueError(f"window weeks must be >= 1, not {weeks}")
    time = entity_rows.schema["event_timestamp"]
    zone = getattr(time, "time_zone", None)
    if end is None:
        stop = entity_rows["event_timestamp"].max()
        stop = stop + timedelta(microseconds=1) if stop is not None else None
    else:
        stop = datetime(end.year, end.month, end.day, tzinfo=UTC)
        stop = stop.astimezone(UTC).replace(tzinfo=None) if zone is None else stop
    if stop is None:
        return entity_rows
    first = pl.col("event_timestamp").min().over("session_key")
    keep = first < pl.lit(stop, dtype=time)
    if weeks is not None:
        keep &= first >= pl.lit(stop - timedelta(weeks=weeks), dtype=time)
    return entity_rows.filter(keep)


def historical_features(store, entity_rows: pl.DataFrame, service_name: str) -> pl.DataFrame:
    """Feast's point-in-time join; every entity row comes back, with nulls where nothing was known.
    Request-time features are then recomputed at each row's as_of with the function the scoring
    service calls (features/request_time.py: no training-serving skew), from timestamps joined
    beside the service's features and dropped afterwards."""
    from hn_assets.features.request_time import REQUEST_TIME_INPUTS, at_scoring_time

    entity_df = entity_rows.to_pandas()
    service = store.get_feature_service(service_name)
    refs = [f"{p.name_to_use()}:{f.name}" for p in service.feature_view_projections for f in p.features]
    extra = [ref for ref in REQUEST_TIME_INPUTS if ref not in refs]
    joined = store.get_historical_features(entity_df=entity_df, features=refs + extra).to_df()
    return at_scoring_time(pl.from_pandas(joined), drop=[REQUEST_TIME_INPUTS[ref] for ref in extra])


@dataclass
class SavedTrainingSet:
    """A saved version: the value the training-set asset hands to the model asset."""

    version: str
    feature_service: str
    path: Path
    rows: int
    positives: float
    start: datetime
    end: datetime
    features: list[str]


def save(frame: pl.DataFrame, root: Path, feature_service: str, features: list[str]) -> SavedTrainingSet:
    """Write `frame` as a new version: <root>/<UTC time>-<content hash>/data.parquet + manifest.json."""
    frame = frame.sort("snapshot_key")
    content = hashlib.sha256(frame.hash_rows(seed=0).to_numpy().tobytes()).hexdigest()[:10]
    version = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{content}"
    folder = root / version
    folder.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(folder / "data.parquet")
    saved = SavedTrainingSet(
        version=version,
        feature_service=feature_service,
        path=folder / "data.parquet",
        rows=frame.height,
        positives=float(frame[LABEL].cast(pl.Float64).mean() or 0.0),
        start=frame["event_timestamp"].min(),
        end=frame["event_timestamp"].max(),
        features=features,
    )
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "version": version,
                "feature_service": feature_service,
                "features": features,
                "rows": saved.rows,
                "positive_share": saved.positives,
                "start": str(saved.start),
                "end": str(saved.end),
            },
            indent=2,
        )
    )
    return saved
