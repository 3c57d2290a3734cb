"""Jobs, schedules and sensors (docs/architecture.md, "Automation"). Jobs select what they mean:
the nightly batch keeps the online store fresh; the weekly training chain retrains."""

import hashlib
import json

import dagster as dg

from hn_assets.contracts import FEEDS
from hn_assets.defs.ingest.assets import QUARANTINE_KEY, bronze_key
from hn_assets.defs.resources import LakehouseResource
from hn_assets.ingest.landing import discover

DATA_LAYERS = dg.AssetSelection.groups("bronze", "silver", "gold", "features")
# The training chain: the point-in-time training set and everything built from it.
TRAINING_CHAIN = dg.AssetSelection.assets("purchase_intent_training_set").downstream()

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

weekly_training_schedule = dg.ScheduleDefinition(
    name="purchase_intent_weekly_0400_utc",
    job=training_job,
    cron_schedule="0 4 * * 1",
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


defs = dg.Definitions(
    jobs=[daily_batch_job, bronze_job, training_job, end_to_end_job],
    schedules=[daily_batch_schedule, weekly_training_schedule],
    sensors=[landing_files_sensor, automation_sensor],
)
