"""The Great Expectations suites (hn_assets/quality/) as Dagster asset checks.

The checks read the gold Parquet exports, never the DuckDB file, so they do not contend with dbt.
"""

from datetime import timedelta

import dagster as dg
import polars as pl

from hn_assets.contracts import FEEDS
from hn_assets.defs.resources import LakehouseResource, WarehouseResource
from hn_assets.quality.suites import COMPLETENESS, MAX_LAG_BEHIND_BRONZE_HOURS, SUITES, Suite


def newest_bronze_event(lakehouse: LakehouseResource):
    table = FEEDS["clickstream_events"].bronze_table
    return pl.scan_delta(lakehouse.delta().uri(table)).select(pl.col("event_timestamp").max()).collect().item()


def _make_check(suite: Suite):
    @dg.asset_check(
        asset=dg.AssetKey(suite.table),
        name="gx_suite",
        blocking=suite.blocking,
        description=f"Great Expectations: keys and label ({', '.join(suite.keys)}) never null, other "
        f"critical columns >= {COMPLETENESS:.0%} complete, value ranges, allowed categories; newest "
        f"{suite.time_column} within {MAX_LAG_BEHIND_BRONZE_HOURS} h of bronze's newest event.",
    )
    def _check(lakehouse: LakehouseResource, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        from hn_assets.quality.gx import validate, validation_sample

        scan = warehouse.scan_gold(suite.table)
        wanted = {*suite.keys, *suite.critical, *suite.ranges, *suite.categories, suite.time_column}
        frame = scan.select(sorted(wanted & set(scan.collect_schema().names()))).collect()  # what the suite reads
        # Completeness and ranges are shares: a 250k-row sample estimates them to ~0.1 %; every
        # row with a null key is validated too (keys must be complete in the whole table).
        sample = validation_sample(suite, frame, warehouse.check_sample_rows)
        passed, metadata = validate(suite, sample.to_pandas())
        newest, bronze_newest = frame[suite.time_column].max(), newest_bronze_event(lakehouse)
        fresh = (
            newest is not None
            and bronze_newest is not None
            and bronze_newest - newest <= timedelta(hours=MAX_LAG_BEHIND_BRONZE_HOURS)
        )
        return dg.AssetCheckResult(
            passed=bool(passed and fresh),
            metadata={
                **metadata,
                "rows": frame.height,
                "validated_rows": sample.height,
                "newest": str(newest),
                "bronze_newest": str(bronze_newest),
                "fresh": bool(fresh),
            },
        )

    return _check


defs = dg.Definitions(asset_checks=[_make_check(suite) for suite in SUITES])
