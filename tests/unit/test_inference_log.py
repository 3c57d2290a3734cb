"""The inference-log writer: records in the contract's shape, open files invisible to the ingest,
rotation by size and time, recovery of a killed predecessor's files (tests/integration holds the
SIGKILL case end to end)."""

import fcntl
import os
import threading
import time
from datetime import UTC, datetime

import orjson
import pytest

from hn_assets.contracts import FEEDS, SCHEMA_VERSION
from hn_assets.ingest.landing import discover
from hn_assets.serving.inference_log import (
    FEED,
    InferenceLogWriter,
    contract_reasons,
    encode,
    example_record,
    feed_folder,
    finalise_stale,
)


def _lines(landing) -> list[dict]:
    return [orjson.loads(line) for f in discover(landing, FEED) for line in f.path.read_bytes().splitlines()]


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_example_and_a_fallback_record_pass_the_contract_and_bad_ones_say_why():
    fallback = example_record(
        request_id="r2",
        user_id=None,
        client_session_id=None,
        session_key=None,
        model_version=None,
        fallback=True,
        fallback_reason="online store unavailable",
        feature_groups="",
        features={},
        raw_score=None,
        uplift_p0=None,
        uplift_p1=None,
        device=None,
    )
    bad = example_record(request_id="r3", decision="maybe", calibrated_score=-0.1, latency_ms="fast")
    missing = {"request_id": "r4"}
    reasons = contract_reasons([example_record(), fallback, bad, missing])
    assert reasons[:2] == [None, None]
    assert "decision: 'maybe' not allowed" in reasons[2] and "calibrated_score: below 0" in reasons[2]
    assert "latency_ms: not a valid float" in reasons[2]
    assert "visitor_id: required" in reasons[3] and "features: required" in reasons[3]


def test_the_example_fills_every_contract_field():
    assert set(example_record()) == set(FEEDS[FEED].field_names)


