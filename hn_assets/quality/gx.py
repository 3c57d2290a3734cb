"""Great Expectations (GX 1.x, ephemeral context): a suite's expectations, the rows they see, and
their validation."""

from __future__ import annotations

import polars as pl

from hn_assets.quality.suites import COMPLETENESS, KEY_COMPLETENESS, Suite


def expectations(suite: Suite, columns: list[str]) -> list:
    import great_expectations as gx

    expect = gx.expectations
    items = [expect.ExpectColumnValuesToNotBeNull(column=c, mostly=KEY_COMPLETENESS) for c in suite.keys]
    items += [expect.ExpectColumnValuesToNotBeNull(column=c, mostly=COMPLETENESS) for c in suite.critical]
    items += [
        expect.ExpectColumnValuesToBeBetween(column=c, min_value=lo, max_value=hi)
        for c, (lo, hi) in suite.ranges.items()
        if c in columns
    ]
    items += [
        expect.ExpectColumnValuesToBeInSet(column=c, value_set=list(values))
        for c, values in suite.categories.items()
        if c in columns
    ]
    return items


def validation_sample(suite: Suite, frame: pl.DataFrame, rows: int, seed: int = 0) -> pl.DataFrame:
    """At most `rows` uniformly sampled rows, plus every row with a null key (up to `rows` of them).

    Shares (completeness, ranges) are estimated well by a uniform sample, but "no key is ever null"
    is not: one null key in 10 M rows is missed by a 250k-row sample 97 % of the time. The rows
    with a null key are therefore always validated, so the suite's 100 % holds for the whole
    table. Rejected: counting key nulls over the whole table outside GX (a second judge beside the
    suite, with its own metadata), and validating the whole table (a pandas copy of every row).
    """
    if frame.height <= rows:
        return frame
    keys = [c for c in suite.keys if c in frame.columns]
    null_key = pl.any_horizontal([pl.col(c).is_null() for c in keys]) if keys else pl.lit(False)
    broken, rest = frame.filter(null_key).head(rows), frame.filter(~null_key)
    return pl.concat([broken, rest.sample(n=min(rows, rest.height), seed=seed)])


def validate(suite: Suite, frame) -> tuple[bool, dict]:
    """GX validation of a pandas frame: (passed, metadata with each failed expectation)."""
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas(f"{suite.table}_source")
        .add_dataframe_asset(suite.table)
        .add_batch_definition_whole_dataframe("whole")
    )
    expectation_suite = context.suites.add(
        gx.ExpectationSuite(name=f"{suite.table}_suite", expectations=expectations(suite, list(frame.columns)))
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite.table}_validation", data=batch, suite=expectation_suite)
    )
    result = definition.run(batch_parameters={"dataframe": frame})
    failed = {
        f"{r.expectation_config.type}({r.expectation_config.kwargs.get('column')})": {
            k: v
            for k, v in r.result.items()
            if k in ("unexpected_percent", "partial_unexpected_list", "observed_value")
        }
        for r in result.results
        if not r.success
    }
    stats = result.statistics
    return result.success, {
        "evaluated": stats["evaluated_expectations"],
        "successful": stats["successful_expectations"],
        "failed": failed,
    }
