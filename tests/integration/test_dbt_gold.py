"""Silver and gold on a real dbt build over real bronze Delta tables."""

import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest

from hn_assets.adapters import land_rees46
from hn_assets.defs.transform.assets import backfill_args
from hn_assets.settings import get_settings
from tests.dbt_helpers import assert_same_tables, dbt, ingest_everything, snapshot

pytestmark = pytest.mark.integration


def _land_days(small_store: Path, hn_home: Path, days: set[str] | None) -> None:
    """Copy the store's landing files of `days` (all when None) into HN_HOME/landing."""
    for path in (small_store / "landing").rglob("*.*"):
        day = path.parent.name.removeprefix("dt=")
        if days is None or day in days:
            target = hn_home / "landing" / path.relative_to(small_store / "landing")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)


def test_incremental_runs_backfill_and_full_refresh_give_the_same_tables(small_store, hn_home, tmp_path):
    all_days = sorted({p.parent.name.removeprefix("dt=") for p in (small_store / "landing").rglob("*.*")})
    first = set(all_days[: len(all_days) // 2])
    target = tmp_path / "target"

    _land_days(small_store, hn_home, first)
    ingest_everything()
    dbt("build", target_path=target)
    _land_days(small_store, hn_home, set(all_days) - first)  # includes events arriving late
    ingest_everything()
    dbt("build", target_path=target)
    incremental = snapshot()

    dbt("build", "--full-refresh", target_path=target)
    full = snapshot()
    assert_same_tables(incremental, full)

    # (unit tests ran with the builds above; their fixtures have no dates to backfill)
    dbt("build", *backfill_args(all_days[1], all_days[2]), "--exclude-resource-type", "unit_test", target_path=target)
    assert_same_tables(snapshot(), full)

    dbt("build", "--full-refresh", target_path=target)
    assert_same_tables(snapshot(), full)  # a rerun on the same bronze data is identical


def test_training_spine_stops_before_checkout_and_uses_only_the_past(landed_store, tmp_path):
    ingest_everything()
    dbt("build", target_path=tmp_path / "target")
    with duckdb.connect(str(get_settings().warehouse_path), read_only=True) as con:
        leaked = con.execute("""
            select count(*) from gold.fct_session_snapshots s
            join silver.int_session_events e
              on e.session_key = s.session_key and e.event_index <= s.snapshot_index
            where e.event_type in ('begin_checkout', 'purchase') or e.event_timestamp > s.as_of
        """).fetchall()[0][0]
        counts = con.sql("""
            select s.events_so_far, count(e.event_id)
            from gold.fct_session_snapshots s
            join silver.int_session_events e
              on e.session_key = s.session_key and e.event_timestamp <= s.as_of and e.event_index <= s.snapshot_index
            group by s.snapshot_key, s.events_so_far
        """).pl()
        positives = con.execute("select avg(purchased::int) from gold.fct_sessions where not is_bot").fetchall()[0][0]
    assert leaked == 0
    assert (counts["events_so_far"] == counts["count(e.event_id)"]).all()
    assert 0.005 < positives < 0.08


def test_every_gold_column_is_documented(landed_store, tmp_path):
    """dbt docs and the Dagster UI show column descriptions from the YAML: none may be missing."""
    import json

    ingest_everything()
    dbt("build", "--select", "marts", "+marts", target_path=tmp_path / "target")
    nodes = json.loads((tmp_path / "target" / "manifest.json").read_text())["nodes"].values()
    documented = {
        n["name"]: {c for c, spec in n["columns"].items() if spec["description"].strip()}
        for n in nodes
        if n["resource_type"] == "model" and n["fqn"][1] == "marts"
    }
    with duckdb.connect(str(get_settings().warehouse_path), read_only=True) as con:
        built = con.execute(
            "select table_name, column_name from information_schema.columns where table_schema = 'gold'"
        ).fetchall()
    undocumented = sorted(
        f"{table}.{column}" for table, column in built if table in documented and column not in documented[table]
    )
    assert set(documented) == {table for table, _ in built} and undocumented == []


def test_rees46_sample_flows_from_bronze_to_gold(hn_home, rees46_sample, tmp_path):
    land_rees46(rees46_sample, get_settings().landing_dir)
    ingest_everything()
    dbt("build", target_path=tmp_path / "target")
    sessions = pl.read_parquet(get_settings().gold_dir / "fct_sessions" / "*.parquet")
    assert sessions.height > 4000
    assert sessions["session_key"].str.contains("#").all()
    assert 0.02 < sessions["purchased"].mean() < 0.08
