"""Small pure pieces of the scoring service: request-time features (one definition, two forms),
session numbering by the 30-minute rule, the live session state, validation limits."""

import time
from datetime import UTC, datetime, timedelta

import orjson
import polars as pl
import pytest
from pydantic import ValidationError

from hn_assets.features.request_time import request_time_features, with_request_time_features
from hn_assets.serving import schemas
from hn_assets.serving.sessions import BatchSessions, LiveSessions


def test_request_time_features_scalar_equals_frame_form():
    at = [datetime(2026, 9, 5, 23, 30, tzinfo=UTC), datetime(2026, 9, 6, 0, 10, tzinfo=UTC)]
    start = [datetime(2026, 9, 5, 23, 0, tzinfo=UTC)] * 2
    bought = [datetime(2026, 9, 1, 22, 0, tzinfo=UTC), None]
    frame = pl.DataFrame({"t": at, "s": start, "tz": ["Asia/Tokyo", "America/New_York"], "lp": bought})
    out = with_request_time_features(frame, at="t", session_start="s", timezone="tz", last_purchase_at="lp")
    for i, row in enumerate(out.iter_rows(named=True)):
        scalar = request_time_features(at[i], start[i], frame["tz"][i], bought[i])
        assert {k: row[k] for k in scalar} == scalar
    assert out["days_since_last_purchase"][0] == 4 and out["seconds_since_start"][1] == 4200.0


def test_batch_session_numbers_follow_the_30_minute_rule():
    t0 = datetime(2026, 9, 1, 10, tzinfo=UTC).timestamp()
    batch = BatchSessions({"v": ([1, 2], [t0, t0 + 7200], [t0 + 600, t0 + 7800])})
    assert batch.number_at("v", t0 + 300, 1800) == 1  # inside session 1
    assert batch.number_at("v", t0 + 600 + 1800, 1800) == 1  # within the timeout after it
    assert batch.number_at("v", t0 + 600 + 1801, 1800) == 2  # a gap over the timeout: the next number
    assert batch.number_at("v", t0 + 3 * 3600, 1800) == 3  # after everything: a new session
    assert batch.number_at("v", t0 - 3600, 1800) == 1 and batch.number_at("new", t0, 1800) == 1


def test_live_sessions_continue_and_split_by_the_timeout(tmp_path):
    sessions = LiveSessions(tmp_path / "s.db", BatchSessions(), timeout_seconds=1800)
    t = datetime(2026, 9, 1, 10, tzinfo=UTC)

    def ev(i, kind, at):
        return (
            "tok",
            {
                "event_id": f"e{i}",
                "event_type": kind,
                "event_timestamp": at,
                "timezone": "Europe/Berlin",
                "product_id": "P1",
                "device": "mobile",
                "channel": "direct",
            },
        )

    pushed = []
    keys = sessions.apply([ev(1, "page_view", t), ev(2, "add_to_cart", t + timedelta(minutes=5))], pushed.extend)
    assert keys == ["tok#1", "tok#1"] and pushed[-1]["cart_adds_so_far"] == 1
    assert sessions.apply([ev(3, "page_view", t + timedelta(minutes=40))], pushed.extend) == ["tok#2"]
    number, live = sessions.current("tok", t + timedelta(minutes=50))
    assert number == 2 and live.state._events == 1
    assert sessions.current("tok", t + timedelta(hours=5))[1] is None


def test_limits_and_field_names():
    body = {"visitor_id": "v", "consent": {"analytics": True}}
    with pytest.raises(ValidationError) as err:
        schemas.ScoreRequest.model_validate(body)
    assert schemas.validation_detail(err.value)[0]["field"] == "consent.personalisation"
    event = {
        "event_id": "e",
        "event_type": "page_view",
        "event_timestamp": "2026-09-01T10:00:00Z",
        "visitor_id": "v",
        "analytics_consent": True,
        "timezone": "Europe/Berlin",
    }
    assert len(schemas.parse_events(orjson.dumps(event)).events) == 1
    with pytest.raises(schemas.TooLarge):
        schemas.parse_events(orjson.dumps([event] * (schemas.MAX_EVENTS_PER_REQUEST + 1)))
    with pytest.raises(ValidationError):
        schemas.parse_events(orjson.dumps({**event, "timezone": "Berlin"}))
    assert "ScoreResponse" in schemas.openapi()["components"]["schemas"]


def test_events_from_many_threads_of_one_worker_never_collide(tmp_path):
    """/events runs in a thread pool over one connection per worker: without the worker's write
    lock, concurrent transactions fail with 'cannot start a transaction within a transaction'
    (seen under `hn replay` with 16 requests in flight). `_apply` alone, from the same threads,
    shows the broken case."""
    import threading
    from datetime import UTC, datetime, timedelta

    from hn_assets.serving.sessions import LiveSessions

    t0 = datetime(2026, 10, 1, tzinfo=UTC)

    def hammer(apply) -> list[str]:
        errors = []

        def work(i):
            try:
                for j in range(40):
                    event = {"event_id": f"{i}-{j}", "event_type": "page_view", "timezone": "UTC"}
                    apply([(f"v{i}", {**event, "event_timestamp": t0 + timedelta(seconds=j)})], lambda s: None)
            except Exception as exc:  # noqa: BLE001 - collected and asserted on
                errors.append(repr(exc))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return errors

    sessions = LiveSessions(tmp_path / "locked.db")
    assert hammer(sessions.apply) == []
    assert all(sessions.get(f"v{i}").state._events == 40 for i in range(8))
    unlocked = LiveSessions(tmp_path / "unlocked.db")  # thread timing: a few rounds make the collision certain
    assert any("within a transaction" in e for _ in range(5) for e in hammer(unlocked._apply))


