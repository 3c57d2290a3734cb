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

# The daily batch starts at 02:00 UTC and must have landed by 03:00 UTC, every day.
DAILY_BATCH_DEADLINE = dg.FreshnessPolicy.cron(
    deadline_cron="0 3 * * *", lower_bound_delta=timedelta(hours=24), timezone="UTC"
)
WEEKLY = dg.FreshnessPolicy.time_window(fail_window=timedelta(days=8), warn_window=timedelta(days=7))


@dataclass(frozen=True)
class LayerPolicy:
    owners: tuple[str, ...]
    kinds: frozenset[str] = field(default_factory=frozenset)
    freshness: dg.FreshnessPolicy | None = None


LAYER_POLICIES: dict[str, LayerPolicy] = {
    "sources": LayerPolicy(("team:data-platform",)),
    "bronze": LayerPolicy(
        ("team:data-platform",),
        frozenset({"delta", "polars"}),
        dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=30), warn_window=timedelta(hours=26)),
    ),
    "silver": LayerPolicy(("team:analytics-engineering",), freshness=DAILY_BATCH_DEADLINE),
    "gold": LayerPolicy(("team:analytics-engineering", "team:ml"), freshness=DAILY_BATCH_DEADLINE),
    "features": LayerPolicy(
        ("team:ml",),
        frozenset({"feast"}),
        dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26), warn_window=timedelta(hours=6)),
    ),
    "models": LayerPolicy(("team:ml",), frozenset({"mlflow"}), WEEKLY),
    "evaluation": LayerPolicy(("team:ml",), frozenset({"mlflow"}), WEEKLY),
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
