"""The retrain trigger and the alert sensors on Dagster's real instance: report materialisations
are recorded in the instance's event log, the sensors are evaluated with `build_sensor_context`, and
alerts are POSTed to a local HTTP receiver the test starts."""

import json

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType
from dagster._core.storage.dagster_run import DagsterRun

from hn_assets.defs.automation import (
    RetrainingResource,
    failed_check_alerts,
    purchase_intent_retrain_trigger,
    run_failure_alerts,
    training_job,
)
from hn_assets.defs.monitoring.assets import CHAMPION, FEATURE_DRIFT, LIVE_PERFORMANCE, PREDICTION_DRIFT
from hn_assets.defs.resources import AlertSinkResource
from tests.unit.test_monitoring_alerts import Receiver

pytestmark = pytest.mark.integration


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def receiver():
    with Receiver() as receiver:
        yield receiver


def _report(instance, key: dg.AssetKey, retrain: bool, version: str, **figures):
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=key,
            metadata={
                "retrain_recommended": retrain,
                "alert_reasons": "PSI cart_adds_so_far = 0.41 >= 0.25" if retrain else "",
                **figures,
            },
            tags={"dagster/data_version": version},
        )
    )


def _tick(sensor, instance, cursor=None, url=None):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"alerts": AlertSinkResource(webhook_url=url), "retraining": RetrainingResource()},
    )
    return sensor.evaluate_tick(context)


def test_a_drifted_report_requests_exactly_one_training_run_with_its_figures(instance, receiver):
    _report(
        instance,
        FEATURE_DRIFT,
        True,
        "abc123",
        drifted_share=0.6,
        max_psi=0.41,
        drifted_features="device, cart_adds_so_far",
    )
    tick = _tick(purchase_intent_retrain_trigger, instance, url=receiver.url)
    (request,) = tick.run_requests
    assert request.run_key == "retrain|feature_drift_report@abc123"
    assert request.tags["hn/trigger"] == "drift"
    assert request.tags["hn/trigger_reports"] == "feature_drift_report@abc123"
    assert request.tags["hn/drifted_share"] == "0.6000" and request.tags["hn/max_psi"] == "0.4100"
    assert request.tags["hn/drifted_features"] == "device, cart_adds_so_far"
    assert "PSI cart_adds_so_far" in request.tags["hn/reasons"]
    assert purchase_intent_retrain_trigger.job_name == training_job.name
    assert request.run_config == {"ops": {"purchase_intent_training_set": {"config": {"window_weeks": 4}}}}
    assert request.tags["hn/window_weeks"] == "4"
    (alert,) = receiver.received
    assert alert["body"]["alert"] == "retrain_requested" and alert["body"]["run_key"] == request.run_key

    again = _tick(purchase_intent_retrain_trigger, instance, cursor=tick.cursor)
    assert again.run_requests == [] and "no new report" in again.skip_message
    # the same report content materialised once more (same data version): still nothing
    _report(instance, FEATURE_DRIFT, True, "abc123", drifted_share=0.6)
    assert _tick(purchase_intent_retrain_trigger, instance, cursor=again.cursor).run_requests == []


def test_no_drift_requests_nothing(instance):
    _report(instance, FEATURE_DRIFT, False, "v1", drifted_share=0.1)
    _report(instance, PREDICTION_DRIFT, False, "v1", score_psi=0.02)
    tick = _tick(purchase_intent_retrain_trigger, instance)
    assert tick.run_requests == [] and tick.skip_message == "no new report recommends retraining"
    assert _tick(purchase_intent_retrain_trigger, instance).run_requests == []  # nor without a cursor


def test_reports_firing_together_request_one_run_not_a_storm(instance):
    _report(instance, FEATURE_DRIFT, True, "f1", drifted_share=0.7)
    _report(instance, PREDICTION_DRIFT, True, "p1", score_psi=0.3)
    _report(instance, LIVE_PERFORMANCE, True, "l1", live_roc_auc=0.61, consecutive_days_degraded=2.0)
    (request,) = _tick(purchase_intent_retrain_trigger, instance).run_requests
    assert request.tags["hn/trigger"] == "drift+performance"
    assert (
        request.run_key
        == "retrain|feature_drift_report@f1|prediction_drift_report@p1|purchase_intent_live_performance@l1"
    )
    assert request.tags["hn/live_roc_auc"] == "0.6100"


def test_a_new_report_version_while_training_is_in_flight_is_absorbed(instance):
    first = _tick(purchase_intent_retrain_trigger, instance)
    instance.add_run(DagsterRun(job_name=training_job.name, run_id="inflight1", status=dg.DagsterRunStatus.STARTED))
    _report(instance, FEATURE_DRIFT, True, "f2", drifted_share=0.8)
    tick = _tick(purchase_intent_retrain_trigger, instance, cursor=first.cursor)
    assert tick.run_requests == [] and "inflight1 is in flight" in tick.skip_message
    # once it has finished, the same report is not acted on again
    assert _tick(purchase_intent_retrain_trigger, instance, cursor=tick.cursor).run_requests == []