def test_a_worker_publishes_its_killed_predecessors_events_but_not_another_servers(tmp_path):
    """Two servers on one HN_HOME name their workers alike (w1, w2): a starting w1 must not publish
    the other server's open file (the other w1 still writes to it), only an abandoned one."""
    from hn_assets.serving.core import LandingAppender

    folder = tmp_path / "clickstream_events"
    running = LandingAppender(tmp_path, "w1")
    running.append([{"event_id": "e1"}])
    open_part = next(folder.glob(".live-w1-*.jsonl.part"))
    abandoned = folder / ".live-w1-20260101T000000000000Z-1-1.jsonl.part"  # a SIGKILLed worker's
    abandoned.write_bytes(b'{"event_id": "e0"}\n')

    starting = LandingAppender(tmp_path, "w1")  # the second server's w1
    assert open_part.exists(), "the running worker's open file was published under it"
    assert (folder / "live-w1-20260101T000000000000Z-1-1.jsonl").read_bytes() == b'{"event_id": "e0"}\n'

    running.append([{"event_id": "e2"}])
    running.close()
    starting.close()
    published = sorted(folder.glob("live-w1-*.jsonl"))
    assert not list(folder.glob(".*.part"))
    lines = sorted(line for p in published for line in p.read_bytes().splitlines())
    assert lines == sorted([b'{"event_id":"e1"}', b'{"event_id":"e2"}', b'{"event_id": "e0"}'])


def test_the_last_events_of_a_burst_are_published_without_waiting_for_the_next_event(tmp_path):
    """The batch reads only published files: a worker that receives no further event must still
    publish its open file once it is due, or the session's last events miss the nightly batch."""
    from hn_assets.serving.core import LandingAppender

    appender = LandingAppender(tmp_path, "w1", max_age_seconds=0.2)
    appender.append([{"event_id": "e1"}, {"event_id": "e2"}])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not list((tmp_path / "clickstream_events").glob("live-w1-*.jsonl")):
        time.sleep(0.1)
    published = list((tmp_path / "clickstream_events").glob("live-w1-*.jsonl"))
    appender.close()
    assert [p.read_bytes() for p in published] == [b'{"event_id":"e1"}\n{"event_id":"e2"}\n']


def test_the_current_session_counts_in_the_users_history_as_the_point_in_time_join_counts_it():
    """gold user_features has a row at each session start, so a snapshot's join counts its own
    session; the online row (the batch's latest) must be corrected for a session it has not seen."""
    from hn_assets.features.request_time import user_history_in_session

    batch_row_at = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    history = {"lifetime_purchase_count": 2, "sessions_last_30d": 4}
    seen = batch_row_at - timedelta(minutes=5)  # the batch has this session: its row is at or after the start
    unseen = batch_row_at + timedelta(hours=20)
    assert user_history_in_session(history, batch_row_at, seen) == {}
    assert user_history_in_session(history, batch_row_at, unseen) == {"sessions_last_30d": 5}
    assert user_history_in_session(history, batch_row_at, batch_row_at) == {}  # the row at this session's start
    # ... as the online store keeps it: in whole seconds
    assert user_history_in_session(history, batch_row_at, batch_row_at + timedelta(microseconds=305_000)) == {}
    assert user_history_in_session({}, None, unseen) == {"lifetime_purchase_count": 0, "sessions_last_30d": 1}
    assert user_history_in_session(history, batch_row_at, None) == {}  # no event yet: no snapshot to match


def test_the_api_documents_every_field():
    """The OpenAPI page (/docs, /openapi.json) is generated from the schemas: a field added without
    a description would show as a blank row there."""
    spec = schemas.openapi()
    blank = [
        f"{name}.{field}"
        for name, schema in spec["components"]["schemas"].items()
        for field, prop in schema.get("properties", {}).items()
        if not str(prop.get("description", "")).strip()
    ]
    assert not blank, blank
    assert all(op.get("summary") for ops in spec["paths"].values() for op in ops.values())


def test_the_write_turn_is_one_per_store_and_never_waited_for_without_blocking(tmp_path):
    """Two workers (two LiveSessions on one file) take turns through the store's flock; the event
    loop asks without blocking (app._apply_events) and must get False at once, never a wait."""
    import time

    first, second = LiveSessions(tmp_path / "s.db"), LiveSessions(tmp_path / "s.db")
    assert first.acquire(blocking=False) and first.acquire(blocking=False)  # re-entrant in one worker
    started = time.perf_counter()
    assert not second.acquire(blocking=False)
    assert time.perf_counter() - started < 0.05
    first.release()
    assert not second.acquire(blocking=False)  # still held once
    first.release()
    assert second.acquire(blocking=False)
    second.release()
    event = {"event_id": "e1", "event_type": "page_view", "timezone": "UTC", "event_timestamp": datetime.now(UTC)}
    assert first.apply([("v", event)], lambda s: None) == ["v#1"]
