"""RetailRocket events log: timestamp (epoch ms), visitorid, event (view|addtocart|transaction),
itemid, transactionid (set on transactions only)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from hn_assets.adapters.common import (
    LandResult,
    event_id,
    map_event_type,
    missing_reason,
    read_source_csv,
    write_landing,
)

SOURCE = "retailrocket"
COLUMNS = ["timestamp", "visitorid", "event", "itemid", "transactionid"]
REQUIRED = ["timestamp", "visitorid", "event", "itemid"]


def land_retailrocket(path: Path, landing_root: Path, timezone: str = "UTC") -> LandResult:
    raw = read_source_csv(path, COLUMNS, "RetailRocket")
    millis = pl.col("timestamp").str.strip_chars().cast(pl.Int64, strict=False)
    iso = pl.from_epoch(millis, time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
    frame = raw.select(
        event_id(SOURCE, COLUMNS).alias("event_id"),
        map_event_type(SOURCE, pl.col("event")).alias("event_type"),
        pl.coalesce(iso, pl.col("timestamp")).alias("event_timestamp"),  # unparsable: kept for quarantine
        pl.col("visitorid").alias("visitor_id"),
        pl.lit("true").alias("analytics_consent"),
        pl.col("itemid").alias("product_id"),
        pl.col("transactionid").alias("order_id"),
        pl.lit(timezone).alias("timezone"),
        missing_reason(SOURCE, REQUIRED).alias("source_error"),
    )
    return write_landing(frame, SOURCE, path, landing_root)
