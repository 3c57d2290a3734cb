"""Pure pieces of the purchase-intent work: temporal split, discount policy, metrics."""

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from hn_assets.models.metrics import bootstrap_ci, expected_calibration_error, lift_by_decile, summary
from hn_assets.models.policy import expected_gain, should_offer
from hn_assets.models.split import TemporalSplit, assign, choose_boundaries

T0 = datetime(2026, 9, 1, tzinfo=UTC)


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
    out = assign(frame, split)
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
    assert {"train", "valid", "test"} == set(assign(frame, split)["split"].unique())


def test_a_session_crossing_a_boundary_is_dropped():
    frame = pl.DataFrame(
        {"session_key": ["a", "a", "b"], "event_timestamp": [T0, T0 + timedelta(minutes=20), T0 + timedelta(hours=5)]}
    )
    split = TemporalSplit(
        valid_start=T0 + timedelta(minutes=10), test_start=T0 + timedelta(hours=4), gap=timedelta(minutes=30)
    )
    assert assign(frame, split)["session_key"].to_list() == ["b"]


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


from hn_assets.models.gate import decide  # noqa: E402

GOOD = {"roc_auc": 0.88, "brier": 0.047}
BASELINES = {
    "rule_cart_add": {"roc_auc": 0.71, "brier": 0.056},
    "logistic_regression": {"roc_auc": 0.85, "brier": 0.049},
}


def test_gate_accepts_a_better_challenger_and_refuses_a_worse_one():
    champion = {"roc_auc": 0.86, "brier": 0.048}
    assert decide(GOOD, champion, BASELINES, [], True).promote
    worse = {"roc_auc": 0.84, "brier": 0.050}
    decision = decide(worse, champion, BASELINES, [], True)
    assert not decision.promote and any("below champion" in r for r in decision.reasons)
    assert not decide({"roc_auc": 0.862, "brier": 0.060}, champion, BASELINES, [], True).promote  # worse Brier
    assert not decide(GOOD, champion, BASELINES, ["channel=email"], True).promote
    assert not decide(GOOD, champion, BASELINES, [], False).promote


def test_first_model_must_beat_the_baselines():
    assert decide(GOOD, None, BASELINES, [], True).promote
    assert not decide({"roc_auc": 0.80, "brier": 0.05}, None, BASELINES, [], True).promote
