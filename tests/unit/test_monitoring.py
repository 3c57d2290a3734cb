"""The monitoring cores on known answers, each check shown able to fire on a broken case:
PSI, Evidently drift, training-serving skew, live performance, the inference-log window."""

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from hn_assets.monitoring import drift, live, performance, skew

T0 = datetime(2026, 10, 1, 12, tzinfo=UTC)


# ---- PSI ---------------------------------------------------------------------------------------
def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 20_000)
    assert drift.psi(ref, rng.normal(0, 1, 5_000)) < 0.02
    assert drift.psi(ref, rng.normal(1.0, 1, 5_000)) > 0.25


def test_psi_counts_missing_values_as_their_own_bin_and_handles_discrete_columns():
    ref = np.array([0.0] * 800 + [1.0] * 150 + [2.0] * 50)
    assert drift.psi(ref, ref.copy()) == pytest.approx(0.0, abs=1e-9)
    half_missing = np.where(np.arange(1000) % 2 == 0, np.nan, ref)
    assert drift.psi(ref, half_missing) > 0.25


# ---- Evidently drift -----------------------------------------------------------------------------
def _frame(rng, n, shift=0.0, mobile=0.5):
    return pl.DataFrame(
        {
            "cart_adds_so_far": rng.poisson(0.5 + shift, n).astype(float),
            "seconds_since_start": rng.exponential(200 * (1 + shift), n),
            "lifetime_purchase_count": rng.poisson(1.0, n).astype(float),
            "device": rng.choice(["mobile", "desktop"], n, p=[mobile, 1 - mobile]),
            "is_weekend": rng.random(n) < 0.3,
        }
    )


COLUMNS = ["cart_adds_so_far", "seconds_since_start", "lifetime_purchase_count", "device", "is_weekend"]


def test_drift_report_stays_quiet_on_the_same_world(tmp_path):
    rng = np.random.default_rng(1)
    result = drift.run_drift(_frame(rng, 5_000), _frame(rng, 2_000), COLUMNS)
    assert not result.alert, result.reasons()
    assert {c.column for c in result.columns} == set(COLUMNS)
    assert all(c.method for c in result.columns)
    summary = result.summary()
    assert all(isinstance(v, float) for v in summary.values())
    paths = drift.save(result, tmp_path)
    assert paths["html"].stat().st_size > 10_000
    assert json.loads(paths["json"].read_text())["summary"]["drifted_share"] == summary["drifted_share"]


def test_drift_report_flags_the_shifted_features():
    rng = np.random.default_rng(2)
    result = drift.run_drift(_frame(rng, 5_000), _frame(rng, 2_000, shift=1.5, mobile=0.9), COLUMNS)
    assert result.alert
    assert {"cart_adds_so_far", "seconds_since_start", "device"} <= set(result.drifted_columns())
    assert "lifetime_purchase_count" not in result.drifted_columns()
    assert result.dataset_drift and result.drifted_share >= 0.5
    assert "cart_adds_so_far" in result.psi_alerts and result.max_psi > 0.25


def test_one_shifted_key_feature_alerts_through_psi_without_dataset_drift():
    rng = np.random.default_rng(3)
    current = _frame(rng, 2_000).with_columns(pl.col("seconds_since_start") * 4)
    result = drift.run_drift(_frame(rng, 5_000), current, COLUMNS)
    assert not result.dataset_drift
    assert result.psi_alerts == ["seconds_since_start"] and result.alert


def test_a_feature_the_service_stopped_sending_counts_as_drifted():
    rng = np.random.default_rng(4)
    current = _frame(rng, 1_000).with_columns(pl.lit(None, pl.Float64).alias("lifetime_purchase_count"))
    result = drift.run_drift(_frame(rng, 3_000), current, COLUMNS)
    missing = next(c for c in result.columns if c.column == "lifetime_purchase_count")
    assert missing.drifted and missing.method == "all values missing"


# ---- the inference log window ------------------------------------------------------------------
def _log(n=10, start=T0, step=timedelta(hours=20), **extra):
    rows = {
        "request_id": [f"r{i}" for i in range(n)],
        "scored_at": [start + i * step for i in range(n)],
        "session_key": [f"v{i}#1" for i in range(n)],
        "fallback": [False] * n,
        "calibrated_score": [0.1] * n,
        "features": [json.dumps({"cart_adds_so_far": i, "device": "mobile", "is_weekend": True}) for i in range(n)],
        "_ingested_at": [start] * n,
    }
    rows.update(extra)
    return pl.DataFrame(rows)


