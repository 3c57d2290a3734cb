"""Live pseudonymisation equals bronze's privacy filter on the same rows."""

from datetime import UTC, datetime

import polars as pl

from hn_assets.contracts import FEEDS
from hn_assets.ingest.privacy import Pseudonymiser, apply_privacy
from hn_assets.serving.privacy import LiveIds

KEY = b"unit-test-key"


def _bronze(rows: list[tuple]) -> pl.DataFrame:
    """Clickstream rows (visitor, user, client session, analytics consent, time) through bronze's filter."""
    columns = ("visitor_id", "user_id", "client_session_id", "analytics_consent", "event_timestamp")
    frame = pl.DataFrame(
        {**{name: [r[i] for r in rows] for i, name in enumerate(columns)}, "order_id": [None] * len(rows)},
        schema_overrides={"user_id": pl.String, "client_session_id": pl.String, "order_id": pl.String},
    )
    return apply_privacy(frame, FEEDS["clickstream_events"], Pseudonymiser(KEY))


def test_live_ids_equal_the_bronze_filter_with_and_without_consent():
    rows = [
        ("v1", "C0000001", "cs-1", True, datetime(2026, 9, 1, 23, 59, tzinfo=UTC)),
        ("v1", "C0000001", "cs-1", False, datetime(2026, 9, 1, 23, 59, tzinfo=UTC)),
        ("v2", None, None, False, datetime(2026, 9, 2, 0, 1, tzinfo=UTC)),
        ("v3", None, "cs-3", True, datetime(2026, 9, 3, 12, 0, tzinfo=UTC)),
    ]
    bronze = _bronze(rows)
    live = LiveIds(KEY)
    for (visitor, user, client, consent, at), expected in zip(rows, bronze.iter_rows(named=True)):
        assert live.ids(visitor, user, client, consent, at) == (
            expected["visitor_id"],
            expected["user_id"],
            expected["client_session_id"],
        )


def test_the_live_time_shift_is_bronzes_shift_of_a_visitor_day_without_consent():
    """Local-time features of a visitor without consent are computed by the batch from bronze's
    shifted times; the service shifts by the same offset, or they would disagree (a skew)."""
    rows = [
        ("v1", False, datetime(2026, 9, 22, 16, 55, 28, 6000, tzinfo=UTC)),
        ("v1", False, datetime(2026, 9, 23, 0, 1, tzinfo=UTC)),  # the next day: another token, another offset
        ("v2", False, datetime(2026, 9, 22, 23, 59, 59, tzinfo=UTC)),
        ("v3", True, datetime(2026, 9, 22, 12, 0, tzinfo=UTC)),
    ]
    bronze = _bronze([(visitor, None, None, consent, at) for visitor, consent, at in rows])
    live = LiveIds(KEY)
    shifts = []
    for (visitor, consent, at), expected in zip(rows, bronze.iter_rows(named=True)):
        token = live.ids(visitor, None, None, consent, at)[0]
        shift = live.time_shift(token, at) if not consent else at - at
        assert at + shift == expected["event_timestamp"]
        shifts.append(shift)
    assert shifts[0] != shifts[1] and all(s for s in shifts[:3])  # per visitor-day, never zero
