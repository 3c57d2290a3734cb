"""The discount uplift (hn_assets/models/uplift.py) on randomised sessions with a known effect."""

import numpy as np
import polars as pl
import pytest

from hn_assets.models.uplift import (
    PolicyConfig,
    aipw,
    best_cutoff,
    evaluate_uplift,
    fit_uplift,
    qini,
    session_table,
    truth_check,
)


def _sessions(n: int = 24000, seed: int = 0, effect: float = 0.9):
    """Sessions as `session_table` builds them, plus the true p0/p1 (the simulator's kind of truth):
    the offer shifts the log-odds by `effect` times the visitor's price sensitivity, which shows in
    the channel (price-comparison visitors are sensitive)."""
    rng = np.random.default_rng(seed)
    channel = rng.choice(["direct", "email", "price_comparison", "tiktok_ads"], n)
    history = np.where(rng.random(n) < 0.5, rng.poisson(1.0, n), np.nan)
    sensitive = (channel == "price_comparison").astype(float)
    base = -3.0 + 0.5 * np.nan_to_num(np.minimum(history, 3)) + rng.normal(0, 0.3, n)
    p0 = 1 / (1 + np.exp(-base))
    p1 = 1 / (1 + np.exp(-(base + effect * (0.3 + 1.7 * sensitive))))
    treated = rng.random(n) < 0.10
    bought = rng.random(n) < np.where(treated, p1, p0)
    side = np.where(np.arange(n) < 0.6 * n, "train", np.where(np.arange(n) < 0.75 * n, "valid", "test"))
    table = pl.DataFrame(
        {
            "session_key": [f"s{i:06d}" for i in range(n)],
            "split": side,
            "purchased": bought.astype(np.int8),
            "device": rng.choice(["desktop", "mobile"], n),
            "channel": channel,
            "local_hour": rng.integers(0, 24, n).astype(float),
            "is_weekend": rng.random(n) < 0.3,
            "lifetime_purchase_count": history,
            "client_session_id": [f"cs-{i}" for i in range(n)],
            "country": rng.choice(["DE", "FR"], n),
            "treated": treated,
        }
    )
    truth = pl.DataFrame(
        {"client_session_id": table["client_session_id"], "is_bot": 0, "p_no_offer": p0, "p_offer": p1}
    )
    return table, truth


@pytest.fixture(scope="module")
def fitted():
    table, truth = _sessions()
    return fit_uplift(table), table, truth


def test_the_x_learner_recovers_the_average_effect_and_ranks_the_sensitive_first(fitted):
    model, table, truth = fitted
    test = table.filter(pl.col("split") == "test")
    check = truth_check(model, test, truth)
    assert check["matched_sessions"] == test.height
    assert check["truth_inside_interval"], check
    assert check["uplift_correlation"] > 0.5
    pred = model.predict(test)
    sensitive = (test["channel"] == "price_comparison").to_numpy()
    assert pred["tau"][sensitive].mean() > 2 * pred["tau"][~sensitive].mean()


def test_the_estimated_policy_earns_between_no_offers_and_the_policy_that_knew_the_truth(fitted):
    model, table, truth = fitted
    value = truth_check(model, table.filter(pl.col("split") == "test"), truth)["realised_value"]
    assert value["policy that knew the truth"] >= value["estimated policy"] > value["no offers"]
    assert value["estimated policy"] > value["offer to everyone"]


def test_data_only_judgement_qini_and_ipw(fitted):
    model, table, _ = fitted
    judged = evaluate_uplift(model, table.filter(pl.col("split") == "test"), rounds=50)
    assert judged["x_learner"]["qini"] > 0 and judged["x_learner"]["qini_ci"][0] < judged["x_learner"]["qini"]
    assert judged["ipw_value"]["no offers"] == 0.0
    assert judged["aipw"]["low"] < judged["aipw"]["estimate"] < judged["aipw"]["high"]


def test_the_cutoff_is_chosen_on_validation_and_can_be_everyone_or_no_one():
    """The depth of targeting follows the held-out randomised data: with a discount nobody's uplift
    pays for, offer to no one; with a free offer that helps everyone a lot, offer to everyone."""
    table, _ = _sessions(n=12000, seed=3, effect=3.0)
    never = fit_uplift(table, PolicyConfig(margin_share=0.01, discount_share=0.5))
    always = fit_uplift(table, PolicyConfig(discount_share=0.0))
    test = table.filter(pl.col("split") == "test")
    assert not never.offers(test).any()
    assert always.offers(test).mean() > 0.9


def test_the_cutoff_goes_only_as_deep_as_the_held_out_gains_pay():
    """Estimated gains all look positive, but held-out gains show only the top half pays: the
    textbook rule (offer where the estimate is positive) would offer to everyone."""
    estimated = np.linspace(10, 1, 100)
    realised = np.where(np.arange(100) < 50, 5.0, -3.0)
    cutoff = best_cutoff(estimated, realised)
    assert (estimated > cutoff).sum() == 50
    assert best_cutoff(estimated, -np.ones(100)) == np.inf and best_cutoff(estimated, np.ones(100)) == -np.inf


def test_qini_of_a_perfect_ranking_beats_a_reversed_one():
    rng = np.random.default_rng(1)
    tau = rng.uniform(0, 0.2, 20000)
    t = rng.random(tau.size) < 0.5
    y = (rng.random(tau.size) < 0.05 + t * tau).astype(int)
    assert qini(tau, t, y)["qini"] > 0 > qini(-tau, t, y)["qini"]


def test_aipw_with_a_useless_model_is_still_unbiased_under_randomisation():
    rng = np.random.default_rng(2)
    t = rng.random(200000) < 0.1
    y = (rng.random(t.size) < np.where(t, 0.08, 0.05)).astype(float)
    estimate = aipw(np.full(t.size, 0.5), np.full(t.size, 0.5), t, y, 0.1)
    assert estimate["low"] < 0.03 < estimate["high"]


def test_no_model_without_randomised_offers():
    table, _ = _sessions(n=3000)
    assert fit_uplift(table.with_columns(pl.lit(False).alias("treated"))) is None


def test_session_table_takes_pre_treatment_covariates_from_the_first_snapshot():
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 9, 1, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "session_key": ["a", "a", "b"],
            "event_timestamp": [t0 + timedelta(minutes=5), t0, t0],
            "split": ["train"] * 3,
            "purchased": [True, True, False],
            "local_hour": [10, 9, 20],
            "events_so_far": [2, 1, 1],
        }
    )
    sessions = pl.DataFrame({"session_key": ["a", "b"], "client_session_id": ["x", None], "country": ["DE", "FR"]})
    out = session_table(frame, sessions, pl.DataFrame({"session_key": ["b"]}))
    assert out["local_hour"].to_list() == [9, 20] and out["treated"].to_list() == [False, True]
    assert "events_so_far" not in out.columns  # in-session activity is affected by the offer itself
