"""Schedules and sensors (ARCHITECTURE.md §7)."""


import hashlib

import dagster as dg

from hn_assets.contracts import FEEDS
from hn_assets.defs.ingest.assets import QUARANTINE_KEY, bronze_key
from hn_assets.defs.ingest.landing import discover
from hn_assets.defs.resources import LakehouseResource

# The daily batch: everything from bronze up to the newest layer that exists.
daily_batch_job = dg.define_asset_job(
    "daily_batch", selection=dg.AssetSelection.groups("bronze", "silver", "gold", "features"),
    description="Landing -> bronze -> silver -> gold -> features, the store's nightly batch.")

# The demo's main job: everything from landing to a promoted champion.
end_to_end_job = dg.define_asset_job(
    "end_to_end", selection=dg.AssetSelection.groups("bronze", "silver", "gold", "features", "models", "evaluation"),
    description="The whole platform: landing -> bronze -> silver -> gold -> features -> models -> champion.")

daily_batch_schedule = dg.ScheduleDefinition(
    name="daily_batch_0200_utc", job=daily_batch_job, cron_schedule="0 2 * * *", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED)

# Training chain: training set -> models -> evaluation -> champion (scheduled weekly; also on demand).
training_job = dg.define_asset_job(
    "purchase_intent_training", selection=dg.AssetSelection.assets(
        "purchase_intent_training_set", "purchase_intent_model", "purchase_intent_evaluation",
        "purchase_intent_champion"),
    description="Train, evaluate and (behind the promotion gate) promote the purchase-intent model.")

weekly_training_schedule = dg.ScheduleDefinition(
    name="purchase_intent_weekly_0400_utc", job=training_job, cron_schedule="0 4 * * 1", execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED)

bronze_job = dg.define_asset_job("bronze_ingest_job", selection=dg.AssetSelection.groups("bronze"),
                                 description="Ingest pending landing files into bronze.")


@dg.sensor(job=bronze_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Requests a bronze run for the feeds that have new landing files.")
def landing_files_sensor(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
    pending = {feed: discover(lakehouse.landing, feed) for feed in FEEDS}
    pending = {feed: files for feed, files in pending.items() if files}
    if not pending:
        return dg.SkipReason("no landing files waiting")
    signature = hashlib.sha256("|".join(f.relative for files in pending.values() for f in files).encode()).hexdigest()
    if signature == context.cursor:
        return dg.SkipReason("the waiting files were already requested")
    context.update_cursor(signature)
    return dg.RunRequest(run_key=signature[:32],
                         asset_selection=[bronze_key(feed) for feed in pending] + [QUARANTINE_KEY],
                         tags={"hn/trigger": "landing_files", "hn/feeds": ",".join(sorted(pending))})
