"""The dbt project, its manifest and how its nodes appear in Dagster."""

import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject

from hn_assets.settings import REPO_ROOT

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# The manifest is prepared by `make install` (a `dbt parse` whenever models change; `make ui` runs
# it first), not by prepare_if_dev(), which needs `dbt` on PATH inside the code server.

# staging/intermediate -> silver, marts -> gold (docs/architecture.md); owners and freshness per
# layer: hn_assets/policies.py.
LAYER_OF_FOLDER = {"staging": "silver", "intermediate": "silver", "marts": "gold"}
BRONZE_SOURCE = "bronze"  # the dbt source whose tables are the bronze Delta tables, by the same name


def dbt_executable() -> str:
    """The environment's dbt, found without an activated venv: code servers may run on the base
    interpreter with the venv's site-packages, so look beside the installed dbt package too."""
    import dbt

    site_packages = Path(next(iter(dbt.__path__))).parent  # <env>/lib/python3.X/site-packages
    for candidate in (
        site_packages.parents[2] / "bin" / "dbt",
        Path(sys.prefix) / "bin" / "dbt",
        Path(sys.executable).parent / "dbt",
    ):
        if candidate.exists():
            return str(candidate)
    return shutil.which("dbt") or "dbt"


class HNDbtTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_code_references=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        # Models are keyed by their name (fct_sessions); a bronze source table is the bronze asset
        # of the same name, so lineage is one graph and _sources.yml keeps descriptions only.
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dg.AssetKey(dbt_resource_props["name"])
        if dbt_resource_props["resource_type"] == "source" and dbt_resource_props["source_name"] == BRONZE_SOURCE:
            return dg.AssetKey(dbt_resource_props["name"])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        return LAYER_OF_FOLDER.get(fqn[1]) if len(fqn) > 2 else None
