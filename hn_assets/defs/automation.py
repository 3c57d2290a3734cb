"""Jobs, schedules and sensors (docs/architecture.md and docs/monitoring.md, "Automation"). Jobs
select what they mean: the nightly batch keeps the online store fresh; the training chain retrains
every 14 days and whenever a monitoring report recommends it; the monitoring job builds the drift,
skew and live-performance reports after the batch; alerts go to the alert sink."""

import hashlib
import json
from datetime import date

import dagster as dg

from hn_assets.contracts import FEEDS
from hn_assets.defs.ingest.assets import QUARANTINE_KEY, bronze_key
from hn_assets.defs.monitoring.assets import CHAMPION, REASONS_KEY, RETRAIN_KEY, TRIGGER_REPORTS
from hn_assets.defs.resources import AlertSinkResource, LakehouseResource
from hn_assets.ingest.landing import discover

DATA_LAYERS = dg.AssetSelection.groups("bronze", "silver", "gold", "features")
MONITORING = dg.AssetSelection.groups("monitoring")
# The training chain: the point-in-time training set and everything built from it (model, uplift,
# evaluation, champion, the champion's Bento), not the monitoring reports that read the champion:
# a retraining must not rebuild the reports that trigger it.
TRAINING_CHAIN = dg.AssetSelection.assets("purchase_intent_training_set").downstream() - MONITORING

# The nightly batch: landing -> bronze -> silver -> gold -> online features; not the weekly training set.
daily_batch_job = dg.define_asset_job(
    "daily_batch",
    selection=DATA_LAYERS - TRAINING_CHAIN,
    description="Landing -> bronze -> silver -> gold -> online features, the store's nightly batch.",
)

# The demo's main job: everything from landing to a promoted champion.
end_to_end_job = dg.define_asset_job(
    "end_to_end",
    selection=DATA_LAYERS | TRAINING_CHAIN,
    description="The whole platform: landing -> bronze -> silver -> gold -> features -> models -> champion.",
)

