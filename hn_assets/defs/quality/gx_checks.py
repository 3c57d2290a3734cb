"""Run the suites with Great Expectations (GX 1.x, ephemeral context) as Dagster asset checks.

The checks read the gold Parquet exports, never the DuckDB file, so they do not contend with dbt.
"""

from datetime import timedelta

import dagster as dg
import polars as pl

from hn_assets.contracts import FEEDS
from hn_assets.defs.quality.suites import COMPLETENESS, MAX_LAG_BEHIND_BRONZE_HOURS, SUITES, Suite
from hn_assets.defs.resources import LakehouseResource
from hn_assets.settings import get_settings


def expectations(suite: Suite, columns: list[str]) -> list:
    import great_expectations as gx

    expect = gx.expectations
    items = [expect.ExpectColumnValuesToNotBeNull(column=c, mostly=COMPLETENESS) for c in suite.critical]
    items += [expect.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi)
              for c, (lo, hi) in suite.ranges.items() if c in columns]
    items += [expect.ExpectColumnValuesToBeInSet(column=c, value_set=list(values))
              for c, values in suite.categories.items() if c in columns]
    return items


def validate(suite: Suite, frame) -> tuple[bool, dict]:
    """GX validation of a pandas frame: (passed, metadata with each failed expectation)."""
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
    batch = (context.data_sources.add_pandas(f"{suite.table}_source")
             .add_dataframe_asset(suite.table)
             .add_batch_definition_whole_dataframe("whole"))
    expectation_suite = context.suites.add(gx.ExpectationSuite(name=f"{suite.table}_suite",
                                                               expectations=expectations(suite, list(frame.columns))))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite.table}_validation", data=batch, suite=expectation_suite))
    result = definition.run(batch_parameters={"dataframe": frame})
    failed = {f"{r.expectation_config.type}({r.expectation_config.kwargs.get('column')})":
              {k: v for k, v in r.result.items() if k in ("unexpected_percent", "partial_unexpected_list",
                                                         "observed_value")}
              for r in result.results if not r.success}
    stats = result.statistics
    return result.success, {"evaluated": stats["evaluated_expectations"], "successful": stats["successful_expectations"],
                            "failed": failed}


def newest_bronze_event(lakehouse: LakehouseResource):
    table = FEEDS["clickstream_events"].bronze_table
    return (pl.scan_delta(lakehouse.delta().uri(table)).select(pl.col("event_timestamp").max()).collect().item())


def _make_check(suite: Suite):
    @dg.asset_check(asset=dg.AssetKey(suite.table), name="gx_suite", blocking=suite.blocking,
                    description=f"Great Expectations: completeness >= {COMPLETENESS:.0%} on critical columns, "
                                f"value ranges, allowed categories; newest {suite.time_column} within "
                                f"{MAX_LAG_BEHIND_BRONZE_HOURS} h of bronze's newest event.")
    def _check(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        settings = get_settings()
        scan = pl.scan_parquet(settings.gold_dir / suite.table / "*.parquet")
        wanted = {*suite.critical, *suite.ranges, *suite.categories, suite.time_column}
        frame = scan.select(sorted(wanted & set(scan.collect_schema().names()))).collect()  # what the suite reads
        # Completeness and ranges are shares: a 250k-row sample estimates them to ~0.1 %.
        sample = frame.sample(n=settings.gx_max_rows, seed=0) if frame.height > settings.gx_max_rows else frame
        passed, metadata = validate(suite, sample.to_pandas())
        newest, bronze_newest = frame[suite.time_column].max(), newest_bronze_event(lakehouse)
        fresh = newest is not None and bronze_newest is not None and \
            bronze_newest - newest <= timedelta(hours=MAX_LAG_BEHIND_BRONZE_HOURS)
        return dg.AssetCheckResult(
            passed=bool(passed and fresh),
            metadata={**metadata, "rows": frame.height, "validated_rows": sample.height, "newest": str(newest), "bronze_newest": str(bronze_newest),
                      "fresh": bool(fresh)})

    return _check


gx_checks = [_make_check(suite) for suite in SUITES]
