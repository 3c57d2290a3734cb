"""GX suites: keys and labels are complete in every row; other critical columns within tolerance."""

from datetime import datetime, timedelta

import pandas as pd
import polars as pl
import pytest

from hn_assets.contracts import PURCHASE_LABEL
from hn_assets.quality.gx import validate, validation_sample
from hn_assets.quality.suites import COMPLETENESS, SUITES

ROWS = 100  # one null is 1 % of the rows: within COMPLETENESS, so only a 100 % rule catches it
SUITE = {suite.table: suite for suite in SUITES}


def user_features(rows: int = ROWS) -> pd.DataFrame:
    """A valid user_features frame, written out column by column (independent of the suite's fields)."""
    start = datetime(2026, 9, 1)
    return pd.DataFrame(
        {
            "user_id": [f"user-{i}" for i in range(rows)],
            "event_timestamp": [start + timedelta(hours=i) for i in range(rows)],
            "lifetime_purchase_count": [i % 4 for i in range(rows)],
            "sessions_last_30d": [1 + i % 7 for i in range(rows)],
            "avg_order_value_90d": [250.0] * rows,
            "days_since_last_purchase": [3] * rows,
        }
    )


def valid_frame(suite, rows: int = ROWS) -> pd.DataFrame:
    """A frame that meets every expectation of `suite`: ids, times, labels, in-range counts."""
    start = datetime(2026, 9, 1)

    def column(name: str) -> list:
        if name == suite.time_column:
            return [start + timedelta(minutes=i) for i in range(rows)]
        if name == PURCHASE_LABEL:
            return [i % 2 == 0 for i in range(rows)]
        if name in suite.categories:
            return [suite.categories[name][0]] * rows
        if name in suite.keys:
            return [f"{name}-{i}" for i in range(rows)]
        return [1] * rows  # every declared range admits 1

    names = dict.fromkeys([*suite.keys, *suite.critical, *suite.ranges, *suite.categories, suite.time_column])
    return pd.DataFrame({name: column(name) for name in names})


def with_null(frame: pd.DataFrame, column: str, row: int = 0) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = None
    return frame


def test_a_single_null_user_id_fails_user_features():
    passed, metadata = validate(SUITE["user_features"], with_null(user_features(), "user_id"))
    assert not passed
    assert "expect_column_values_to_not_be_null(user_id)" in metadata["failed"]


def test_a_null_in_a_non_key_column_within_tolerance_passes_user_features():
    assert validate(SUITE["user_features"], user_features())[0]  # the control: a clean frame passes
    passed, metadata = validate(SUITE["user_features"], with_null(user_features(), "lifetime_purchase_count"))
    assert passed, metadata["failed"]


def test_nulls_beyond_tolerance_in_a_non_key_column_fail_user_features():
    nulls = int(ROWS * (1 - COMPLETENESS)) + 1
    frame = user_features()
    for row in range(nulls):
        frame = with_null(frame, "sessions_last_30d", row)
    passed, metadata = validate(SUITE["user_features"], frame)
    assert not passed and list(metadata["failed"]) == ["expect_column_values_to_not_be_null(sessions_last_30d)"]


@pytest.mark.parametrize(("table", "key"), [(s.table, key) for s in SUITES for key in s.keys], ids=lambda v: str(v))
def test_every_key_and_label_must_be_complete(table, key):
    suite = SUITE[table]
    passed, metadata = validate(suite, with_null(valid_frame(suite), key))
    assert not passed
    assert list(metadata["failed"]) == [f"expect_column_values_to_not_be_null({key})"]  # nothing else


@pytest.mark.parametrize("table", list(SUITE))
def test_one_null_in_each_other_critical_column_passes(table):
    suite = SUITE[table]
    frame = valid_frame(suite)
    for row, column in enumerate(suite.critical):
        frame = with_null(frame, column, row)
    passed, metadata = validate(suite, frame)
    assert passed, metadata["failed"]


def test_labels_are_keys_not_tolerant_critical_columns():
    snapshots = SUITE["fct_session_snapshots"]
    assert PURCHASE_LABEL in snapshots.keys and PURCHASE_LABEL not in snapshots.critical


def test_the_validation_sample_keeps_every_row_with_a_null_key():
    suite = SUITE["user_features"]
    frame = pl.from_pandas(with_null(user_features(rows=10_000), "user_id", row=7_777))
    sample = validation_sample(suite, frame, rows=250)
    assert sample.height == 251 and sample["user_id"].null_count() == 1
    assert not validate(suite, sample.to_pandas())[0]
    clean = pl.from_pandas(user_features(rows=10_000))
    assert validation_sample(suite, clean, rows=250).height == 250
    assert validation_sample(suite, clean.head(100), rows=250).height == 100  # small tables: every row