def test_a_report_older_than_the_current_champion_is_not_acted_on(instance):
    _report(instance, FEATURE_DRIFT, True, "f3", drifted_share=0.8)
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=CHAMPION))
    assert _tick(purchase_intent_retrain_trigger, instance).run_requests == []
    _report(instance, FEATURE_DRIFT, True, "f4", drifted_share=0.8)  # against the new champion
    (request,) = _tick(purchase_intent_retrain_trigger, instance).run_requests
    assert request.run_key == "retrain|feature_drift_report@f4"


def test_the_trigger_runs_the_training_chain_and_the_bento_but_not_the_reports():
    from hn_assets.definitions import defs

    job = defs().resolve_job_def(training_job.name)
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"purchase_intent_training_set", "purchase_intent_model", "purchase_intent_champion"} <= selected
    graph = defs().resolve_asset_graph()
    if dg.AssetKey("purchase_intent_bento") in graph.get_all_asset_keys():
        assert "purchase_intent_bento" in selected
    assert not selected & {"feature_drift_report", "prediction_drift_report", "purchase_intent_live_performance"}
    # the trigger's run config is valid for the job it targets
    assert dg.validate_run_config(job, RetrainingResource().run_config())
    schedules = {s.name: s for s in defs().schedules}
    assert schedules["daily_batch_0200_utc"].cron_schedule == "0 2 * * *"
    assert schedules["purchase_intent_every_14_days_0400_utc"].job_name == training_job.name
    assert schedules["monitoring_daily_0330_utc"].execution_timezone == "UTC"


# ---- alerts ------------------------------------------------------------------------------------
@dg.asset
def watched() -> None:
    return None


@dg.asset_check(asset=watched)
def no_feature_drift() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={"drifted_share": 0.7})


@dg.asset_check(asset=watched)
def always_fine() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def _status_context(sensor_name: str, instance, run_id: str, event_type, url: str):
    event = next(
        e.dagster_event
        for e in instance.all_logs(run_id)
        if e.dagster_event and e.dagster_event.event_type == event_type
    )
    return dg.build_run_status_sensor_context(
        sensor_name=sensor_name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run_id),
        resources={"alerts": AlertSinkResource(webhook_url=url), "retraining": RetrainingResource()},
    )


def test_failed_checks_are_alerted(instance, receiver):
    result = dg.materialize([watched, no_feature_drift, always_fine], instance=instance)
    assert result.success  # a failed non-blocking check leaves the run green: only the alert tells
    failed_check_alerts(
        _status_context("failed_check_alerts", instance, result.run_id, DagsterEventType.RUN_SUCCESS, receiver.url)
    )
    (alert,) = [r["body"] for r in receiver.received]
    assert alert["alert"] == "drift" and alert["severity"] == "warning"
    assert alert["check"] == "no_feature_drift" and alert["asset"] == "watched"
    assert alert["metadata"]["drifted_share"] == 0.7 and alert["run_id"] == result.run_id


@dg.op
def boom():
    raise RuntimeError("the training set is empty")


@dg.job
def failing_job():
    boom()


def test_a_failed_run_is_alerted(instance, receiver):
    result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    context = _status_context(
        "run_failure_alerts", instance, result.run_id, DagsterEventType.RUN_FAILURE, receiver.url
    ).for_run_failure()
    run_failure_alerts(context)
    (alert,) = [r["body"] for r in receiver.received]
    assert alert["alert"] == "run_failure" and alert["severity"] == "error"
    assert alert["run_id"] == result.run_id and alert["job"] == "failing_job"
    assert json.dumps(alert)  # plain JSON throughout


def test_the_14_day_schedule_runs_on_even_weeks_with_the_sliding_window():
    from datetime import UTC, datetime

    from hn_assets.defs.automation import fortnightly_training_schedule

    def tick(day: str):
        context = dg.build_schedule_context(
            scheduled_execution_time=datetime.fromisoformat(f"{day}T04:00:00").replace(tzinfo=UTC),
            resources={"retraining": RetrainingResource(window_weeks=6)},
        )
        return fortnightly_training_schedule.evaluate_tick(context)

    (request,) = tick("2026-12-21").run_requests  # an even week from 2026-01-05
    assert request.tags["hn/trigger"] == "schedule_14_days" and request.tags["hn/window_weeks"] == "6"
    assert request.run_config["ops"]["purchase_intent_training_set"]["config"]["window_weeks"] == 6
    assert tick("2026-12-28").run_requests == []
    assert len(tick("2027-01-04").run_requests) == 1
