"""Landing -> bronze on real Delta tables in a temp HN_HOME."""

import shutil
from pathlib import Path

import orjson
import polars as pl
import pytest

from hn_assets.contracts import FEEDS, QUARANTINE_TABLE
from hn_assets.defs.resources import LakehouseResource
from hn_assets.ingest.bronze import DeltaLake
from hn_assets.ingest.landing import discover
from hn_assets.ingest.pipeline import ingest_feed, ingest_landing
from hn_assets.settings import get_settings

pytestmark = pytest.mark.integration


def _ingest_all(lakehouse: LakehouseResource) -> dict:
    return {report.feed: report for report in ingest_landing(lakehouse)}


def _landed_records(landing: Path, feed: str) -> int:
    return sum(
        len([line for line in p.read_bytes().splitlines() if line.strip()]) - (p.suffix == ".csv")
        for p in (landing / feed).rglob("*.*")
    )


def test_counts_balance_and_violations_are_quarantined_with_reasons(landed_store):
    lakehouse = LakehouseResource()
    landed = {feed: _landed_records(lakehouse.landing, feed) for feed in FEEDS}
    reports = _ingest_all(lakehouse)
    lake = lakehouse.delta()
    quarantine = lake.read(QUARANTINE_TABLE)
    for feed, report in reports.items():
        assert report.landed == landed[feed] == report.accepted + report.quarantined
        assert lake.stats(FEEDS[feed].bronze_table)["rows"] == report.accepted
        assert quarantine.filter(pl.col("feed") == feed).height == report.quarantined
    clicks = quarantine.filter(pl.col("feed") == "clickstream_events")
    assert clicks["reason"].null_count() == 0
    reasons = " | ".join(clicks["reason"].to_list())
    for expected in ("malformed JSON", "event_type: '", "event_id: required"):
        assert expected in reasons
    assert not list(lakehouse.landing.rglob("*.jsonl")), "ingested files move to the archive"


def test_ingesting_the_same_file_twice_adds_nothing(landed_store, tmp_path):
    lakehouse = LakehouseResource()
    copies = tmp_path / "copies"
    shutil.copytree(lakehouse.landing, copies)
    _ingest_all(lakehouse)
    lake = lakehouse.delta()
    before = {t: lake.stats(t)["rows"] for t in [*(c.bronze_table for c in FEEDS.values()), QUARANTINE_TABLE]}
    shutil.copytree(copies, lakehouse.landing, dirs_exist_ok=True)  # the same files land again
    reports = _ingest_all(lakehouse)
    after = {t: lake.stats(t)["rows"] for t in before}
    assert before == after
    assert all(r.files_already_ingested == r.files for r in reports.values())


def test_a_crash_between_commits_is_completed_by_a_rerun_without_duplicates(landed_store, monkeypatch):
    lakehouse = LakehouseResource()
    files = discover(lakehouse.landing, "clickstream_events")
    original = DeltaLake.append

    def crash_on_quarantine(self, table, df, app_ids):
        if table == QUARANTINE_TABLE:
            raise RuntimeError("simulated crash before the quarantine commit")
        return original(self, table, df, app_ids)

    monkeypatch.setattr(DeltaLake, "append", crash_on_quarantine)
    with pytest.raises(RuntimeError):
        ingest_feed("clickstream_events", files, lakehouse.delta(), lakehouse.pseudonymiser())
    monkeypatch.setattr(DeltaLake, "append", original)
    lake = lakehouse.delta()
    accepted_after_crash = lake.stats("bronze_clickstream_events")["rows"]
    assert lake.stats(QUARANTINE_TABLE)["rows"] == 0

    report = ingest_feed("clickstream_events", files, lake, lakehouse.pseudonymiser())
    assert lake.stats("bronze_clickstream_events")["rows"] == accepted_after_crash
    assert lake.stats(QUARANTINE_TABLE)["rows"] == report.quarantined > 0


def test_no_pii_in_any_bronze_table(landed_store):
    lakehouse = LakehouseResource()
    secrets = set()
    for path in (lakehouse.landing / "customers").rglob("*.jsonl"):
        for line in path.read_bytes().splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            secrets |= {record.get(k) for k in ("email", "phone", "first_name", "last_name", "customer_id")}
            secrets.add(f"{record.get('first_name')} {record.get('last_name')}")
    secrets.discard(None)
    _ingest_all(lakehouse)
    lake = lakehouse.delta()
    tables = [c.bronze_table for c in FEEDS.values()] + [QUARANTINE_TABLE]
    for table in tables:
        frame = lake.read(table)
        for column, dtype in frame.schema.items():
            if dtype != pl.String:
                continue
            values = frame[column].drop_nulls()
            leaked = values.filter(values.is_in(list(secrets)) | values.str.contains(r"@|\+\d{2} \d")).to_list()
            # Names could appear inside raw quarantine text: match substrings there too.
            if column == "raw_record":
                leaked += [v for v in values.to_list() if any(s in v for s in secrets if len(s) > 6)]
            assert not leaked, f"PII in {table}.{column}: {leaked[:3]}"
    customers = lake.read("bronze_customers")
    assert {"email", "phone", "first_name", "last_name", "birth_date"}.isdisjoint(customers.columns)
    assert customers["age_band"].null_count() == 0


def test_visitors_without_consent_cannot_be_linked_across_days(landed_store):
    lakehouse = LakehouseResource()
    _ingest_all(lakehouse)
    events = lakehouse.delta().read("bronze_clickstream_events")
    days_per_visitor = events.group_by("visitor_id", "analytics_consent").agg(
        pl.col("event_date").n_unique().alias("days")
    )
    assert days_per_visitor.filter(~pl.col("analytics_consent"))["days"].max() == 1
    assert days_per_visitor.filter(pl.col("analytics_consent"))["days"].max() > 1
    assert (
        events.filter(~pl.col("analytics_consent"))["user_id"].null_count()
        == events.filter(~pl.col("analytics_consent")).height
    )


def test_the_key_is_generated_once_with_private_permissions(hn_home):
    key = get_settings().pseudonym_key
    key_file = hn_home / "secrets" / "pseudonym.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert get_settings().pseudonym_key == key
