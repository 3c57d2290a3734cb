"""Pure pieces of the purchase-intent work: temporal split, discount policy, metrics, bootstrap.

`synthetic_snapshots` (a known-answer snapshot table with every model input) is shared with the
other model test modules."""

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from hn_assets.contracts import CHANNELS, DEVICES
from hn_assets.models.metrics import (
    bootstrap,
    bootstrap_ci,
    expected_calibration_error,
    lift_by_decile,
    point_metrics,
    summary,
)
from hn_assets.models.policy import expected_gain, should_offer
from hn_assets.models.split import TemporalSplit, assign, choose_boundaries, split_with_both_classes

T0 = datetime(2026, 9, 1, tzinfo=UTC)


def synthetic_snapshots(sessions: int = 3000, seed: int = 0, days: int = 35, weekend_effect: float = 0.0):
    """Snapshot rows with every purchase-intent input and their sessions' spans. Purchase depends on
    a latent intent (seen through cart adds and views), purchase history and device; not on the
    weekend (unless `weekend_effect`). Returns (snapshots, sessions)."""
    rng = np.random.default_rng(seed)
    known = rng.random(sessions) < 0.55
    history = np.where(known, rng.poisson(1.0, sessions), np.nan)
    device, channel = rng.choice(list(DEVICES), sessions), rng.choice(list(CHANNELS), sessions)
    weekend = rng.random(sessions) < 2 / 7
    intent = rng.normal(0, 1, sessions)
    logit = -3.3 + 1.2 * intent + 0.5 * np.nan_to_num(np.minimum(history, 3)) + 0.3 * (device == "desktop")
    buy = rng.random(sessions) < 1 / (1 + np.exp(-(logit + weekend_effect * weekend)))
    rows, spans = [], []
    for s in range(sessions):
        start = T0 + timedelta(seconds=int(rng.integers(0, days * 86400)))
        n, carts, views = int(rng.integers(1, 8)) + 3 * int(buy[s]), 0, 0
        for k in range(n):
            views += int(rng.random() < 0.5 + 0.1 * (intent[s] > 0))
            carts += int(rng.random() < 0.04 + 0.2 * buy[s] + 0.05 * (intent[s] > 0))
            rows.append(
                {
                    "snapshot_key": f"s{s}@{k + 1}",
                    "session_key": f"s{s}",
                    "user_id": f"u{s % 700}" if known[s] else None,
                    "product_id": "p1",
                    "event_timestamp": start + timedelta(minutes=2 * k),
                    "purchased": bool(buy[s]),
                    "events_so_far": k + 1,
                    "page_views_so_far": k + 1 - views,
                    "product_views_so_far": views,
                    "distinct_products_so_far": min(views, 3),
                    "cart_adds_so_far": carts,
                    "cart_removes_so_far": 0,
                    "searches_so_far": 0,
                    "seconds_since_start": 120.0 * k,
                    "local_hour": int(rng.integers(0, 24)),
                    "is_weekend": bool(weekend[s]),
                    "device": device[s],
                    "channel": channel[s],
                    "lifetime_purchase_count": history[s],
                    "avg_order_value_90d": None,
                    "days_since_last_purchase": None,
                    "sessions_last_30d": float(rng.integers(1, 6)) if known[s] else None,
                    "views_7d": 10.0,
                    "purchases_30d": 1.0,
                    "view_to_purchase_rate_30d": 0.1,
                    "avg_selling_price_7d": 900.0,
                    "stock_level": float(rng.integers(0, 60)),
                    "competitor_price_gap": 0.0,
                    "list_price": 999.0,
                }
            )
        # The session ends after its last snapshot: checkout and purchase come later.
        end = start + timedelta(minutes=2 * (n - 1) + (25 if buy[s] else 1))
        spans.append({"session_key": f"s{s}", "session_start": start, "session_end": end})
    return pl.DataFrame(rows, infer_schema_length=None), pl.DataFrame(spans)


