"""Features that depend on the scoring time, computed from timestamps at request time.

One home for both sides (docs/architecture.md, "Real time": no values frozen at the last batch):
the scoring service calls `request_time_features` with the request's time, and offline code calls
`with_request_time_features`, which applies that same function to each row at its `as_of`
(hn_assets/features/training_set.py, so the training set carries the values the service would
have computed at each snapshot time).

- `seconds_since_start`: seconds from the session's first event to the scoring time (dbt:
  `(epoch_ms(as_of) - epoch_ms(first event)) / 1000.0`; at a snapshot the scoring time is its event).
- `local_hour`, `is_weekend`: the scoring time in the visitor's timezone (ISO weekday >= 6).
- `days_since_last_purchase`: UTC calendar days from the last purchase to the scoring time (dbt's
  `date_diff('day', last_purchase_at, t)`), None without a purchase.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import polars as pl

REQUEST_TIME_FEATURES = ("seconds_since_start", "local_hour", "is_weekend", "days_since_last_purchase")


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def request_time_features(
    at: datetime,
    session_start: datetime | None = None,
    timezone: str | None = None,
    last_purchase_at: datetime | None = None,
) -> dict:
    """The request-time features at `at` (naive datetimes are UTC). A missing input gives None for
    the features that need it (a new session has no start, an anonymous visitor no purchases)."""
    at = _utc(at)
    out: dict = {
        "seconds_since_start": None,
        "local_hour": None,
        "is_weekend": None,
        "days_since_last_purchase": None,
    }
    if session_start is not None:
        out["seconds_since_start"] = round((at - _utc(session_start)).total_seconds(), 3)
    if timezone:
        local = at.astimezone(_zone(timezone))
        out["local_hour"] = local.hour
        out["is_weekend"] = local.isoweekday() >= 6
    if last_purchase_at is not None:
        out["days_since_last_purchase"] = (at.date() - _utc(last_purchase_at).date()).days
    return out


def with_request_time_features(
    frame: pl.DataFrame,
    at: str = "event_timestamp",
    session_start: str | None = None,
    timezone: str | None = None,
    last_purchase_at: str | None = "last_purchase_at",
) -> pl.DataFrame:
    """`request_time_features` itself, row by row, over a frame whose scoring time is the column
    `at` (the other inputs named by the arguments; None or an absent column: that feature is not
    recomputed). The same function as the service calls, so offline rows and live answers cannot
    drift apart (~3 µs a row)."""
    inputs = {"session_start": session_start, "timezone": timezone, "last_purchase_at": last_purchase_at}
    inputs = {k: v for k, v in inputs.items() if v is not None and v in frame.columns}
    wanted = {
        "session_start": ["seconds_since_start"],
        "timezone": ["local_hour", "is_weekend"],
        "last_purchase_at": ["days_since_last_purchase"],
    }
    outputs = [name for key in inputs for name in wanted[key]]
    if not outputs:
        return frame
    columns = [frame[at].to_list(), *(frame[c].to_list() for c in inputs.values())]
    keys = list(inputs)
    values: dict[str, list] = {name: [] for name in outputs}
    for row in zip(*columns):
        got = request_time_features(row[0], **dict(zip(keys, row[1:])))
        for name in outputs:
            values[name].append(got[name])
    dtypes = {"seconds_since_start": pl.Float64, "local_hour": pl.Int64, "is_weekend": pl.Boolean}
    series = [pl.Series(name, values[name], dtype=dtypes.get(name, pl.Int64)) for name in outputs]
    return frame.with_columns(series)


def user_history_in_session(history: dict, history_as_of: datetime | None, session_start: datetime | None) -> dict:
    """Corrections to a user's online history row (the batch's latest, as of `history_as_of`) so
    that it is what the point-in-time join gives a snapshot of the current session.

    gold `user_features` has a row at every session start, so at any moment of a session the join
    already counts that session in `sessions_last_30d` (and a first-ever session gives a row with
    `lifetime_purchase_count` 0). A live session that started after the batch's latest row is not
    in the online row yet: counted here (+1, or the first-session row when the user has none).
    Not covered: the user's other sessions between the batch and this one, and sessions leaving the
    30-day window since the batch (the daily batch bounds both to a day; the skew report measures
    what is left). Without a session start (no event yet) there is no snapshot to match: nothing."""
    if session_start is None:
        return {}
    if not history:
        return {"lifetime_purchase_count": 0, "sessions_last_30d": 1}
    # Feast's online store keeps event times in whole seconds: compare at that precision.
    if history_as_of is None or _utc(session_start).replace(microsecond=0) > _utc(history_as_of):
        return {"sessions_last_30d": int(history.get("sessions_last_30d") or 0) + 1}
    return {}


# Timestamps the training set joins beside a feature service so that the request-time features
# can be recomputed at each row's as_of (Feast reference -> column); not model inputs themselves.
REQUEST_TIME_INPUTS = {"user_history:last_purchase_at": "last_purchase_at"}


def at_scoring_time(joined: pl.DataFrame, at: str = "event_timestamp", drop: list[str] | None = None) -> pl.DataFrame:
    """A point-in-time joined frame with `days_since_last_purchase` recomputed at each row's
    scoring time `at` (not frozen at the user's last batch row), as the service computes it; the
    `drop` columns (the joined REQUEST_TIME_INPUTS) removed afterwards. The in-session ones
    (seconds_since_start, local_hour, is_weekend) already are at the snapshot's own time."""
    if "days_since_last_purchase" in joined.columns and "last_purchase_at" in joined.columns:
        joined = with_request_time_features(joined, at=at, last_purchase_at="last_purchase_at")
    return joined.drop([c for c in drop or [] if c in joined.columns])
