"""The training set's sliding window: the most recent weeks before an end, whole sessions only; off
by default (every snapshot, the behaviour before the window existed)."""

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from hn_assets.features.training_set import window

START = datetime(2026, 9, 1, tzinfo=UTC)


def _spine(zone: str | None = "UTC") -> pl.DataFrame:
    rows = []
    for day in range(42):
        for n in range(3):  # three snapshots per session, 10 minutes apart
            t = START + timedelta(days=day, hours=23, minutes=40 + 10 * n)  # the last crosses midnight
            rows.append({"session_key": f"s{day}", "event_timestamp": t, "n": n})
    frame = pl.DataFrame(rows)
    if zone is None:
        return frame.with_columns(pl.col("event_timestamp").dt.replace_time_zone(None))
    return frame


def test_no_window_keeps_every_snapshot():
    spine = _spine()
    assert window(spine).equals(spine)


@pytest.mark.parametrize("zone", ["UTC", None])
def test_recent_weeks_before_the_newest_snapshot(zone):
    kept = window(_spine(zone), weeks=2)
    sessions = kept["session_key"].unique().sort(descending=True).to_list()
    assert len(sessions) == 14 and "s41" in sessions and "s27" not in sessions
    assert kept.group_by("session_key").len()["len"].min() == 3  # whole sessions


@pytest.mark.parametrize("zone", ["UTC", None])
def test_window_ending_on_a_day_keeps_sessions_started_before_it(zone):
    kept = window(_spine(zone), end=date(2026, 9, 29))  # a drift day: day 28 and later left out
    assert set(kept["session_key"]) == {f"s{d}" for d in range(28)}
    assert kept.height == 28 * 3  # s27's last snapshot falls after midnight and is kept with its session
    both = window(_spine(zone), weeks=1, end=date(2026, 9, 29))
    assert set(both["session_key"]) == {f"s{d}" for d in range(21, 28)}


def test_a_window_of_no_weeks_is_refused():
    with pytest.raises(ValueError, match="weeks must be >= 1"):
        window(_spine(), weeks=0)
