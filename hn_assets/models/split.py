"""Strict temporal split of a snapshot training set (no session on two sides, a gap at each boundary).

Sessions are placed by their first snapshot (`as_of`). Boundaries fall on whole weeks when the data
spans at least four weeks (train on the earlier weeks, validate on the second-to-last, test on the
last), else on quantiles of the session starts (the REES46 sample spans three hours). A session
belongs to a side only if all its snapshots lie there; at each boundary, sessions starting within
`gap` before it are dropped, so no session crosses it and nothing from the later side leaks back.
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


def assign(frame: pl.DataFrame, split: TemporalSplit, time_column: str = "event_timestamp") -> pl.DataFrame:
    """Adds `split` (train | valid | test); rows of sessions that straddle a boundary or start
    within the gap before it are removed."""
    spans = frame.group_by("session_key").agg(
        pl.col(time_column).min().alias("_start"), pl.col(time_column).max().alias("_end")
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
    sides = spans.with_columns(side.alias("split")).select("session_key", "split")
    return frame.join(sides, on="session_key", how="inner").filter(pl.col("split").is_not_null())


def split_with_both_classes(
    frame: pl.DataFrame,
    label: str,
    time_column: str = "event_timestamp",
    valid_quantiles: tuple[float, ...] = (0.5, 0.35, 0.2, 0.1),
) -> tuple[pl.DataFrame, TemporalSplit]:
    """`assign` with the earliest validation start that gives every side both classes (short, sparse
    samples need a wider validation window); the last try is returned even if it falls short."""
    starts = frame.group_by("session_key").agg(pl.col(time_column).min())[time_column]
    for q in valid_quantiles:
        split = choose_boundaries(starts, quantiles=(q, 0.75))
        out = assign(frame, split, time_column)
        classes = out.group_by("split").agg(pl.col(label).n_unique())
        if classes.height == 3 and classes[label].min() == 2:
            break
    return out, split
