"""The bronze layer through Dagster: materialisation, metadata, checks and the landing sensor."""

import dagster as dg
import pytest

from hn_assets.contracts import FEEDS, PLATFORM_FEEDS
from hn_assets.defs.automation import landing_files_sensor
from hn_assets.defs.ingest.assets import QUARANTINE_KEY, bronze_ingest, bronze_key, landing_sources
from hn_assets.defs.resources import LakehouseResource, default_resources

pytestmark = pytest.mark.e2e


def test_materialising_bronze_records_counts_schema_and_passing_checks(landed_store):
    result = dg.materialize([landing_sources, bronze_ingest], resources=default_resources())
    assert result.success
    materialised = {
        e.asset_key: e.event_specific_data.materialization.metadata for e in result.get_asset_materialization_events()
    }
    assert set(materialised) == {bronze_key(f) for f in FEEDS} | {QUARANTINE_KEY}
    clicks = materialised[bronze_key("clickstream_events")]
    assert clicks["dagster/row_count"].value == clicks["new_rows"].value > 0
    assert clicks["landed"].value == clicks["new_rows"].value + clicks["quarantined"].value
    assert "visitor_id" in [c.name for c in clicks["dagster/column_schema"].schema.columns]
    checks = result.get_asset_check_evaluations()
    assert len(checks) == len(FEEDS) and all(c.passed for c in checks)


def test_landing_sensor_requests_the_feeds_with_new_files_once(landed_store):
    with dg.instance_for_test() as instance:
        resources = {"lakehouse": LakehouseResource()}
        context = dg.build_sensor_context(instance=instance, resources=resources)
        request = landing_files_sensor(context)
        assert isinstance(request, dg.RunRequest)
        # the store's feeds landed; the platform's own (the inference log) have no files yet
        store_feeds = {bronze_key(f) for f in FEEDS if f not in PLATFORM_FEEDS}
        assert set(request.asset_selection) == store_feeds | {QUARANTINE_KEY}
        again = dg.build_sensor_context(instance=instance, cursor=context.cursor, resources=resources)
        assert isinstance(landing_files_sensor(again), dg.SkipReason)


def test_daily_batch_builds_bronze_silver_gold_with_passing_checks(landed_store):
    from hn_assets.definitions import defs

    with dg.instance_for_test() as instance:
        result = defs().resolve_job_def("daily_batch").execute_in_process(instance=instance)
    assert result.success
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {
        "bronze_clickstream_events",
        "stg_clickstream_events",
        "int_sessions",
        "fct_sessions",
        "fct_session_snapshots",
        "user_features",
        "product_features",
    } <= materialised
    # Warn-severity checks (an order line arriving before its order) may fail; error-severity ones may not.
    checks = {
        (c.asset_key.to_user_string(), c.check_name): c.passed or c.severity == dg.AssetCheckSeverity.WARN
        for c in result.get_asset_check_evaluations()
    }
    assert checks[("fct_session_snapshots", "gx_suite")] and checks[("user_features", "gx_suite")]
    assert all(checks.values()), [k for k, v in checks.items() if not v]
    # Row count and schema are read after dbt released the warehouse, and recorded as an observation.
    profiles = [
        e.asset_observation_data.asset_observation.metadata
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
        and e.asset_observation_data.asset_observation.asset_key.to_user_string() == "fct_sessions"
    ]
    assert profiles and profiles[-1]["dagster/row_count"].value > 100


def _landing_files(home) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in (home / "landing").rglob("*.*"))


def test_materialising_only_the_quarantine_ingests_and_archives_nothing(landed_store):
    before = _landing_files(landed_store)
    result = dg.materialize([bronze_ingest], selection=[QUARANTINE_KEY], resources=default_resources())
    assert result.success
    assert _landing_files(landed_store) == before
    assert not any(e.asset_key == bronze_key("orders") for e in result.get_asset_materialization_events())


def test_materialising_one_feed_records_the_quarantine_rows_it_wrote(landed_store):
    others = [f for f in _landing_files(landed_store) if "/clickstream_events/" not in f]
    result = dg.materialize(
        [bronze_ingest], selection=[bronze_key("clickstream_events")], resources=default_resources()
    )
    assert result.success
    events = {
        e.asset_key: e.event_specific_data.materialization.metadata for e in result.get_asset_materialization_events()
    }
    assert (
        events[QUARANTINE_KEY]["new_rows_by_feed"].value
        == {"clickstream_events": events[bronze_key("clickstream_events")]["quarantined"].value}
        != {"clickstream_events": 0}
    )
    assert _landing_files(landed_store) == others  # the other feeds' files wait for their own run


def test_landing_sensor_never_requests_a_file_a_requested_run_still_holds(landed_store):
    with dg.instance_for_test() as instance:
        resources = {"lakehouse": LakehouseResource()}
        first = dg.build_sensor_context(instance=instance, resources=resources)
        claimed = set(landing_files_sensor(first).asset_selection)
        late = landed_store / "landing" / "orders" / "late.csv"
        late.write_text("schema_version,order_id\n1,o-late\n")
        again = dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=resources)
        request = landing_files_sensor(again)  # the first run has not finished: its files stay claimed
        assert isinstance(request, dg.RunRequest) and claimed > set(request.asset_selection)
        assert set(request.asset_selection) == {bronze_key("orders"), QUARANTINE_KEY}