daily_batch_schedule = dg.ScheduleDefinition(
    name="daily_batch_0200_utc",
    job=daily_batch_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

training_job = dg.define_asset_job(
    "purchase_intent_training",
    selection=TRAINING_CHAIN,
    description="Train, evaluate and (behind the promotion gate) promote the purchase-intent model.",
)


class RetrainingResource(dg.ConfigurableResource):
    """How a requested retraining runs (the drift/performance trigger and the 14-day schedule): the
    training set's sliding window of recent weeks (TrainingSetConfig.window_weeks), so the retrained
    model learns the world as it is now; None trains on every snapshot."""

    window_weeks: int | None = 4

    def run_config(self) -> dict:
        if self.window_weeks is None:
            return {}
        return {"ops": {"purchase_intent_training_set": {"config": {"window_weeks": self.window_weeks}}}}

    def tags(self) -> dict:
        return {"hn/window_weeks": str(self.window_weeks or "all")}


# Every 14 days regardless of drift. Cron cannot count fortnights (`*/14` in the day-of-month field
# restarts each month), so the schedule ticks every Monday 04:00 UTC and runs on the even weeks
# counted from a fixed Monday: exactly 14 days apart, across month and year ends.
FORTNIGHT_EPOCH = date(2026, 1, 5)  # a Monday


def is_retraining_week(day: date) -> bool:
    return ((day - FORTNIGHT_EPOCH).days // 7) % 2 == 0


@dg.schedule(
    name="purchase_intent_every_14_days_0400_utc",
    job=training_job,
    cron_schedule="0 4 * * 1",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retrains purchase_intent every 14 days (even Mondays from 2026-01-05, 04:00 UTC), "
    "whether or not drift was detected.",
)
def fortnightly_training_schedule(context: dg.ScheduleEvaluationContext, retraining: RetrainingResource):
    day = context.scheduled_execution_time.date()
    if not is_retraining_week(day):
        return dg.SkipReason(f"{day}: an off week of the 14-day retraining cycle")
    return dg.RunRequest(
        run_config=retraining.run_config(), tags={"hn/trigger": "schedule_14_days", **retraining.tags()}
    )


monitoring_job = dg.define_asset_job(
    "monitoring",
    selection=MONITORING,
    description="Drift (features, predictions), training-serving skew and live performance over the "
    "recent window of the inference log.",
)

# After the batch (due 03:00 UTC) has brought the inference log and the purchases into bronze and gold.
monitoring_schedule = dg.ScheduleDefinition(
    name="monitoring_daily_0330_utc",
    job=monitoring_job,
    cron_schedule="30 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

bronze_job = dg.define_asset_job(
    "bronze_ingest_job",
    selection=dg.AssetSelection.groups("bronze"),
    description="Ingest pending landing files into bronze.",
)

# Declarative automation (e.g. feast_registry re-applied when its code version changes) acts only
# while this sensor runs; like every schedule and sensor here it starts stopped.
automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_conditions",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Evaluates the assets' automation conditions (feast_registry: code version changed).",
)


FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def _still_claimed(instance: dg.DagsterInstance, run_key: str) -> bool:
    """A run requested under `run_key` that has not finished (or not been launched yet)."""
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1)
    return not runs or runs[0].status not in FINISHED


@dg.sensor(
    job=bronze_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Requests a bronze run for the landing files no requested run has claimed yet.",
)
def landing_files_sensor(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
    """Each request claims its files (kept in the cursor) until its run finishes: a file that is
    still in flight is never requested twice, and a file whose run failed is requested again."""
    state = json.loads(context.cursor) if context.cursor else {"generation": 0, "claims": {}}
    claims = {key: files for key, files in state["claims"].items() if _still_claimed(context.instance, key)}
    claimed = {f for files in claims.values() for f in files}
    pending = {feed: [f for f in discover(lakehouse.landing, feed) if f.relative not in claimed] for feed in FEEDS}
    pending = {feed: files for feed, files in pending.items() if files}
    if not pending:
        context.update_cursor(json.dumps({**state, "claims": claims}))
        return dg.SkipReason("no unclaimed landing files waiting")
    relatives = sorted(f.relative for files in pending.values() for f in files)
    generation = state["generation"] + 1
    run_key = hashlib.sha256(f"{generation}|{'|'.join(relatives)}".encode()).hexdigest()[:32]
    context.update_cursor(json.dumps({"generation": generation, "claims": {**claims, run_key: relatives}}))
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=[bronze_key(feed) for feed in pending] + [QUARANTINE_KEY],
        tags={"hn/trigger": "landing_files", "hn/feeds": ",".join(sorted(pending))},
    )


# ---- the drift / performance trigger ------------------------------------------------------------
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
# Report figures copied onto the run as tags (hn/<name>), so the UI shows why it was requested.
TRIGGER_FIGURES = (
    "drifted_share",
    "max_psi",
    "drifted_features",
    "psi_alerts",
    "score_psi",
    "mean_score_live",
    "live_roc_auc",
    "latest_day_roc_auc",
    "consecutive_days_degraded",
    "champion_version",
    "window_end",
)


def _value(entry):
    return getattr(entry, "value", entry)


def _tag(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)[:200]


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey):
    records = instance.fetch_materializations(key, limit=1).records
    return records[0] if records else None


def _report_version(record) -> str:
    """The report's data version (its content), else the materialisation's storage id."""
    tags = record.asset_materialization.tags or {}
    return tags.get("dagster/data_version") or str(record.storage_id)


