"""Run the real dbt project against a test's HN_HOME and read what it built."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl

from hn_assets.defs.resources import LakehouseResource
from hn_assets.ingest.pipeline import ingest_landing
from hn_assets.settings import REPO_ROOT, get_settings

DBT_DIR = REPO_ROOT / "dbt_project"
DBT = str(Path(sys.executable).parent / "dbt")
COMPARED_MODELS = (
    "silver.stg_clickstream_events",
    "silver.int_events_sessionised",
    "silver.int_session_events",
    "silver.int_sessions",
    "gold.fct_sessions",
    "gold.fct_session_snapshots",
    "gold.user_features",
    "gold.product_features",
    "gold.fct_product_demand_daily",
    "gold.dim_customers",
    "gold.dim_products",
)


def dbt(*args: str, target_path: Path) -> subprocess.CompletedProcess:
    command = [
        DBT,
        *args,
        "--project-dir",
        str(DBT_DIR),
        "--profiles-dir",
        str(DBT_DIR),
        "--target-path",
        str(target_path),
    ]
    result = subprocess.run(command, cwd=DBT_DIR, env=os.environ.copy(), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]
    return result


def ingest_everything() -> None:
    """What the bronze_ingest asset does, without Dagster."""
    get_settings().ensure_dirs()
    list(ingest_landing(LakehouseResource()))


# When a dbt run staged a row is run metadata: it differs between an incremental build and a
# full refresh of the same data by construction.
RUN_METADATA = ("_staged_at",)


def snapshot(models=COMPARED_MODELS) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(get_settings().warehouse_path), read_only=True) as con:
        frames = {m: con.sql(f"select * from {m}").pl() for m in models}
    data = {m: f.drop([c for c in RUN_METADATA if c in f.columns]) for m, f in frames.items()}
    return {m: f.sort(f.columns) for m, f in data.items()}


def assert_same_tables(left: dict[str, pl.DataFrame], right: dict[str, pl.DataFrame]) -> None:
    for name in left:
        assert left[name].height > 0, f"{name} is empty"
        assert left[name].equals(right[name]), f"{name} differs: {left[name].height} vs {right[name].height} rows"
