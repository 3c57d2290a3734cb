"""A dbt build that fails one test still records what it built and checked, then fails the step."""

import dagster as dg
import polars as pl
import pytest

from hn_assets.defs.resources import LakehouseResource, default_resources
from tests.dbt_helpers import ingest_everything

pytestmark = pytest.mark.integration

FAILING_TEST = "accepted_values_stg_products_price_tier__budget__mid__premium__flagship"


def commit_a_product_outside_the_vocabulary() -> None:
    """A bronze product whose price tier is no tier (say, written under an older contract).

    Committed to Delta directly: ingest would have quarantined it, and the point is a dbt test
    with error severity that fails on data.
    """
    uri = LakehouseResource().delta().uri("bronze_products")
    row = pl.read_delta(uri).head(1).with_columns(product_id=pl.lit("P-POISON"), price_tier=pl.lit("luxury"))
    row.write_delta(uri, mode="append", delta_write_options={"partition_by": ["event_date"]})


def test_a_failing_dbt_test_keeps_every_materialisation_and_check_result_and_fails_the_step(landed_store):
    from hn_assets.defs.transform.assets import hn_dbt_models  # built from the manifest conftest parses

    ingest_everything()
    commit_a_product_outside_the_vocabulary()

    result = dg.materialize([hn_dbt_models], resources=default_resources(), raise_on_error=False)

    assert not result.success  # the step fails because dbt did
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "dbt" in str(failure.step_failure_data.error.message)

    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    # the clickstream chain and the failing test's own model were built and reached Dagster ...
    assert {"stg_clickstream_events", "int_sessions", "fct_sessions", "fct_session_snapshots", "stg_products"} <= (
        materialised
    )
    # ... and what dbt skipped after the failed test did not
    assert not {"dim_products", "product_features", "fct_product_demand_daily"} & materialised

    checks = {(c.asset_key.to_user_string(), c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    assert checks[("stg_products", FAILING_TEST)] is False
    passed = [key for key, ok in checks.items() if ok]
    assert ("fct_sessions", "unique_fct_sessions_session_key") in passed  # the other checks' results
    assert len(passed) >= 20, checks

    # the profiles, read after dbt released the warehouse, for the models this build wrote
    profiles = {
        e.asset_key.to_user_string(): e.event_specific_data.asset_observation.metadata
        for e in result.get_asset_observation_events()
        if "dagster/column_schema" in e.event_specific_data.asset_observation.metadata
    }
    assert set(profiles) == materialised
    fct = profiles["fct_sessions"]
    assert fct["dagster/row_count"].value > 0
    assert "session_key" in [c.name for c in fct["dagster/column_schema"].schema.columns]
