"""Every dbt model, seed and test as Dagster assets and asset checks."""

import json

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


def _with_profile(event, profiles: dict):
    """Adds row count and column schema (read once, after dbt has released the file)."""
    # dagster-dbt names each output after its (one-part) asset key, i.e. the model name.
    profile = profiles.get(event.output_name) if isinstance(event, dg.Output) else None
    if profile is None:
        return event
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in profile["columns"]])
    counts = {} if profile["rows"] is None else {"dagster/row_count": profile["rows"]}
    return event.with_metadata({**event.metadata, **counts, "dagster/column_schema": schema})


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
    invocation = dbt.cli(build_args(config), context=context)
    events = list(invocation.stream())
    names = {key.path[-1] for key in context.selected_asset_keys}
    profiles = warehouse.table_profiles(names, uncounted=view_models(invocation.manifest))
    for event in events:
        yield _with_profile(event, profiles)


defs = dg.Definitions(assets=[hn_dbt_models])
