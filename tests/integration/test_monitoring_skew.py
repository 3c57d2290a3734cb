"""`training_serving_skew_report` through its real plumbing: gold Parquet marts, the Feast repo
applied to a real registry, the point-in-time join of the training set, a registered champion and a
Delta inference log. Vectors logged as the training rows give zero mismatches; a live feature the
service computes differently (seconds in milliseconds for a fifth of the scores) fires the check."""

import json
from datetime import timedelta

import dagster as dg
import numpy as np
import polars as pl
import pytest

from hn_assets.defs.monitoring.assets import SKEW, training_serving_skew_report
from tests.integration.test_monitoring_assets import FEATURES, T0, _register_champion, _resources

pytestmark = pytest.mark.integration

SESSION_COLUMNS = {
    "events_so_far": pl.Int64,
    "page_views_so_far": pl.Int64,
    "product_views_so_far": pl.Int64,
    "distinct_products_so_far": pl.Int64,
    "cart_adds_so_far": pl.Int64,
    "cart_removes_so_far": pl.Int64,
    "searches_so_far": pl.Int64,
}


def _gold(home, rng, n=120):
    """fct_session_snapshots, user_features and product_features as dbt exports them."""
    as_of = [T0 + timedelta(minutes=7 * i) for i in range(n)]
    snapshots = pl.DataFrame(
        {
            "snapshot_key": [f"v{i}#1@{i % 5}" for i in range(n)],
            "session_key": [f"v{i}#1" for i in range(n)],
            "user_id": [f"u{i % 7}" if i % 3 else None for i in range(n)],
            "last_product_id": [f"p{i % 4}" for i in range(n)],
            "as_of": as_of,
            "purchased": rng.random(n) < 0.2,
            **{c: rng.poisson(2, n).astype(np.int64) for c in SESSION_COLUMNS},
            "seconds_since_start": np.round(rng.exponential(200, n), 3),
            "local_hour": rng.integers(0, 24, n).astype(np.int64),
            "is_weekend": rng.random(n) < 0.3,
            "device": rng.choice(["mobile", "desktop"], n),
            "channel": rng.choice(["organic", "paid_search"], n),
        }
    )
    users = pl.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(7)],
            "event_timestamp": [T0 - timedelta(days=3)] * 7,
            "lifetime_purchase_count": np.arange(7, dtype=np.int64),
            "avg_order_value_90d": np.linspace(100, 900, 7),
            "days_since_last_purchase": np.arange(7, dtype=np.int64),
            "preferred_category": ["laptop"] * 7,
            "sessions_last_30d": np.arange(7, dtype=np.int64) + 1,
            "last_purchase_at": [T0 - timedelta(days=10)] * 7,
        }
    )
    products = pl.DataFrame(
        {
            "product_id": [f"p{i}" for i in range(4)],
            "event_timestamp": [T0 - timedelta(hours=12)] * 4,
            **{c: np.arange(4, dtype=np.int64) for c in ("views_7d", "views_30d", "cart_adds_7d", "purchases_7d")},
            "purchases_30d": np.arange(4, dtype=np.int64),
            "view_to_purchase_rate_30d": np.linspace(0.01, 0.04, 4),
            "avg_selling_price_7d": np.linspace(500, 1500, 4),
            "stock_level": np.arange(4, dtype=np.int64) * 10,
            "list_price": np.linspace(600, 1600, 4),
            "competitor_price_gap": np.linspace(-20, 20, 4),
        }
    )
    for mart, frame in (("fct_session_snapshots", snapshots), ("user_features", users), ("product_features", products)):
        folder = home / "lake" / "gold" / mart
        folder.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(folder / "data_0.parquet")
    return snapshots


def _log(home, snapshots, version: str, skewed_every: int | None):
    rows = []
    for i, r in enumerate(snapshots.iter_rows(named=True)):
        vector = {f: r[f] for f in FEATURES}
        if skewed_every and i % skewed_every == 0:
            vector["seconds_since_start"] = r["seconds_since_start"] * 1000  # the deliberate bug
        rows.append(
            {
                "request_id": f"req-{i}",
                "scored_at": r["as_of"],
                "session_key": r["session_key"],
                "user_id": r["user_id"],
                "personalization_consent": True,
                "model_version": version,
                "fallback": False,
                "feature_groups": "session,user_history,product_signals",
                "features": json.dumps(vector),
                "raw_score": 0.2,
                "calibrated_score": 0.2,
                "decision": "no_discount",
                "device": r["device"],
                "_ingested_at": T0 + timedelta(days=1),
            }
        )
    pl.DataFrame(rows).write_delta(str(home / "lake" / "bronze" / "bronze_inference_log"), mode="overwrite")


@pytest.fixture
def store(hn_home):
    from hn_assets.defs.resources import FeatureStoreResource
    from hn_assets.features.store import apply

    rng = np.random.default_rng(5)
    version, _ = _register_champion(hn_home, rng)
    snapshots = _gold(hn_home, rng)
    apply(FeatureStoreResource().store())
    return hn_home, snapshots, version


def _report(instance):
    result = dg.materialize([training_serving_skew_report], instance=instance, resources=_resources())
    assert result.success
    (event,) = result.get_asset_materialization_events()
    assert event.asset_key == SKEW
    (check,) = result.get_asset_check_evaluations()
    return {k: v.value for k, v in event.materialization.metadata.items()}, check


def test_vectors_logged_as_the_training_rows_show_no_skew(store):
    home, snapshots, version = store
    _log(home, snapshots, version, skewed_every=None)
    with dg.instance_for_test() as instance:
        metadata, check = _report(instance)
    assert metadata["rows_matched"] == float(snapshots.height) and metadata["rows_unmatched"] == 0.0
    assert metadata["row_mismatch_share"] == 0.0 and metadata["skewed_features"] == ""
    assert check.passed
    assert metadata["report_html"].endswith("report.html")


def test_a_live_feature_computed_differently_fires_the_check(store):
    home, snapshots, version = store
    _log(home, snapshots, version, skewed_every=5)
    with dg.instance_for_test() as instance:
        metadata, check = _report(instance)
    assert metadata["skewed_features"] == "seconds_since_start"
    assert metadata["mismatch_share/seconds_since_start"] == pytest.approx(0.2)
    assert metadata["mismatch_share/cart_adds_so_far"] == 0.0
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
