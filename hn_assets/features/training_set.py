"""Point-in-time training sets: the snapshot spine joined with a feature service, versioned."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from hn_assets.contracts import PURCHASE_LABEL as LABEL

SPINE_COLUMNS = ["snapshot_key", "session_key", "user_id", "last_product_id", "as_of", LABEL]


def spine(snapshot_files: str) -> pl.DataFrame:
    """Entity rows: each snapshot's session, its user and the product it last viewed, at as_of
    (`snapshot_files`: the glob of fct_session_snapshots' Parquet export)."""
    frame = pl.read_parquet(snapshot_files, columns=SPINE_COLUMNS)
    return frame.rename({"last_product_id": "product_id", "as_of": "event_timestamp"}).sort("snapshot_key")


def historical_features(store, entity_rows: pl.DataFrame, service_name: str) -> pl.DataFrame:
    """Feast's point-in-time join; every entity row comes back, with nulls where nothing was known."""
    entity_df = entity_rows.to_pandas()
    service = store.get_feature_service(service_name)
    joined = store.get_historical_features(entity_df=entity_df, features=service).to_df()
    return pl.from_pandas(joined)


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
