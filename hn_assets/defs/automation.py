"""Jobs, schedules and sensors (docs/architecture.md, "Automation"). Jobs select what they mean:
the nightly batch keeps the online store fresh; the weekly training chain retrains."""

import hashlib

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


@dg.sensor(
    job=bronze_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Requests a bronze run for the feeds that have new landing files.",
)
def landing_files_sensor(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
    pending = {feed: discover(lakehouse.landing, feed) for feed in FEEDS}
    pending = {feed: files for feed, files in pending.items() if files}
    if not pending:
        return dg.SkipReason("no landing files waiting")
    signature = hashlib.sha256("|".join(f.relative for files in pending.values() for f in files).encode()).hexdigest()
    if signature == context.cursor:
        return dg.SkipReason("the waiting files were already requested")
    context.update_cursor(signature)
    return dg.RunRequest(
        run_key=signature[:32],
        asset_selection=[bronze_key(feed) for feed in pending] + [QUARANTINE_KEY],
        tags={"hn/trigger": "landing_files", "hn/feeds": ",".join(sorted(pending))},
    )


defs = dg.Definitions(
    jobs=[daily_batch_job, bronze_job, training_job, end_to_end_job],
    schedules=[daily_batch_schedule, weekly_training_schedule],
    sensors=[landing_files_sensor, automation_sensor],
)