def test_the_window_ends_at_the_newest_score_and_drops_duplicates_and_fallbacks():
    log = pl.concat([_log(), _log().head(2)])  # two requests ingested twice
    log = log.with_columns(
        pl.when(pl.col("request_id") == "r9").then(True).otherwise(pl.col("fallback")).alias("fallback")
    )
    rows, window = live.recent(log, days=7)
    assert window.end == T0 + 9 * timedelta(hours=20)
    assert rows["request_id"].n_unique() == rows.height
    assert rows["scored_at"].min() > window.end - timedelta(days=7)
    scored = live.model_rows(rows)
    assert "r9" not in scored["request_id"].to_list() and scored.height == rows.height - 1
    vectors = live.feature_frame(
        scored, {"cart_adds_so_far": pl.Int64, "device": pl.String, "is_weekend": pl.Boolean, "absent": pl.Float64}
    )
    assert vectors["device"].to_list() == ["mobile"] * scored.height
    assert vectors["absent"].null_count() == scored.height


def test_the_window_leaves_out_the_sessions_the_batch_flagged_as_bots():
    """The reference (the training spine) has no bot sessions; their scores would read as drift."""
    rows, window = live.recent(_log(), days=30)
    kept, counted = live.without_bots(rows, window, ["v3#1", "v7#1", "not-in-window#1"])
    assert sorted(set(rows["session_key"]) - set(kept["session_key"])) == ["v3#1", "v7#1"]
    assert counted.bot_scores_left_out == 2 and counted.metadata()["bot_scores_left_out"] == 2.0
    assert live.without_bots(rows, window, []) == (rows, window)


def test_an_empty_log_or_window_is_no_traffic():
    assert live.recent(None)[1] is None
    rows, window = live.recent(_log(), days=1, end=T0 - timedelta(days=3))
    assert rows.is_empty() and window is not None


# ---- training-serving skew ----------------------------------------------------------------------
FEATURES = ["cart_adds_so_far", "seconds_since_start", "lifetime_purchase_count", "device", "is_weekend"]
GROUPS = {
    "cart_adds_so_far": "session_activity",
    "seconds_since_start": "session_activity",
    "device": "session_activity",
    "is_weekend": "session_activity",
    "lifetime_purchase_count": "user_history",
}


def _vectors(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "cart_adds_so_far": rng.poisson(1, n).astype(float),
            "seconds_since_start": np.round(rng.exponential(300, n), 3),
            "lifetime_purchase_count": rng.poisson(1, n).astype(float),
            "device": rng.choice(["mobile", "desktop"], n),
            "is_weekend": rng.random(n) < 0.3,
        }
    )


def test_skew_is_zero_when_live_equals_the_training_row():
    offline = _vectors()
    live_rows = offline.with_columns(pl.lit("session,user_history").alias("feature_groups"))  # the service's names
    result = skew.compare(live_rows, offline, FEATURES, groups=GROUPS)
    assert result.matched == 200 and result.row_mismatch_share == 0 and not result.warn
    assert result.skewed_features() == []


def test_no_logged_score_matching_a_snapshot_is_no_match_not_a_crash():
    """E.g. every score of the window at a moment the batch has no snapshot of (a probe at the
    wall clock while the store replays simulated days): nothing to compare, said as such."""
    offline = _vectors()
    live_rows = offline.with_columns(
        pl.lit("session").alias("feature_groups"), ("x" + pl.col("request_id")).alias("request_id")
    )
    result = skew.compare(live_rows, offline, FEATURES, groups=GROUPS)
    assert result.matched == 0 and result.row_mismatch_share == 0 and result.skewed_features() == []


def test_a_deliberately_skewed_live_feature_fires_the_check():
    """The classic bug: the service computes a feature differently from its training twin (here
    seconds since the session start in milliseconds for every tenth request)."""
    offline = _vectors()
    broken = offline.with_columns(
        pl.when(pl.int_range(pl.len()) % 10 == 0)
        .then(pl.col("seconds_since_start") * 1000)
        .otherwise(pl.col("seconds_since_start"))
        .alias("seconds_since_start")
    )
    result = skew.compare(broken, offline, FEATURES)
    assert result.warn
    assert result.skewed_features() == ["seconds_since_start"]
    worst = result.worst
    assert worst.feature == "seconds_since_start" and worst.share == pytest.approx(0.1)
    assert worst.examples and worst.examples[0]["live"] == pytest.approx(worst.examples[0]["offline"] * 1000)


def test_skew_tolerates_a_sub_second_clock_difference_and_a_missing_value_is_a_difference():
    offline = _vectors()
    jitter = offline.with_columns(pl.col("seconds_since_start") + 0.4)
    assert not skew.compare(jitter, offline, FEATURES).warn
    dropped = offline.with_columns(pl.lit(None, pl.Float64).alias("cart_adds_so_far"))
    assert skew.compare(dropped, offline, FEATURES).skewed_features() == ["cart_adds_so_far"]


