"""Ingest that survives poison input and concurrency, on real Delta tables and dbt in a temp HN_HOME."""

import multiprocessing
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hn_assets.contracts import FEEDS, QUARANTINE_TABLE
from hn_assets.defs.resources import LakehouseResource
from hn_assets.ingest import pipeline
from hn_assets.ingest.landing import BATCH_ROWS, discover
from hn_assets.ingest.pipeline import ingest_feed, ingest_landing
from tests.dbt_helpers import dbt

pytestmark = pytest.mark.integration
CLICKS = "clickstream_events"


def _event(event_id: str, when: datetime, visitor: str = "v1") -> dict:
    return {
        "schema_version": 1,
        "event_id": event_id,
        "event_type": "page_view",
        "event_timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "visitor_id": visitor,
        "analytics_consent": True,
        "page_type": "home",
        "timezone": "Europe/Berlin",
        "source": "web",
    }


def _land_jsonl(lakehouse: LakehouseResource, name: str, events: list[dict]) -> None:
    folder = lakehouse.landing / CLICKS
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n")


def _reports(lakehouse: LakehouseResource) -> dict:
    return {r.feed: r for r in ingest_landing(lakehouse)}


def test_unreadable_files_are_quarantined_whole_and_the_rest_ingests(landed_store):
    lakehouse = LakehouseResource()
    orders = lakehouse.landing / "orders"
    good_orders = len(discover(lakehouse.landing, "orders"))
    (orders / "zero.csv").write_bytes(b"")
    (orders / "latin1.csv").write_bytes("order_id,customer_id\nx1,Müller\n".encode("latin-1"))
    header = (
        b"schema_version,order_id,customer_id,order_timestamp,order_channel,payment_type,currency,"
        b"discount_amount,total_amount,source\n"
    )
    good_row = b"1,o-%d,c1,2026-09-02T10:00:00.000Z,web,card,EUR,0,10,web\n"
    # More good rows than one read batch (BATCH_ROWS), then an unterminated quote: it breaks mid-file.
    broken = header + b"".join(good_row % i for i in range(BATCH_ROWS + 5000)) + b'1,"o-bad,c1\n' + good_row % -1
    (orders / "breaks_mid_file.csv").write_bytes(broken)
    table = pa.table({"product_id": ["p1"] * 1000, "stock_level": list(range(1000))})
    pq.write_table(table, lakehouse.landing / "inventory" / "truncated.parquet")
    truncated = (lakehouse.landing / "inventory" / "truncated.parquet").read_bytes()
    (lakehouse.landing / "inventory" / "truncated.parquet").write_bytes(truncated[: len(truncated) // 2])

    reports = _reports(lakehouse)

    assert all(r.error is None and r.balanced for r in reports.values()), {f: r.error for f, r in reports.items()}
    assert set(reports["orders"].files_quarantined) == {
        "orders/zero.csv",
        "orders/latin1.csv",
        "orders/breaks_mid_file.csv",
    }
    assert set(reports["inventory"].files_quarantined) == {"inventory/truncated.parquet"}
    quarantine = lakehouse.delta().read(QUARANTINE_TABLE).filter(pl.col("line_number").is_null())
    reasons = dict(zip(quarantine["source_file"], quarantine["reason"]))
    assert reasons["orders/zero.csv"] == "file: empty file"
    assert "not UTF-8" in reasons["orders/latin1.csv"]
    assert "breaks the CSV format" in reasons["orders/breaks_mid_file.csv"]
    assert "Parquet" in reasons["inventory/truncated.parquet"]
    moved = {
        str(p.relative_to(lakehouse.ingest_target().quarantine))
        for p in lakehouse.ingest_target().quarantine.rglob("*.*")
    }
    assert moved == set(reasons)  # out of landing, kept for inspection, never lost
    # Every other file of every feed went in; the broken file contributed none of its good rows.
    assert reports["orders"].files == good_orders + 3
    assert lakehouse.delta().read(FEEDS["orders"].bronze_table).filter(pl.col("order_id") == "o-1").height == 0
    assert all(reports[f].accepted > 0 for f in ("clickstream_events", "customers", "products"))


def test_implausible_timestamps_are_quarantined_with_their_reason(hn_home):
    lakehouse = LakehouseResource(store_opened="2020-01-01", future_margin_hours=24)
    now = datetime.now(UTC)
    _land_jsonl(
        lakehouse,
        "times.jsonl",
        [
            _event("ok", now - timedelta(days=1)),
            _event("future", datetime(2099, 1, 1, tzinfo=UTC)),
            _event("tomorrow-ish", now + timedelta(hours=30)),
            _event("ancient", datetime(1999, 1, 1, tzinfo=UTC)),
        ],
    )
    report = _reports(lakehouse)[CLICKS]
    assert report.accepted == 1 and report.quarantined == 3 and report.balanced
    reasons = lakehouse.delta().read(QUARANTINE_TABLE)["reason"].to_list()
    assert sum("event_timestamp: after" in r for r in reasons) == 2
    assert sum("event_timestamp: before 2020-01-01" in r for r in reasons) == 1


def test_counts_balance_is_read_back_from_delta_and_catches_lost_rows(hn_home, monkeypatch):
    lakehouse = LakehouseResource()
    _land_jsonl(lakehouse, "a.jsonl", [_event(f"e{i}", datetime(2026, 9, 1, 12, tzinfo=UTC)) for i in range(50)])
    files = discover(lakehouse.landing, CLICKS)
    real_rows = pipeline._bronze_rows
    monkeypatch.setattr(pipeline, "_bronze_rows", lambda *a: real_rows(*a).head(-1))  # a writer that drops a row
    report = ingest_feed(CLICKS, files, lakehouse.delta(), lakehouse.pseudonymiser(), batch_id="b-lossy")
    assert report.accepted + report.quarantined == report.landed == 50  # the in-memory split still "balances"
    assert report.committed == 49 and not report.balanced


def _ingest_in_child(home: str) -> dict:
    import os

    os.environ["HN_HOME"] = home
    return {r.feed: (r.accepted, r.error) for r in ingest_landing(LakehouseResource(), [CLICKS])}


def _waiting_for(lock_file: Path) -> int:
    """How many processes are blocked on the flock of `lock_file` (Linux: `->` lines of /proc/locks)."""
    inode = f":{os.stat(lock_file).st_ino}"
    lines = Path("/proc/locks").read_text().splitlines()
    return sum(1 for line in lines if " -> FLOCK " in line and any(f.endswith(inode) for f in line.split()))


def test_two_ingests_started_together_take_every_row_exactly_once(landed_store):
    """Deterministic: the test holds the lake lock until both ingests have started and are waiting
    for it, so both list the landing files only under the lock, one after the other."""
    if not Path("/proc/locks").exists():
        pytest.skip("needs /proc/locks to see that both ingests wait for the lock")
    lakehouse = LakehouseResource()
    expected = sum(len(p.read_bytes().splitlines()) for p in (lakehouse.landing / CLICKS).rglob("*.jsonl"))
    context = multiprocessing.get_context("spawn")
    root = lakehouse.ingest_target().bronze_root
    with context.Pool(2) as pool:
        with pipeline.lake_lock(root):
            pending = pool.map_async(_ingest_in_child, [str(landed_store)] * 2)
            deadline = time.monotonic() + 120
            while _waiting_for(Path(root) / ".ingest.lock") < 2:
                assert time.monotonic() < deadline, "the two ingests never both waited for the lake lock"
                assert not pending.ready(), "an ingest finished while the test held the lake lock"
                time.sleep(0.05)
        results = pending.get(timeout=600)
    assert all(error is None for r in results for _, error in r.values())
    bronze = lakehouse.delta().read(FEEDS[CLICKS].bronze_table)
    quarantined = lakehouse.delta().read(QUARANTINE_TABLE).filter(pl.col("feed") == CLICKS).height
    assert bronze.height + quarantined == expected
    assert sorted(r[CLICKS][0] for r in results)[0] == 0  # the second run found the files already taken


def test_a_batch_committed_late_with_an_older_stamp_still_reaches_silver(hn_home, tmp_path):
    """Out-of-order commits: batch B (ingested later) commits and is staged first; batch A, stamped
    earlier, commits after that. A timestamp watermark would skip A; the batch-id rule does not."""
    lakehouse = LakehouseResource()
    lake = lakehouse.delta()
    day = datetime(2026, 9, 1, 12, tzinfo=UTC)
    for name, ids in (("b.jsonl", ["b1", "b2"]), ("a.jsonl", ["a1", "a2", "a3"])):
        _land_jsonl(lakehouse, name, [_event(i, day, visitor=f"v-{i}") for i in ids])
    files = {f.path.name: f for f in discover(lakehouse.landing, CLICKS)}
    stamp_a = datetime.now(UTC)
    ingest_feed(CLICKS, [files["b.jsonl"]], lake, lakehouse.pseudonymiser(), batch_id="batch-b")
    lakehouse.ensure_layout()
    for feed in FEEDS:  # every bronze table exists, as after a real first ingest
        ingest_feed(feed, [], lake, lakehouse.pseudonymiser())
    dbt("build", "--exclude-resource-type", "unit_test", target_path=tmp_path / "t")

    class Clock:  # batch A was stamped before batch B, but commits now
        @staticmethod
        def now(tz=None):
            return stamp_a

    real_datetime = pipeline.datetime
    pipeline.datetime = type("FrozenDatetime", (), {"now": Clock.now, "combine": real_datetime.combine})
    try:
        ingest_feed(CLICKS, [files["a.jsonl"]], lake, lakehouse.pseudonymiser(), batch_id="batch-a")
    finally:
        pipeline.datetime = real_datetime
    assert (
        lake.read(FEEDS[CLICKS].bronze_table).filter(pl.col("_batch_id") == "batch-a")["_ingested_at"].max()
        < lake.read(FEEDS[CLICKS].bronze_table).filter(pl.col("_batch_id") == "batch-b")["_ingested_at"].min()
    )
    dbt("build", "--exclude-resource-type", "unit_test", target_path=tmp_path / "t")
    import duckdb

    with duckdb.connect(str(hn_home / "warehouse.duckdb"), read_only=True) as con:
        staged = con.sql("select event_id from silver.stg_clickstream_events").pl()["event_id"].to_list()
        sessionised = con.execute("select count(*) from silver.int_events_sessionised").fetchall()[0][0]
    assert sorted(staged) == ["a1", "a2", "a3", "b1", "b2"] and sessionised == 5
