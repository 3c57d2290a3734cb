"""The resources: each is the configured route to one external system, on real stores in temp dirs."""

from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from hn_assets.defs.resources import (
    FeatureStoreResource,
    LakehouseResource,
    ModelRegistryResource,
    ReportStoreResource,
    WarehouseResource,
    mlflow_tracking,
)

pytestmark = pytest.mark.integration


def test_resources_follow_hn_home_at_run_time_and_explicit_paths_win(hn_home, tmp_path):
    reports = ReportStoreResource()
    assert reports.folder("purchase_intent", "r1") == hn_home / "reports" / "purchase_intent" / "r1"
    assert ReportStoreResource(root=str(tmp_path / "elsewhere")).folder("x").is_dir()
    assert LakehouseResource().landing == hn_home / "landing"
    assert Path(LakehouseResource(bronze_root=str(tmp_path / "b")).delta().root) == tmp_path / "b"
    lake = hn_home / "lake"
    assert WarehouseResource().gold_files("fct_sessions") == str(lake / "gold" / "fct_sessions" / "*.parquet")
    assert FeatureStoreResource().training_sets("purchase_intent") == lake / "training_sets" / "purchase_intent"


def test_lakehouse_pseudonymiser_is_the_one_ingest_uses(hn_home):
    from hn_assets.ingest.privacy import Pseudonymiser

    lakehouse = LakehouseResource()
    assert lakehouse.pseudonymiser().token("c-1") == Pseudonymiser(lakehouse.pseudonym_key()).token("c-1")
    assert (hn_home / "secrets" / "pseudonym.key").stat().st_mode & 0o777 == 0o600


def test_warehouse_profiles_a_real_duckdb_file_read_only(hn_home):
    hn_home.mkdir(parents=True)
    with duckdb.connect(str(hn_home / "warehouse.duckdb")) as con:
        con.execute("create schema gold; create table gold.fct_sessions as select 1 as n union all select 2")
    warehouse = WarehouseResource()
    profiles = warehouse.table_profiles({"fct_sessions"})
    assert profiles["fct_sessions"]["rows"] == 2 and profiles["fct_sessions"]["columns"] == [("n", "INTEGER")]
    with warehouse.read_only() as con, pytest.raises(duckdb.Error):
        con.execute("create table gold.x as select 1")  # read-only: dbt stays the only writer


def test_feature_store_refuses_an_unknown_online_store_by_name(hn_home):
    with pytest.raises(ValueError, match="sqlite.*redis"):
        FeatureStoreResource(online_store="memcached").repo_config()


def test_registry_says_none_only_when_nothing_is_registered_and_fails_when_unreachable(hn_home, tmp_path):
    registry = ModelRegistryResource().registry()
    assert registry.version_for_alias("champion") is None  # no registered model yet
    registry.client().create_registered_model(registry.name)
    assert registry.version_for_alias("champion") is None  # model, but no such alias

    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not an MLflow database" * 100)
    with pytest.raises(Exception):  # noqa: B017 - any error, as long as it is not read as "no champion"
        ModelRegistryResource(tracking_uri=f"sqlite:///{broken}").registry().version_for_alias("champion")


def test_mlflow_tracking_opens_one_run_per_dagster_run_and_leaves_none_active(hn_home):
    import mlflow

    @dg.asset
    def tracked(mlflow_tracking: dg.ResourceParam[Any]) -> str:
        with mlflow_tracking.run() as run:
            mlflow.log_metric("x", 1.0)
        return run.info.run_id

    with dg.instance_for_test() as instance:
        runs = [
            dg.materialize([tracked], instance=instance, resources={"mlflow_tracking": mlflow_tracking})
            for _ in range(2)
        ]
    run_ids = [r.output_for_node("tracked") for r in runs]
    assert run_ids[0] != run_ids[1]  # a run left active used to leak into the next job run
    assert mlflow.active_run() is None
    client = ModelRegistryResource().registry().client()
    for dagster_run, run_id in zip(runs, run_ids):
        logged = client.get_run(run_id)
        assert logged.info.status == "FINISHED" and logged.data.metrics["x"] == 1.0
        assert logged.data.tags["dagster_run_id"] == dagster_run.run_id
