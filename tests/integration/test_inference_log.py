"""The inference log end to end: a worker process SIGKILLed mid-stream loses no answered request.

A real subprocess appends records with the writer and prints each request id once `append` has
returned (the moment the service answers). It is killed with SIGKILL right after an answer; a new
writer with the same worker id (the restarted worker) publishes the killed one's open file; the
ordinary ingest then takes the feed into `bronze_inference_log` (Delta), and every answered id is
there once, with the privacy rules of every feed applied (ids pseudonymised, per consent). A
malformed line is quarantined with its reason.
"""

import os
import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta

import orjson
import polars as pl
import pytest

from hn_assets.contracts import QUARANTINE_TABLE
from hn_assets.defs.resources import LakehouseResource
from hn_assets.ingest.landing import discover
from hn_assets.ingest.pipeline import ingest_landing
from hn_assets.serving.inference_log import FEED, InferenceLogWriter, encode, example_record, feed_folder
from tests.conftest import REPO

pytestmark = pytest.mark.integration
KILL_AFTER = 400  # answers read before the kill

# The worker: record i belongs to raw visitor i % 7 and customer i % 5; one in three has no consent.
WORKER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from pathlib import Path
    from hn_assets.serving.inference_log import InferenceLogWriter, example_record

    writer = InferenceLogWriter(Path(sys.argv[1]), "w0", max_bytes=6_000)  # rotates every ~8 records
    for i in range(1_000_000):
        record = example_record(
            request_id=f"req-{i:07d}",
            scored_at=datetime.now(UTC),
            visitor_id=f"visitor-raw-{i % 7:04d}",
            user_id=f"CUST-RAW-{i % 5:04d}",
            client_session_id=f"cs-raw-{i:07d}",
            analytics_consent=i % 3 != 0,
            features={"page_views_so_far": i % 11, "cart_adds_so_far": i % 2},
        )
        writer.append(record)
        print(record["request_id"], record["scored_at"].isoformat(), flush=True)  # answered
    """
)


def _run_worker_and_kill(landing) -> dict[str, datetime]:
    """Answered request ids -> the scored_at the worker wrote, read up to the worker's death."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(landing)], stdout=subprocess.PIPE, env=env, cwd=REPO, text=True
    )
    answered: dict[str, datetime] = {}
    try:
        for line in child.stdout:
            request_id, scored_at = line.split()
            answered[request_id] = datetime.fromisoformat(scored_at)
            if len(answered) == KILL_AFTER:
                os.kill(child.pid, signal.SIGKILL)  # right after an answer, mid-stream
                break
        for line in child.stdout:  # answers already printed before it died
            if line.endswith("\n"):
                request_id, scored_at = line.split()
                answered[request_id] = datetime.fromisoformat(scored_at)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    return answered


def _raw(request_id: str) -> tuple[str, str, str, bool]:
    i = int(request_id.removeprefix("req-"))
    return f"visitor-raw-{i % 7:04d}", f"CUST-RAW-{i % 5:04d}", f"cs-raw-{i:07d}", i % 3 != 0


def test_sigkilled_worker_loses_no_answered_request_and_bronze_applies_the_privacy_rules(hn_home):
    lakehouse = LakehouseResource()
    lakehouse.ensure_layout()
    folder = feed_folder(lakehouse.landing)

    answered = _run_worker_and_kill(lakehouse.landing)
    assert len(answered) >= KILL_AFTER
    # The file open at the kill, and rotated ones the worker had not yet published (fsynced and
    # renamed in the background): invisible to the ingest meanwhile.
    stale = sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))
    assert stale
    visible = {f.path.name for f in discover(lakehouse.landing, FEED)}
    assert all(not n.startswith(".") and n.endswith(".jsonl") for n in visible)  # published ones only

    # The worker restarts under the same id: its predecessor's open file is published.
    restarted = InferenceLogWriter(lakehouse.landing, "w0")
    recovered = [n.removeprefix(".").removesuffix(".part") for n in stale]
    assert sorted(p.name for p in restarted.recovered) == [n for n in recovered if (folder / n).exists()]
    assert len(restarted.recovered) >= len(stale) - 1  # the open file may have been empty (just rotated)
    restarted.close()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
    logged = [
        orjson.loads(line) for f in discover(lakehouse.landing, FEED) for line in f.path.read_bytes().splitlines()
    ]
    assert set(answered) <= {r["request_id"] for r in logged}

    # Next to them, a hand-made file: one good record, one torn line holding a raw id, one bad value.
    torn = b'{"schema_version":1,"request_id":"bad-1","visitor_id":"visitor-raw-9999","analytics_con'
    (folder / "handmade.jsonl").write_bytes(
        encode(example_record(request_id="good-1", visitor_id="visitor-raw-8888"))
        + torn
        + b"\n"
        + encode(example_record(request_id="bad-2", visitor_id="visitor-raw-7777", decision="maybe"))
    )

    reports = {r.feed: r for r in ingest_landing(lakehouse, [FEED])}
    report = reports[FEED]
    assert report.error is None and report.balanced
    assert report.landed == len(logged) + 3 and report.quarantined == 2
    assert discover(lakehouse.landing, FEED) == []  # every file taken and archived

    lake, pseudonymiser = lakehouse.delta(), lakehouse.pseudonymiser()
    bronze = lake.read("bronze_inference_log")
    assert bronze.height == len(logged) + 1 and bronze["request_id"].n_unique() == bronze.height
    rows = {r["request_id"]: r for r in bronze.iter_rows(named=True)}
    assert set(answered) <= set(rows)
    for request_id, written_at in answered.items():
        row = rows[request_id]
        visitor, user, session, consented = _raw(request_id)
        assert row["analytics_consent"] is consented
        if consented:
            assert row["visitor_id"] == pseudonymiser.token(visitor)
            assert row["user_id"] == pseudonymiser.token(user)
            assert row["client_session_id"] == session
            assert row["scored_at"] == written_at
        else:  # known for the day only, nothing that links it further, its time shifted
            assert row["visitor_id"] == pseudonymiser.token(f"{visitor}|{row['event_date'].isoformat()}")
            assert row["user_id"] is None and row["client_session_id"] is None
            assert row["scored_at"] != written_at and abs(row["scored_at"] - written_at) <= timedelta(minutes=15)
        i = int(request_id.removeprefix("req-"))
        assert orjson.loads(row["features"]) == {"cart_adds_so_far": i % 2, "page_views_so_far": i % 11}

    quarantine = lake.read(QUARANTINE_TABLE).filter(pl.col("feed") == FEED)
    reasons = dict(zip(quarantine["line_number"].to_list(), quarantine["reason"].to_list()))
    assert set(reasons) == {2, 3}
    assert reasons[2].startswith("malformed JSON")
    assert "decision: 'maybe' not allowed" in reasons[3]
    assert orjson.loads(quarantine.filter(pl.col("line_number") == 2)["raw_record"].item())["request_id"] == "bad-1"

    # No raw id in any string column of bronze or the quarantine.
    raw_ids = ["visitor-raw-", "CUST-RAW-", "C0000042", "v000123"]
    for frame in (bronze, quarantine):
        for column in frame.select(pl.col(pl.String)).columns:
            assert not frame[column].str.contains_any(raw_ids).any(), column