def test_features_of_a_group_the_service_did_not_use_are_not_compared():
    """Without personalisation consent the service reads no user history: not skew."""
    offline = _vectors()
    live_rows = offline.with_columns(
        pl.lit(None, pl.Float64).alias("lifetime_purchase_count"), pl.lit("session").alias("feature_groups")
    )
    result = skew.compare(live_rows, offline, FEATURES, groups=GROUPS)
    assert not result.warn
    assert next(f for f in result.features if f.feature == "cart_adds_so_far").compared == offline.height
    assert next(f for f in result.features if f.feature == "lifetime_purchase_count").compared == 0


def test_logged_scores_match_the_snapshot_of_their_moment():
    logged = pl.DataFrame(
        {
            "request_id": ["a", "b", "c"],
            "session_key": ["s#1", "s#1", "s#2"],
            "scored_at": [T0, T0 + timedelta(seconds=30.5), T0 + timedelta(minutes=5)],
        }
    )
    snapshots = pl.DataFrame(
        {
            "snapshot_key": ["s#1@1", "s#1@2", "s#2@1"],
            "session_key": ["s#1", "s#1", "s#2"],
            "as_of": [T0, T0 + timedelta(seconds=30), T0],
        }
    )
    matched = skew.match_snapshots(logged, snapshots, tolerance_seconds=1.0)
    assert dict(zip(matched["request_id"], matched["snapshot_key"])) == {"a": "s#1@1", "b": "s#1@2"}


# ---- live performance ---------------------------------------------------------------------------
def _scores(days: int, auc_breaks_from: int | None = None, rows_per_day=400, seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for d in range(days):
        y = rng.random(rows_per_day) < 0.2
        informative = auc_breaks_from is None or d < auc_breaks_from
        p = np.clip((0.35 * y + rng.random(rows_per_day) * 0.5) if informative else rng.random(rows_per_day), 0, 1)
        parts.append(
            pl.DataFrame(
                {
                    "scored_at": [T0 + timedelta(days=d, minutes=i) for i in range(rows_per_day)],
                    "calibrated_score": p,
                    "purchased": y.astype(np.int8),
                    "model_version": ["3"] * rows_per_day,
                    "device": rng.choice(["mobile", "desktop"], rows_per_day),
                }
            )
        )
    return pl.concat(parts)


def test_live_performance_passes_while_the_model_holds_up():
    result = performance.live_performance(_scores(5), 0, {"3": 0.85})
    assert not result.failed
    assert all(d.evaluable and d.roc_auc > 0.8 for d in result.days)
    assert set(result.days[0].slices) == {"mobile", "desktop"}
    assert result.days[0].reliability and result.summary()["days_evaluated"] == 5.0


def test_live_performance_fails_on_two_consecutive_degraded_days():
    result = performance.live_performance(_scores(5, auc_breaks_from=3), 0, {"3": 0.85})
    assert [d.degraded for d in result.days] == [False, False, False, True, True]
    assert result.failed and result.degraded_run() == [date(2026, 10, 4), date(2026, 10, 5)]


def test_one_degraded_day_or_two_apart_do_not_fail_the_check():
    one = performance.live_performance(_scores(5, auc_breaks_from=4), 0, {"3": 0.85})
    assert sum(d.degraded for d in one.days) == 1 and not one.failed
    scores = _scores(5, auc_breaks_from=3).filter(pl.col("scored_at") < T0 + timedelta(days=4))
    gap = pl.concat([scores, _scores(6, auc_breaks_from=5).filter(pl.col("scored_at") >= T0 + timedelta(days=5))])
    apart = performance.live_performance(gap.filter(pl.col("scored_at").dt.day() != 5), 0, {"3": 0.85})
    assert not apart.failed


def test_small_days_are_not_evaluated_and_labels_come_from_the_sessions():
    scores = pl.DataFrame(
        {
            "session_key": ["a#1", "b#1", "c#1"],
            "scored_at": [T0] * 3,
            "calibrated_score": [0.9, 0.1, 0.5],
            "model_version": ["3"] * 3,
        }
    )
    sessions = pl.DataFrame({"session_key": ["a#1", "b#1"], "purchased": [True, False]})
    labelled, unlabelled = performance.label(scores, sessions)
    assert labelled.height == 2 and unlabelled == 1
    result = performance.live_performance(labelled, unlabelled, {"3": 0.85})
    assert not result.days[0].evaluable and not result.failed
