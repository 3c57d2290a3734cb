"""The monitoring assets on a real Dagster instance, a real MLflow registry with a registered
champion (a logistic baseline logged as the chain logs it) and a real Delta `bronze_inference_log`:
no champion / no traffic degrade to an observation; drifted traffic with labels that stopped
following the score materialises reports that recommend retraining, and the trigger then requests
exactly one training run for them."""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import polars as pl
import pytest

from hn_assets.defs.automation import RetrainingResource, purchase_intent_retrain_trigger
from hn_assets.defs.monitoring.assets import (
    FEATURE_DRIFT,
    LIVE_PERFORMANCE,
    PREDICTION_DRIFT,
    SKEW,
    feature_drift_report,
    prediction_drift_report,
    purchase_intent_live_performance,
    training_serving_skew_report,
)
from hn_assets.defs.resources import (
    AlertSinkResource,
    FeatureStoreResource,
    LakehouseResource,
    ModelRegistryResource,
    ReportStoreResource,
    WarehouseResource,
)

pytestmark = pytest.mark.integration

FEATURES = ["events_so_far", "product_views_so_far", "cart_adds_so_far", "searches_so_far", "seconds_since_start"]
T0 = datetime(2026, 10, 1, tzinfo=UTC)
ASSETS = [feature_drift_report, prediction_drift_report, purchase_intent_live_performance]


def _sessions(rng, n: int, prefix: str, start: datetime, days: int, shift: float = 0.0, informative: bool = True):
    cart = rng.poisson(0.6 + shift, n)
    frame = pl.DataFrame(
        {
            "session_key": [f"{prefix}{i}#1" for i in range(n)],
            "events_so_far": (rng.poisson(6 * (1 + shift), n) + cart + 1).astype(np.int64),
            "product_views_so_far": rng.poisson(3 * (1 + shift), n).astype(np.int64),
            "cart_adds_so_far": cart.astype(np.int64),
            "searches_so_far": rng.poisson(1, n).astype(np.int64),
            "seconds_since_start": np.round(rng.exponential(240 * (1 + shift), n), 3),
            "event_timestamp": [start + timedelta(minutes=int(m)) for m in rng.integers(0, days * 1440, n)],
        }
    )
    propensity = 1 / (1 + np.exp(-(-2.2 + 1.4 * frame["cart_adds_so_far"].to_numpy())))
    bought = rng.random(n) < (propensity if informative else np.full(n, propensity.mean()))
    return frame.with_columns(
        pl.Series("purchased", bought),
        pl.col("session_key").alias("snapshot_key"),
        pl.lit(None, pl.String).alias("user_id"),
        pl.lit(None, pl.String).alias("product_id"),
    )


def _register_champion(home, rng) -> str:
    import mlflow
    import mlflow.sklearn
    from sklearn.metrics import roc_auc_score

    from hn_assets.models.registry import (
        EXPERIMENT,
        PIP_REQUIREMENTS,
        SPLIT_ARTIFACT,
        TRUSTED_TYPES,
        ModelRegistry,
        ensure_experiment,
        log_frame,
        signature,
    )
    from hn_assets.models.training import logistic_baseline, to_pandas
    from hn_assets.settings import get_settings

    settings = get_settings()
    frame = _sessions(rng, 3000, "t", T0 - timedelta(days=40), 30)
    path = home / "lake" / "training_sets" / "purchase_intent" / "v1" / "data.parquet"
    path.parent.mkdir(parents=True)
    frame.write_parquet(path)
    train = frame.filter(pl.col("event_timestamp") < T0 - timedelta(days=18))
    candidate = logistic_baseline(to_pandas(train, FEATURES), train["purchased"].cast(pl.Int8).to_numpy())
    uri = settings.mlflow_tracking_uri
    ensure_experiment(uri, EXPERIMENT, settings.mlflow_dir / "artifacts")
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run() as run:
        mlflow.log_params({"training_set_path": str(path), "features": ",".join(FEATURES)})
        test = frame.filter(pl.col("event_timestamp") >= T0 - timedelta(days=18))
        auc = roc_auc_score(test["purchased"].to_numpy(), candidate.predict(to_pandas(test, FEATURES)))
        mlflow.log_metric("test_roc_auc", float(auc))
        sides = frame.select(
            "session_key",
            pl.when(pl.col("event_timestamp") < T0 - timedelta(days=18))
            .then(pl.lit("train"))
            .otherwise(pl.lit("test"))
            .alias("split"),
        )
        log_frame(sides, SPLIT_ARTIFACT)
        # As registry.log_candidate logs it, plus the imputer's numpy dtype (the chain registers boosters).
        model_uri = mlflow.sklearn.log_model(
            candidate.estimator,
            name="model",
            signature=signature(candidate),
            input_example=to_pandas(train.head(5), FEATURES),
            pip_requirements=PIP_REQUIREMENTS,
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=[*TRUSTED_TYPES, "numpy.dtype"],
        ).model_uri
    mlflow.end_run()
    version = ModelRegistry(uri).register(model_uri, "champion", {"run_id": run.info.run_id})
    return version, candidate


