"""Great Expectations (GX 1.x, ephemeral context): a suite's expectations and their validation."""

from __future__ import annotations

from hn_assets.quality.suites import COMPLETENESS, Suite


def expectations(suite: Suite, columns: list[str]) -> list:
    import great_expectations as gx

    expect = gx.expectations
    items = [expect.ExpectColumnValuesToNotBeNull(column=c, mostly=COMPLETENESS) for c in suite.critical]
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
