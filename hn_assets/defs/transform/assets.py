"""Every dbt model, seed and test as Dagster assets and asset checks."""

import json
from collections.abc import Iterator

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from hn_assets.defs.resources import WarehouseResource
from hn_assets.defs.transform.translator import HNDbtTranslator, dbt_project

DUCKDB_POOL = "duckdb_warehouse"  # one writer per DuckDB file: everything touching it shares this pool


class DbtBuildConfig(dg.Config):
    """How a run builds the models (defaults: the incremental daily path)."""

    full_refresh: bool = False
    backfill_start: str | None = None  # YYYY-MM-DD: reprocess the events of this date range only
    backfill_end: str | None = None


# dbt unit tests check the SQL logic with fixtures: they run in `make test` and CI, not in
# every production build (dbt's own advice).
PRODUCTION_BUILD = ["build", "--exclude-resource-type", "unit_test"]


def build_args(config: DbtBuildConfig) -> list[str]:
    args = list(PRODUCTION_BUILD)
    if config.full_refresh:
        args.append("--full-refresh")
    if config.backfill_start:
        args += backfill_args(config.backfill_start, config.backfill_end or config.backfill_start)
    return args


def backfill_args(start: str, end: str) -> list[str]:
    """Reprocess the events of [start, end]."""
    return ["--vars", json.dumps({"backfill_start": start, "backfill_end": end})]


def view_models(manifest) -> frozenset[str]:
    return frozenset(
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["config"]["materialized"] == "view"
    )


def profile_metadata(profile: dict) -> dict:
    """Row count (none for views: counting reruns their query) and column schema of one relation."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in profile["columns"]])
    counts = {} if profile["rows"] is None else {"dagster/row_count": profile["rows"]}
    return {**counts, "dagster/column_schema": schema}


def profile_observations(
    warehouse: WarehouseResource, built: list[dg.AssetKey], views: frozenset[str]
) -> Iterator[dg.AssetObservation]:
    """One observation per model this build wrote, read in one short read-only session."""
    keys = {key.path[-1]: key for key in built}  # a dbt model's asset key is its name
    profiles = warehouse.table_profiles(set(keys), uncounted=views)
    for name, key in keys.items():
        if name in profiles:
            yield dg.AssetObservation(asset_key=key, metadata=profile_metadata(profiles[name]))


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=HNDbtTranslator(),
    pool=DUCKDB_POOL,
    name="hn_dbt_models",
)
def hn_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource, config: DbtBuildConfig
):
    """`dbt build`: every model's materialisation and every test's check result reaches Dagster as
    dbt reports it; the models' profiles follow the build; then the step fails if dbt failed.

    Streamed, because a build that ends in one failed test must still record what it built and
    what it checked (collecting the whole stream first lost all of it when dbt exited non-zero),
    and so the UI shows progress while dbt runs.

    The profiles (row count, column types) come after the build as `AssetObservation`s: any DuckDB
    handle open while dbt builds blocks dbt's writes, so they cannot ride on the materialisations
    as those stream. Rejected:
    - a second `AssetMaterialization` per model: it would record every model twice per run (two
      entries in its history, two data versions, materialisation-driven automation firing twice);
      an observation is Dagster's event for facts about an asset that was not rebuilt. The UI's
      overview takes the row count from the latest observation; column names and descriptions
      come from the dbt definition, the types are in the observation;
    - dagster-dbt's `fetch_row_counts()` / `fetch_column_metadata()`: on DuckDB they hold every
      event back until dbt exits (for the same lock), and they need the in-process dbt adapter
      that `LocalDbtCliResource` does not build;
    - holding the Outputs back until dbt exits: nothing would reach Dagster while dbt runs, and
      each check result would be recorded before the materialisation it checks.
    """
    invocation = dbt.cli(build_args(config), context=context, raise_on_error=False)
    built: list[dg.AssetKey] = []
    for event in invocation.stream():
        yield event
        if isinstance(event, dg.Output):
            built.append(context.asset_key_for_output(event.output_name))
    # The stream ends when the dbt process has exited, so its DuckDB lock is released.
    yield from profile_observations(warehouse, built, view_models(invocation.manifest))
    error = invocation.get_error()
    if error is not None:
        raise error


defs = dg.Definitions(assets=[hn_dbt_models])
