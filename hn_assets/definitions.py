"""The one Definitions of the H.N Commerce ML Platform code location."""

import dagster as dg

from hn_assets.defs.features.assets import FEATURE_ASSETS
from hn_assets.defs.models.purchase_intent import MODEL_ASSETS
from hn_assets.defs.automation import (bronze_job, daily_batch_job, daily_batch_schedule, end_to_end_job,
                                       landing_files_sensor, training_job, weekly_training_schedule)
from hn_assets.defs.ingest.assets import bronze_ingest, landing_sources
from hn_assets.defs.quality.gx_checks import gx_checks
from hn_assets.defs.resources import default_resources
from hn_assets.defs.transform.assets import hn_dbt_models

defs = dg.Definitions(
    assets=[*landing_sources, bronze_ingest, hn_dbt_models, *FEATURE_ASSETS, *MODEL_ASSETS],
    asset_checks=gx_checks,
    jobs=[daily_batch_job, bronze_job, training_job, end_to_end_job],
    schedules=[daily_batch_schedule, weekly_training_schedule],
    sensors=[landing_files_sensor],
    resources=default_resources(),
    # Process start-up dominates on small machines: run steps in one process unless configured.
    executor=dg.in_process_executor,
)
