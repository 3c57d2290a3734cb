"""The dbt project, its manifest and how its nodes appear in Dagster."""

import importlib.metadata
import shutil
import sys
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import dagster as dg
from packaging import version
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject

from hn_assets.settings import REPO_ROOT

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# The manifest is prepared by `make install` (a `dbt parse` whenever models change; `make ui` runs
# it first), not by prepare_if_dev(), which needs `dbt` on PATH inside the code server.

# staging/intermediate -> silver, marts -> gold (ARCHITECTURE.md §2)
LAYER_OF_FOLDER = {"staging": "silver", "intermediate": "silver", "marts": "gold"}
LAYER_OWNERS = {"silver": ["team:analytics-engineering"], "gold": ["team:analytics-engineering", "team:ml"]}
# The daily batch starts at 02:00 UTC and must have landed by 03:00 UTC, every day.
DAILY_BATCH_DEADLINE = dg.FreshnessPolicy.cron(deadline_cron="0 3 * * *", lower_bound_delta=timedelta(hours=24),
                                               timezone="UTC")
LAYER_FRESHNESS = {"silver": DAILY_BATCH_DEADLINE, "gold": DAILY_BATCH_DEADLINE}


def dbt_executable() -> str:
    """The environment's dbt, found without an activated venv: code servers may run on the base
    interpreter with the venv's site-packages, so look beside the installed dbt package too."""
    import dbt

    site_packages = Path(next(iter(dbt.__path__))).parent       # <env>/lib/python3.X/site-packages
    for candidate in (site_packages.parents[2] / "bin" / "dbt", Path(sys.prefix) / "bin" / "dbt",
                      Path(sys.executable).parent / "dbt"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("dbt") or "dbt"


class HNDbtTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_code_references=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        # Models are keyed by their name (fct_sessions); sources map to bronze keys via meta.
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dg.AssetKey(dbt_resource_props["name"])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        return LAYER_OF_FOLDER.get(fqn[1]) if len(fqn) > 2 else None

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str] | None:
        return LAYER_OWNERS.get(self.get_group_name(dbt_resource_props) or "")

    def get_asset_spec(self, manifest, unique_id, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        policy = LAYER_FRESHNESS.get(spec.group_name or "")
        return spec.replace_attributes(freshness_policy=policy) if policy else spec


class LocalDbtCliResource(DbtCliResource):
    """dagster-dbt's resource, minus two things it does on every run that this platform does not use.

    - It runs `dbt --version` to learn the CLI's version, and that command asks PyPI for the newest
      dbt releases (HTTP, ~5 s; nothing may be fetched at run time here). The executable is this
      environment's own dbt, so the installed dbt-core's version is the answer.
    - It builds an in-process dbt adapter (~2 s) for its column and row-count metadata fetchers;
      row counts and schemas come from our own read after the build (hn_dbt_models), because a
      DuckDB handle held during the build would block dbt's writes.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None


def dbt_resource() -> DbtCliResource:
    return LocalDbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR),
                               dbt_executable=dbt_executable())
