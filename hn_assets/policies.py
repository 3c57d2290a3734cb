"""Owners, kinds and freshness per layer: the one policy table, applied to every asset when the
definitions are assembled (hn_assets/definitions.py), instead of constants in each asset module.

An asset may state its own freshness policy where its layer's does not fit it (the weekly
training set in the daily `features` layer); `NOT_FRESHNESS_BOUND` lists the assets that change
only with code, so no time window applies. `tests/test_definitions.py` enforces the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import dagster as dg

# Freshness follows the schedules (hn_assets/defs/automation.py, docs/monitoring.md "Automation"):
# - the daily batch starts at 02:00 UTC and must have landed by 03:00 UTC, every day;
DAILY_BATCH_DEADLINE = dg.FreshnessPolicy.cron(
    deadline_cron="0 3 * * *", lower_bound_delta=timedelta(hours=24), timezone="UTC"
)
# - bronze is also fed between batches by the landing sensor: a day without any ingest warns;
BRONZE = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=30), warn_window=timedelta(hours=26))
# - the training chain retrains every 14 days at 04:00 UTC (sooner when drift triggers it): it warns
#   once a scheduled retraining is overdue by more than a run's length and fails a day later;
RETRAINING = dg.FreshnessPolicy.time_window(fail_window=timedelta(days=15), warn_window=timedelta(days=14, hours=6))
# - the monitoring reports are built daily at 03:30 UTC, after the batch, and are due by 04:30.
MONITORING_DEADLINE = dg.FreshnessPolicy.cron(
    deadline_cron="30 4 * * *", lower_bound_delta=timedelta(hours=24), timezone="UTC"
)


@dataclass(frozen=True)
class LayerPolicy:
    owners: tuple[str, ...]
    kinds: frozenset[str] = field(default_factory=frozenset)
    freshness: dg.FreshnessPolicy | None = None


LAYER_POLICIES: dict[str, LayerPolicy] = {
    # Observed, not materialised: landing files are the store's; their freshness is bronze's.
    "sources": LayerPolicy(("team:data-platform",)),
    "bronze": LayerPolicy(("team:data-platform",), frozenset({"delta", "polars"}), BRONZE),
    "silver": LayerPolicy(("team:analytics-engineering",), freshness=DAILY_BATCH_DEADLINE),
    "gold": LayerPolicy(("team:analytics-engineering", "team:ml"), freshness=DAILY_BATCH_DEADLINE),
    # The online store is materialised by the same daily batch (the training set: RETRAINING, its own).
    "features": LayerPolicy(("team:ml",), frozenset({"feast"}), DAILY_BATCH_DEADLINE),
    "models": LayerPolicy(("team:ml",), frozenset({"mlflow"}), RETRAINING),
    "evaluation": LayerPolicy(("team:ml",), frozenset({"mlflow"}), RETRAINING),
    # The Bento follows the champion it serves (rebuilt only when the champion version changes).
    "serving": LayerPolicy(("team:ml",), frozenset({"bentoml"}), RETRAINING),
    # Drift, skew and live-performance reports over the inference log (docs/monitoring.md).
    "monitoring": LayerPolicy(("team:ml",), frozenset(), MONITORING_DEADLINE),
}
NOT_FRESHNESS_BOUND = frozenset({"feast_registry"})  # re-applied when feature_repo/ changes


def with_layer_policy(spec: dg.AssetSpec) -> dg.AssetSpec:
    policy = LAYER_POLICIES.get(spec.group_name or "")
    if policy is None:
        raise ValueError(
            f"asset {spec.key.to_user_string()} is in group {spec.group_name!r}, which has no "
            f"layer policy: add it to LAYER_POLICIES"
        )
    spec = spec.merge_attributes(owners=[o for o in policy.owners if o not in spec.owners], kinds=set(policy.kinds))
    if spec.freshness_policy is None and policy.freshness and spec.key.to_user_string() not in NOT_FRESHNESS_BOUND:
        spec = spec.replace_attributes(freshness_policy=policy.freshness)
    return spec