def test_encode_is_one_line_with_features_as_json_text_and_leaves_the_callers_dict_alone():
    record = example_record()
    del record["schema_version"], record["scored_at"]
    before = dict(record)
    line = encode(record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    decoded = orjson.loads(line)
    assert record == before
    assert decoded["schema_version"] == SCHEMA_VERSION
    assert orjson.loads(decoded["features"]) == record["features"]
    assert decoded["scored_at"].endswith("Z")  # the canonical landing form
    stamped = orjson.loads(encode(example_record(scored_at=datetime(2026, 9, 1, 10, 0, tzinfo=UTC))))
    assert stamped["scored_at"] == "2026-09-01T10:00:00Z"


def test_the_open_file_is_invisible_to_the_ingest_until_closed(tmp_path):
    writer = InferenceLogWriter(tmp_path, "w0")
    for i in range(10):
        writer.append(example_record(request_id=f"r{i}"))
    assert discover(tmp_path, FEED) == []
    parts = list(feed_folder(tmp_path).iterdir())
    assert len(parts) == 1 and parts[0].name.startswith(".w0-") and parts[0].name.endswith(".jsonl.part")
    assert parts[0].read_bytes().count(b"\n") == 10  # in the file (the kernel) as soon as append returns
    writer.close()
    writer.close()  # idempotent
    files = discover(tmp_path, FEED)
    assert len(files) == 1 and files[0].path.name.startswith("w0-") and files[0].path.suffix == ".jsonl"
    assert [r["request_id"] for r in _lines(tmp_path)] == [f"r{i}" for i in range(10)]
    assert not [p for p in feed_folder(tmp_path).iterdir() if p.name.startswith(".")]
    with pytest.raises(ValueError):
        writer.append(example_record())


def test_the_feed_folder_may_be_given_directly(tmp_path):
    with InferenceLogWriter(tmp_path / FEED, "w0") as writer:
        writer.append(example_record())
    assert len(discover(tmp_path, FEED)) == 1


def test_rotation_by_size_publishes_closed_files_and_keeps_every_record(tmp_path):
    line = len(encode(example_record(request_id="r000")))
    writer = InferenceLogWriter(tmp_path, "w0", max_bytes=5 * line)
    for i in range(23):
        writer.append(example_record(request_id=f"r{i:03d}"))
    _wait_for(lambda: len(discover(tmp_path, FEED)) == 4)  # published in the background, fsynced first
    assert all(f.path.stat().st_size >= 5 * line for f in discover(tmp_path, FEED))
    writer.close()
    files = discover(tmp_path, FEED)
    assert len(files) == 5
    assert sorted(r["request_id"] for r in _lines(tmp_path)) == [f"r{i:03d}" for i in range(23)]


def test_rotation_by_time_publishes_without_a_close_and_never_an_empty_file(tmp_path):
    writer = InferenceLogWriter(tmp_path, "w0", max_age_seconds=0.2, sync_interval_seconds=0.05)
    writer.append(example_record(request_id="a"))
    _wait_for(lambda: len(discover(tmp_path, FEED)) == 1)
    time.sleep(0.6)  # idle: the empty open file is kept, not published
    assert len(discover(tmp_path, FEED)) == 1
    writer.append(example_record(request_id="b"))
    _wait_for(lambda: len(discover(tmp_path, FEED)) == 2)
    writer.close()
    assert sorted(r["request_id"] for r in _lines(tmp_path)) == ["a", "b"]
    assert len(list(feed_folder(tmp_path).iterdir())) == 2


def test_appends_from_many_threads_are_whole_lines(tmp_path):
    writer = InferenceLogWriter(tmp_path, "w0", max_bytes=20_000)

    def work(t):
        for i in range(300):
            writer.append(example_record(request_id=f"t{t}-{i}"))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.close()
    ids = [r["request_id"] for r in _lines(tmp_path)]
    assert sorted(ids) == sorted(f"t{t}-{i}" for t in range(4) for i in range(300))


def _stale(folder, name: str, body: bytes):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(body)
    return path


def test_start_up_publishes_a_killed_predecessors_files_and_only_its_own(tmp_path):
    folder = feed_folder(tmp_path)
    good = encode(example_record(request_id="old-1")) + encode(example_record(request_id="old-2"))
    torn = _stale(folder, ".w0-20260901T100000000000Z-111-00001.jsonl.part", good + b'{"request_id":"old-3","vis')
    empty = _stale(folder, ".w0-20260901T100000000000Z-111-00002.jsonl.part", b"")
    other = _stale(folder, ".w1-20260901T100000000000Z-112-00001.jsonl.part", good)
    similar = _stale(folder, ".w0x-20260901T100000000000Z-113-00001.jsonl.part", good)

    writer = InferenceLogWriter(tmp_path, "w0")
    assert [p.name for p in writer.recovered] == ["w0-20260901T100000000000Z-111-00001.jsonl"]
    assert not torn.exists() and not empty.exists() and other.exists() and similar.exists()
    published = writer.recovered[0].read_bytes()
    assert published.startswith(good) and published.endswith(b"\n")  # the torn line ends; it is quarantined
    reasons = contract_reasons([orjson.loads(line) for line in published.splitlines()[:2]])
    assert reasons == [None, None]
    writer.close()


def test_a_file_a_live_writer_holds_is_never_taken(tmp_path):
    live = InferenceLogWriter(tmp_path, "w0")
    live.append(example_record(request_id="live"))
    # A second process misconfigured with the same worker id, and the any-worker sweep, leave it alone.
    second = InferenceLogWriter(tmp_path, "w0")
    assert second.recovered == []
    assert finalise_stale(tmp_path, None, stale_after_seconds=0) == []
    live.append(example_record(request_id="still-live"))
    live.close()
    second.close()
    assert sorted(r["request_id"] for r in _lines(tmp_path)) == ["live", "still-live"]


def test_the_any_worker_sweep_takes_only_old_unlocked_files(tmp_path):
    folder = feed_folder(tmp_path)
    old = _stale(folder, ".w7-20260901T100000000000Z-1-00001.jsonl.part", encode(example_record()))
    young = _stale(folder, ".w8-20260901T100000000000Z-2-00001.jsonl.part", encode(example_record()))
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert [p.name for p in finalise_stale(tmp_path, None)] == ["w7-20260901T100000000000Z-1-00001.jsonl"]
    assert young.exists()
    # Held by someone (flock): not taken even when old.
    os.utime(young, (time.time() - 3600, time.time() - 3600))
    with open(young, "rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        assert finalise_stale(tmp_path, None) == []
    assert len(finalise_stale(tmp_path, None)) == 1
