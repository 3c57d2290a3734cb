"""Strict temporal split of a snapshot training set (no session on two sides, a gap at each boundary).

Sessions are placed by their first snapshot (`as_of`). Boundaries fall on whole weeks when the data
spans at least four weeks (train on the earlier weeks, validate on the second-to-last, test on the
last), else on time quantiles of the session starts (the REES46 sample spans three hours). A session
belongs to a side only if all its snapshots lie there; at each boundary, sessions starting within
`gap` before it are dropped, so no session crosses it and nothing from the later side leaks back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

SESSION_TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class TemporalSplit:
    valid_start: datetime
    test_start: datetime
    gap: timedelta

    def metadata(self) -> dict[str, str]:
        return {"valid_start": str(self.valid_start), "test_start": str(self.test_start), "gap": str(self.gap)}


def choose_boundaries(session_starts: pl.Series, gap: timedelta = SESSION_TIMEOUT,
                      quantiles: tuple[float, float] = (0.7, 0.85)) -> TemporalSplit:
    first, last = session_starts.min(), session_starts.max()
    if last - first >= timedelta(weeks=4):
        week = timedelta(weeks=1)
        test_start = (last - week).replace(hour=0, minute=0, second=0, microsecond=0)
        return TemporalSplit(test_start - week, test_start, gap)
    return TemporalSplit(session_starts.quantile(quantiles[0], "nearest"),
                         session_starts.quantile(quantiles[1], "nearest"), gap)


def assign(frame: pl.DataFrame, split: TemporalSplit, time_column: str = "event_timestamp") -> pl.DataFrame:
    """Adds `split` (train | valid | test); rows of sessions that straddle a boundary or start
    within the gap before it are removed."""
    spans = frame.group_by("session_key").agg(pl.col(time_column).min().alias("_start"),
                                               pl.col(time_column).max().alias("_end"))
    v, t, gap = split.valid_start, split.test_start, split.gap
    side = (pl.when(pl.col("_end") < v - gap).then(pl.lit("train"))
            .when((pl.col("_start") >= v) & (pl.col("_end") < t - gap)).then(pl.lit("valid"))
            .when(pl.col("_start") >= t).then(pl.lit("test")))
    sides = spans.with_columns(side.alias("split")).select("session_key", "split")
    return frame.join(sides, on="session_key", how="inner").filter(pl.col("split").is_not_null())