def _land_traffic(home, rng, candidate, version: str, drifted: bool):
    """Seven days of scores in bronze_inference_log, and the sessions' outcomes in gold."""
    from hn_assets.models.training import to_pandas

    live = _sessions(rng, 4200, "l", T0, 7, shift=1.5 if drifted else 0.0, informative=not drifted)
    scores = candidate.predict(to_pandas(live, FEATURES))
    log = live.select(
        pl.format("req-{}", pl.int_range(pl.len())).alias("request_id"),
        pl.col("event_timestamp").alias("scored_at"),
        "session_key",
        pl.lit(None, pl.String).alias("user_id"),
        pl.lit(False).alias("personalization_consent"),
        pl.lit(version).alias("model_version"),
        pl.lit(False).alias("fallback"),
        pl.lit("session_activity").alias("feature_groups"),
        pl.Series("features", [json.dumps({f: r[f] for f in FEATURES}) for r in live.iter_rows(named=True)]),
        pl.Series("raw_score", scores),
        pl.Series("calibrated_score", scores),
        pl.lit("no_discount").alias("decision"),
        pl.lit("mobile").alias("device"),
        pl.lit(T0 + timedelta(days=8)).alias("_ingested_at"),
    )
    log.write_delta(str(home / "lake" / "bronze" / "bronze_inference_log"))
    gold = home / "lake" / "gold" / "fct_sessions"
    gold.mkdir(parents=True, exist_ok=True)
    # gold's columns the reports read: the label and the bot flag (no bots in this traffic)
    live.select("session_key", "purchased", pl.lit(False).alias("is_bot")).write_parquet(gold / "data_0.parquet")


def _resources():
    return {
        "lakehouse": LakehouseResource(),
        "warehouse": WarehouseResource(),
        "feature_store": FeatureStoreResource(),
        "model_registry": ModelRegistryResource(),
        "reports": ReportStoreResource(),
        "alerts": AlertSinkResource(),
    }


def _observations(result) -> dict:
    return {
        e.asset_key.to_user_string(): e.event_specific_data.asset_observation.metadata["status"].value
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    }


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def test_without_a_champion_or_traffic_the_reports_say_so_instead_of_failing(hn_home, instance):
    everything = [*ASSETS, training_serving_skew_report]
    result = dg.materialize(everything, instance=instance, resources=_resources())
    assert result.success and result.get_asset_materialization_events() == []
    seen = _observations(result)
    assert seen["feature_drift_report"].startswith("no champion yet")
    assert seen["purchase_intent_live_performance"] == "no live traffic in the window"

    _register_champion(hn_home, np.random.default_rng(0))
    result = dg.materialize(everything, instance=instance, resources=_resources())
    assert result.success and result.get_asset_materialization_events() == []
    assert set(_observations(result).values()) == {"no live traffic in the window"}
    tick = purchase_intent_retrain_trigger.evaluate_tick(
        dg.build_sensor_context(
            instance=instance, resources={"alerts": AlertSinkResource(), "retraining": RetrainingResource()}
        )
    )
    assert tick.run_requests == []


def test_drifted_traffic_recommends_retraining_once(hn_home, instance):
    rng = np.random.default_rng(1)
    version, candidate = _register_champion(hn_home, rng)
    _land_traffic(hn_home, rng, candidate, version, drifted=True)
    result = dg.materialize(ASSETS, instance=instance, resources=_resources())
    assert result.success
    metadata = {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}
    features = {k: v.value for k, v in metadata[FEATURE_DRIFT].items()}
    assert features["retrain_recommended"] is True and features["champion_version"] == version
    assert {"cart_adds_so_far", "seconds_since_start"} <= set(features["drifted_features"].split(", "))
    assert isinstance(features["drifted_share"], float) and features["psi/cart_adds_so_far"] > 0.25
    html = metadata[FEATURE_DRIFT]["report_html"].value
    assert (
        "/reports/monitoring/feature_drift_report/" in html and (hn_home / html.split(str(hn_home) + "/")[1]).exists()
    )
    predictions = {k: v.value for k, v in metadata[PREDICTION_DRIFT].items()}
    assert predictions["retrain_recommended"] is True and predictions["score_psi"] > 0.25
    performance = {k: v.value for k, v in metadata[LIVE_PERFORMANCE].items()}
    assert performance["retrain_recommended"] is True and performance["days_degraded"] >= 2
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {
        "no_feature_drift": False,
        "no_prediction_drift": False,
        "live_auc_within_5pct_of_champion": False,
    }

    context = dg.build_sensor_context(
        instance=instance, resources={"alerts": AlertSinkResource(), "retraining": RetrainingResource()}
    )
    tick = purchase_intent_retrain_trigger.evaluate_tick(context)
    (request,) = tick.run_requests
    assert request.tags["hn/trigger"] == "drift+performance"
    assert request.tags["hn/champion_version"] == version
    again = purchase_intent_retrain_trigger.evaluate_tick(
        dg.build_sensor_context(
            instance=instance,
            cursor=tick.cursor,
            resources={"alerts": AlertSinkResource(), "retraining": RetrainingResource()},
        )
    )
    assert again.run_requests == []


def test_the_same_world_raises_no_alarm(hn_home, instance):
    rng = np.random.default_rng(2)
    version, candidate = _register_champion(hn_home, rng)
    _land_traffic(hn_home, rng, candidate, version, drifted=False)
    result = dg.materialize(ASSETS, instance=instance, resources=_resources())
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert all(checks.values()), checks
    metadata = {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert metadata[FEATURE_DRIFT]["max_psi"].value < 0.25
    assert SKEW not in metadata
    tick = purchase_intent_retrain_trigger.evaluate_tick(
        dg.build_sensor_context(
            instance=instance, resources={"alerts": AlertSinkResource(), "retraining": RetrainingResource()}
        )
    )
    assert tick.run_requests == []