@dg.sensor(
    job=training_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Requests one run of the training chain (training set -> candidates -> evaluation -> "
    "promotion gate -> Bento) when a new version of a drift or live-performance report recommends "
    "retraining; run key = the report versions, figures as run tags; never while a training run is in "
    "flight, never for a report older than the current champion.",
)
def purchase_intent_retrain_trigger(
    context: dg.SensorEvaluationContext, alerts: AlertSinkResource, retraining: RetrainingResource
):
    """Cursor: per report, the storage id and data version of the newest materialisation already
    considered. Each report version is looked at once; the newest supersedes older ones."""
    instance = context.instance
    state = json.loads(context.cursor) if context.cursor else {}
    champion = _latest(instance, CHAMPION)
    fired, considered = [], {}
    for key in TRIGGER_REPORTS:
        name, record = key.to_user_string(), _latest(instance, key)
        if record is None:
            continue
        version, last = _report_version(record), state.get(name, {})
        if record.storage_id <= last.get("storage_id", 0) or version == last.get("version"):
            continue
        considered[name] = {"storage_id": record.storage_id, "version": version}
        metadata = {k: _value(v) for k, v in record.asset_materialization.metadata.items()}
        if not metadata.get(RETRAIN_KEY):
            continue
        if champion is not None and champion.storage_id > record.storage_id:
            context.log.info(f"{name} {version} predates the current champion: not acted on")
            continue
        fired.append((name, version, metadata))
    state.update(considered)
    context.update_cursor(json.dumps(state, sort_keys=True))
    if not fired:
        return dg.SkipReason("no new report recommends retraining")
    running = instance.get_runs(dg.RunsFilter(job_name=training_job.name, statuses=IN_FLIGHT), limit=1)
    if running:
        return dg.SkipReason(
            f"training run {running[0].run_id} is in flight: {', '.join(n for n, _, _ in fired)} absorbed by it"
        )
    run_key = "retrain|" + "|".join(f"{name}@{version}" for name, version, _ in fired)
    kinds = sorted({"performance" if name.endswith("live_performance") else "drift" for name, _, _ in fired})
    tags = {
        "hn/trigger": "+".join(kinds),
        "hn/trigger_reports": ",".join(f"{name}@{version}" for name, version, _ in fired)[:250],
        "hn/reasons": "; ".join(str(m.get(REASONS_KEY, "")) for _, _, m in fired)[:250],
        **retraining.tags(),
    }
    for _name, _, metadata in fired:
        for figure in TRIGGER_FIGURES:
            if metadata.get(figure) not in (None, ""):
                tags[f"hn/{figure}"] = _tag(metadata[figure])
    alerts.sink().send(
        "retrain_requested",
        "warning",
        f"{' and '.join(kinds)} detected: one run of {training_job.name} requested",
        run_key=run_key,
        reports={name: version for name, version, _ in fired},
        reasons=tags["hn/reasons"],
    )
    return dg.RunRequest(run_key=run_key, run_config=retraining.run_config(), tags=tags)


# ---- alerts ---------------------------------------------------------------------------------
# Alerting only observes (a log line, a POST), so these sensors start running: a failure nobody is
# told about costs more than a log line. Under `dagster dev` (or the daemon) they act at once.
# Both are run-status sensors (Dagster keeps their cursor: each finished run is seen once), so they
# work on every event-log storage, the run-sharded SQLite default included.
CHECK_ALERT_KINDS = {
    "no_feature_drift": "drift",
    "no_prediction_drift": "drift",
    "live_auc_within_5pct_of_champion": "performance",
    "skew_within_tolerance": "skew",
    "promotion_gate": "promotion",  # a rejected (WARN) or refused (ERROR) challenger
}


def alert_failed_checks(instance: dg.DagsterInstance, run_id: str, sink) -> int:
    """One alert per failed asset check of the run (dbt tests, GX suites, the promotion gate,
    drift, skew, live performance); the kind says which family it is."""
    from dagster._core.events import DagsterEventType

    sent = 0
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        if evaluation.passed:
            continue
        asset = evaluation.asset_key.to_user_string()
        metadata = {k: _value(v) for k, v in evaluation.metadata.items()}
        sink.send(
            CHECK_ALERT_KINDS.get(evaluation.check_name, "check_failed"),
            "error" if evaluation.severity == dg.AssetCheckSeverity.ERROR else "warning",
            f"check {evaluation.check_name} on {asset} failed",
            asset=asset,
            check=evaluation.check_name,
            run_id=run_id,
            metadata={k: v for k, v in metadata.items() if isinstance(v, str | int | float | bool)},
        )
        sent += 1
    return sent


@dg.run_failure_sensor(
    name="run_failure_alerts",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every failed run of this code location, and its failed checks, to the alert sink "
    "(JSON log line; webhook when HN_ALERT_WEBHOOK_URL is set).",
)
def run_failure_alerts(context: dg.RunFailureSensorContext, alerts: AlertSinkResource):
    run, sink = context.dagster_run, alerts.sink()
    sink.send(
        "run_failure",
        "error",
        f"run {run.run_id} of {run.job_name} failed",
        run_id=run.run_id,
        job=run.job_name,
        error=(context.failure_event.message or "")[:1000],
        tags={k: v for k, v in run.tags.items() if k.startswith("hn/")},
    )
    alert_failed_checks(context.instance, run.run_id, sink)


@dg.run_status_sensor(
    name="failed_check_alerts",
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="The failed asset checks of every successful run (non-blocking checks: drift, skew, "
    "live performance, a rejected promotion, dbt/GX warnings) to the alert sink, once each.",
)
def failed_check_alerts(context: dg.RunStatusSensorContext, alerts: AlertSinkResource):
    alert_failed_checks(context.instance, context.dagster_run.run_id, alerts.sink())


defs = dg.Definitions(
    jobs=[daily_batch_job, bronze_job, training_job, end_to_end_job, monitoring_job],
    schedules=[daily_batch_schedule, fortnightly_training_schedule, monitoring_schedule],
    sensors=[
        landing_files_sensor,
        automation_sensor,
        purchase_intent_retrain_trigger,
        run_failure_alerts,
        failed_check_alerts,
    ],
    resources={"retraining": RetrainingResource()},
)
