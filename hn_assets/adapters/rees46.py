"""REES46 multi-category store log: event_time, event_type (view|cart|remove_from_cart|purchase),
product_id, category_id, category_code, brand, price, user_id, user_session."""

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

SOURCE = "rees46"
COLUMNS = [
    "event_time",
    "event_type",
    "product_id",
    "category_id",
    "category_code",
    "brand",
    "price",
    "user_id",
    "user_session",
]
REQUIRED = ["event_time", "event_type", "product_id", "user_id", "user_session"]


def land_rees46(path: Path, landing_root: Path, timezone: str = "UTC") -> LandResult:
    raw = read_source_csv(path, COLUMNS, "REES46")
    frame = raw.select(
        event_id(SOURCE, COLUMNS).alias("event_id"),
        map_event_type(SOURCE, pl.col("event_type")).alias("event_type"),
        # "2019-10-01 00:00:00 UTC" -> the landing contract's canonical "2019-10-01T00:00:00Z"
        pl.col("event_time").str.replace(r" UTC$", "Z").str.replace(" ", "T", literal=True).alias("event_timestamp"),
        pl.col("user_id").alias("visitor_id"),
        pl.col("user_id"),
        pl.col("user_session").alias("client_session_id"),
        pl.lit("true").alias("analytics_consent"),
        pl.col("product_id"),
        pl.coalesce("category_code", "category_id").alias("category"),
        pl.col("brand"),
        pl.col("price"),
        pl.lit(timezone).alias("timezone"),
        missing_reason(SOURCE, REQUIRED).alias("source_error"),
    )
    return write_landing(frame, SOURCE, path, landing_root)