def _spans(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.group_by("session_key").agg(
        pl.col("event_timestamp").min().alias("session_start"), pl.col("event_timestamp").max().alias("session_end")
    )


def _snapshots(rng: np.random.Generator, sessions: int = 3000, days: int = 42) -> pl.DataFrame:
    rows = []
    for s in range(sessions):
        start = T0 + timedelta(seconds=int(rng.integers(0, days * 86400)))
        for k in range(int(rng.integers(1, 6))):
            rows.append({"session_key": f"v{s}#1", "event_timestamp": start + timedelta(minutes=int(7 * k))})
    return pl.DataFrame(rows)


def test_split_never_puts_a_session_on_two_sides_or_later_time_into_training():
    frame = _snapshots(np.random.default_rng(1))
    split = choose_boundaries(frame.group_by("session_key").agg(pl.col("event_timestamp").min())["event_timestamp"])
    assert split.test_start - split.valid_start == timedelta(weeks=1)  # weekly when >= 4 weeks of data
    out = assign(frame, split, _spans(frame))
    sides = out.group_by("session_key").agg(pl.col("split").n_unique())
    assert sides["split"].max() == 1
    train, valid, test = (out.filter(pl.col("split") == s) for s in ("train", "valid", "test"))
    assert train["event_timestamp"].max() < split.valid_start - split.gap
    assert valid["event_timestamp"].min() >= split.valid_start
    assert valid["event_timestamp"].max() < split.test_start - split.gap
    assert test["event_timestamp"].min() >= split.test_start
    assert min(train.height, valid.height, test.height) > 0


def test_split_of_a_few_hours_uses_time_quantiles():
    frame = _snapshots(np.random.default_rng(2), sessions=500, days=1)
    starts = frame.group_by("session_key").agg(pl.col("event_timestamp").min())["event_timestamp"]
    split = choose_boundaries(starts)
    assert split.valid_start < split.test_start
    assert {"train", "valid", "test"} == set(assign(frame, split, _spans(frame))["split"].unique())


def test_a_session_crossing_a_boundary_is_dropped():
    frame = pl.DataFrame(
        {"session_key": ["a", "a", "b"], "event_timestamp": [T0, T0 + timedelta(minutes=20), T0 + timedelta(hours=5)]}
    )
    split = TemporalSplit(
        valid_start=T0 + timedelta(minutes=10), test_start=T0 + timedelta(hours=4), gap=timedelta(minutes=30)
    )
    assert assign(frame, split, _spans(frame))["session_key"].to_list() == ["b"]


def test_a_session_is_placed_by_its_real_end_not_its_last_snapshot():
    """Session a's snapshots all precede the validation boundary, but its purchase (the real end,
    from fct_sessions) comes after it: it must not be trained on. Placed by snapshots it would be."""
    split = TemporalSplit(
        valid_start=T0 + timedelta(hours=1), test_start=T0 + timedelta(hours=5), gap=timedelta(minutes=30)
    )
    frame = pl.DataFrame({"session_key": ["a", "a", "b"], "event_timestamp": [T0, T0 + timedelta(minutes=10), T0]})
    real = pl.DataFrame(
        {
            "session_key": ["a", "b"],
            "session_start": [T0, T0],
            "session_end": [T0 + timedelta(minutes=50), T0 + timedelta(minutes=5)],
        }
    )
    assert set(assign(frame, split, _spans(frame))["session_key"]) == {"a", "b"}  # the old rule
    assert assign(frame, split, real)["session_key"].unique().to_list() == ["b"]


def test_split_reads_the_spans_in_any_time_zone_and_drops_unknown_sessions():
    frame, sessions = synthetic_snapshots(sessions=600, seed=3)
    naive = sessions.with_columns(pl.col("session_start", "session_end").dt.replace_time_zone(None))
    out, _ = split_with_both_classes(frame, "purchased", naive.filter(pl.col("session_key") != "s1"))
    assert "s1" not in set(out["session_key"]) and out["split"].n_unique() == 3


@pytest.mark.parametrize(
    ("p0", "p1", "margin", "discount", "gain"),
    [
        (0.10, 0.20, 100.0, 10.0, 8.0),  # 0.1 * 100 - 0.2 * 10
        (0.50, 0.55, 100.0, 20.0, -6.0),  # a likely buyer: the discount costs more than it wins
        (0.00, 0.00, 100.0, 10.0, 0.0),
    ],
)
def test_discount_policy_matches_hand_computed_cases(p0, p1, margin, discount, gain):
    assert expected_gain(p0, p1, margin, discount) == pytest.approx(gain)
    assert should_offer(p0, p1, margin, discount) is (gain > 0)


def test_discount_policy_refuses_nonsense():
    with pytest.raises(ValueError):
        expected_gain(1.2, 0.5, 10, 1)


def test_calibration_and_ranking_metrics():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20_000)
    y = (rng.uniform(0, 1, p.size) < p).astype(int)
    assert expected_calibration_error(y, p) < 0.02  # calibrated by construction
    assert expected_calibration_error(y, np.clip(p + 0.2, 0, 1)) > 0.1
    low, high = bootstrap_ci(lambda a, b: summary(a, b)["roc_auc"], y, p, rounds=50)
    assert low < summary(y, p)["roc_auc"] < high
    lift = lift_by_decile(y, p)
    assert lift[0] > 1.7 > 0.3 > lift[-1]


def test_weighted_metrics_equal_scikit_learn():
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    rng = np.random.default_rng(4)
    p = np.round(rng.uniform(0, 1, 5000), 2)  # ties
    y = (rng.uniform(0, 1, p.size) < p**2).astype(int)
    m = point_metrics(y, p)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))


def test_session_bootstrap_is_wider_than_the_row_bootstrap_on_correlated_snapshots():
    """Twenty snapshots per session share the session's score and label: a row bootstrap treats
    them as independent and its interval is far too narrow."""
    rng = np.random.default_rng(5)
    sessions = 400
    p_session = rng.uniform(0, 1, sessions)
    y_session = (rng.uniform(0, 1, sessions) < p_session).astype(int)
    key = np.repeat(np.arange(sessions), 20)
    y, p = y_session[key], np.clip(p_session[key] + rng.normal(0, 0.02, key.size), 0, 1)
    by_session = bootstrap(y, {"m": p}, key, rounds=200).models["overall"]["m"]["roc_auc"]
    by_row = bootstrap(y, {"m": p}, None, rounds=200).models["overall"]["m"]["roc_auc"]
    assert by_session.width > 3 * by_row.width


def test_paired_difference_is_narrower_than_the_unpaired_intervals_suggest():
    rng = np.random.default_rng(6)
    z = rng.normal(0, 1, 4000)
    y = (rng.uniform(0, 1, z.size) < 1 / (1 + np.exp(-(z - 1)))).astype(int)
    a, b = z + rng.normal(0, 0.3, z.size), z + rng.normal(0, 0.35, z.size)
    result = bootstrap(y, {"a": a, "b": b}, np.arange(z.size), pairs=[("a", "b")], rounds=200)
    diff = result.diffs["overall"][("a", "b")]["roc_auc"]
    each = result.models["overall"]
    assert diff.width < 0.6 * (each["a"]["roc_auc"].width + each["b"]["roc_auc"].width) / 2
    assert diff.point == pytest.approx(each["a"]["roc_auc"].point - each["b"]["roc_auc"].point)
