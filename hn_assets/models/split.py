"""Strict temporal split of a snapshot training set (no session on two sides, a gap at each boundary).

Sessions are placed by their real span from gold `fct_sessions` (`session_start`, `session_end`),
not by their snapshots: the last snapshot is taken before checkout, so a session's label (its
purchase) comes later than its last `as_of`, and placing it by `as_of` let a session whose purchase
fell after a boundary sit on the earlier side. The asset shell reads the spans
(`WarehouseResource.scan_gold`) and passes them in; rejected: carrying the end on every spine row
(the training set would change shape for one consumer).

Boundaries fall on whole weeks when the data spans at least four weeks (train on the earlier weeks,
validate on the second-to-last, test on the last), else on quantiles of the session starts (the
REES46 sample spans three hours). A session belongs to a side only if its whole span lies there; at
each boundary, sessions ending within `gap` before it are dropped, so no session crosses it and
nothing from the later side leaks back. Snapshots of sessions missing from `fct_sessions` are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from hn_assets.contracts import session_rules


@dataclass(frozen=True)
class TemporalSplit:
    valid_start: datetime
    test_start: datetime
    gap: timedelta

    def metadata(self) -> dict[str, str]:
        return {"valid_start": str(self.valid_start), "test_start": str(self.test_start), "gap": str(self.gap)}


def choose_boundaries(
    session_starts: pl.Series, gap: timedelta | None = None, quantiles: tuple[float, float] = (0.5, 0.75)
) -> TemporalSplit:
    gap = gap or session_rules().timeout  # a session never spans more than one gap of inactivity
    first, last = session_starts.min(), session_starts.max()
    if last - first >= timedelta(weeks=4):
        week = timedelta(weeks=1)
        test_start = (last - week).replace(hour=0, minute=0, second=0, microsecond=0)
        return TemporalSplit(test_start - week, test_start, gap)
    # Quantiles of the session starts, with a validation window at least two gaps wide (else the
    # gap before the test boundary would leave it empty).
    test_start = session_starts.quantile(quantiles[1], "nearest")
    valid_start = min(session_starts.quantile(quantiles[0], "nearest"), test_start - 2 * gap)
    return TemporalSplit(valid_start, test_start, gap)


SPAN_COLUMNS = ["session_key", "session_start", "session_end"]


def session_sides(sessions: pl.DataFrame, split: TemporalSplit) -> pl.DataFrame:
    """(session_key, split) for every session wholly on one side; `sessions` has SPAN_COLUMNS."""
    spans = sessions.select(
        pl.col("session_key"), pl.col("session_start").alias("_start"), pl.col("session_end").alias("_end")
    )
    v, t, gap = split.valid_start, split.test_start, split.gap
    side = (
        pl.when(pl.col("_end") < v - gap)
        .then(pl.lit("train"))
        .when((pl.col("_start") >= v) & (pl.col("_end") < t - gap))
        .then(pl.lit("valid"))
        .when(pl.col("_start") >= t)
        .then(pl.lit("test"))
    )
    return spans.with_columns(side.alias("split")).select("session_key", "split").filter(pl.col("split").is_not_null())


def assign(frame: pl.DataFrame, split: TemporalSplit, sessions: pl.DataFrame) -> pl.DataFrame:
    """Adds `split` (train | valid | test) to snapshot rows; rows of sessions that straddle a
    boundary, end within the gap before it, or are unknown to `sessions` are removed."""
    return frame.join(session_sides(sessions, split), on="session_key", how="inner")


def spans_in(frame: pl.DataFrame, sessions: pl.DataFrame) -> pl.DataFrame:
    """The spans of the sessions `frame` has, timestamps in the frame's time zone."""
    keys = frame.select("session_key").unique()
    spans = sessions.select(SPAN_COLUMNS).join(keys, on="session_key", how="semi")
    return spans.with_columns(_like(spans[c], frame.schema["event_timestamp"]).alias(c) for c in SPAN_COLUMNS[1:])


def _like(column: pl.Series, dtype: pl.DataType) -> pl.Series:
    """`column` in the time zone of `dtype` (naive timestamps are UTC)."""
    column = column.cast(pl.Datetime("us", column.dtype.time_zone))
    zone = getattr(dtype, "time_zone", None)
    if column.dtype.time_zone is None:
        column = column.dt.replace_time_zone("UTC")
    return column.dt.convert_time_zone(zone) if zone else column.dt.replace_time_zone(None)


def split_with_both_classes(
    frame: pl.DataFrame,
    label: str,
    sessions: pl.DataFrame,
    valid_quantiles: tuple[float, ...] = (0.5, 0.35, 0.2, 0.1),
) -> tuple[pl.DataFrame, TemporalSplit]:
    """`assign` with the earliest validation start that gives every side both classes (short, sparse
    samples need a wider validation window); the last try is returned even if it falls short.
    `sessions`: the sessions' real spans (SPAN_COLUMNS, from gold fct_sessions)."""
    spans = spans_in(frame, sessions)
    starts = spans["session_start"]
    for q in valid_quantiles:
        split = choose_boundaries(starts, quantiles=(q, 0.75))
        out = assign(frame, split, spans)
        classes = out.group_by("split").agg(pl.col(label).n_unique())
        if classes.height == 3 and classes[label].min() == 2:
            break
    return out, split
