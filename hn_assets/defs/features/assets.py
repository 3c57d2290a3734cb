"""Dagster assets of the features layer: the Feast registry, online materialisation per feature
view, and the purchase-intent point-in-time training set (owners, kinds and freshness per layer:
hn_assets/policies.py)."""

from datetime import timedelta

import dagster as dg

from hn_assets.defs.resources import FeatureStoreResource, WarehouseResource
from hn_assets.features.sources import GOLD_SOURCES
from hn_assets.features.store import repo_fingerprint
from hn_assets.features.training_set import LABEL, SavedTrainingSet
from hn_assets.policies import RETRAINING


class TrainingSetConfig(dg.Config):
    """Which snapshots the training set takes: a sliding window of recent weeks (the retraining
    trigger trains on the world as it is now). Defaults: every snapshot (the window is off)."""

    window_weeks: int | None = None  # the most recent N weeks before window_end; None: no lower bound
    # Exclusive end (YYYY-MM-DD, midnight UTC), e.g. a drift day for a backtest; None: the newest snapshot.
    window_end: str | None = None


FEATURE_SERVICE = "purchase_intent_v1"
TRAINING_SET = "purchase_intent"


@dg.asset(
    group_name="features",
    code_version=repo_fingerprint(),
    deps=[dg.AssetKey(source.mart) for source in GOLD_SOURCES.values()],
    automation_condition=dg.AutomationCondition.code_version_changed(),
    description="Feast registry: entities, feature views and services of feature_repo/ applied; "
    "re-applied when the repo's definitions change (code version).",
)
def feast_registry(feature_store: FeatureStoreResource) -> dg.MaterializeResult:
    from hn_assets.features.store import apply

    defs = apply(feature_store.store())
    return dg.MaterializeResult(
        metadata={
            "feature_views": {
                fv.name: {"ttl": str(fv.ttl), "features": [f.name for f in fv.features]} for fv in defs.FEATURE_VIEWS
            },
            "feature_services": [s.name for s in defs.FEATURE_SERVICES],
            "online_store": feature_store.online_store_type,
            "registry": dg.MetadataValue.path(str(feature_store.registry_file)),
        }
    )


def _online_asset(view: str):
    gold = GOLD_SOURCES[view]

    @dg.asset(
        name=f"online_{view}",
        group_name="features",
        deps=[feast_registry, dg.AssetKey(gold.mart)],
        description=f"Feature view `{view}` materialised into the online store (incremental: "
        f"from the end of the last materialised interval to the newest `{gold.mart}` row).",
    )
    def _materialise(feature_store: FeatureStoreResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
        import polars as pl

        store = feature_store.store()
        intervals = store.get_feature_view(view).materialization_intervals
        time = pl.col(gold.time_column)
        source = warehouse.scan_gold(gold.mart)
        newest = source.select(time.max()).collect().item()
        start = max(end for _, end in intervals) if intervals else source.select(time.min()).collect().item()
        end = newest + timedelta(microseconds=1)
        rows = source.filter((time >= start) & (time < end)).select(pl.len()).collect().item()
        if rows:
            store.materialize(start_date=start, end_date=end, feature_views=[view])
        return dg.MaterializeResult(
            metadata={
                "rows_in_range": rows,
                "start": str(start),
                "end": str(end),
                "newest_gold_row": str(newest),
                "online_store": feature_store.online_store_type,
            }
        )

    return _materialise


@dg.asset(
    group_name="features",
    kinds={"parquet"},
    deps=[feast_registry, dg.AssetKey("fct_session_snapshots")],
    freshness_policy=RETRAINING,  # rebuilt with each retraining, unlike the rest of its layer
    description="Purchase-intent training set: the fct_session_snapshots spine (each row's user and "
    "last viewed product at as_of) joined point-in-time with feature service "
    f"`{FEATURE_SERVICE}`; versioned under lake/training_sets/{TRAINING_SET}/. Its value "
    "(version, path, window) is what the model asset trains on. Run config: a sliding window of "
    "recent weeks (`window_weeks`, `window_end`; default: every snapshot).",
)
def purchase_intent_training_set(
    config: TrainingSetConfig, feature_store: FeatureStoreResource, warehouse: WarehouseResource
) -> dg.Output[SavedTrainingSet]:
    from datetime import date

    from hn_assets.features.training_set import historical_features, save, spine, window

    end = date.fromisoformat(config.window_end) if config.window_end else None
    entity_rows = window(spine(warehouse.gold_files("fct_session_snapshots")), config.window_weeks, end)
    if entity_rows.is_empty():
        raise dg.Failure(f"no snapshots in the training window (weeks={config.window_weeks}, end={end})")
    joined = historical_features(feature_store.store(), entity_rows, FEATURE_SERVICE)
    features = [c for c in joined.columns if c not in entity_rows.columns]
    saved = save(joined, feature_store.training_sets(TRAINING_SET), FEATURE_SERVICE, features)
    return dg.Output(
        saved,
        metadata={
            "version": saved.version,
            "path": dg.MetadataValue.path(str(saved.path)),
            "dagster/row_count": saved.rows,
            "positive_share": saved.positives,
            "label": LABEL,
            "start": str(saved.start),
            "end": str(saved.end),
            "feature_service": FEATURE_SERVICE,
            "features": saved.features,
            "window_weeks": str(config.window_weeks),
            "window_end": str(config.window_end or "newest snapshot"),
        },
    )


defs = dg.Definitions(
    assets=[feast_registry, *(_online_asset(view) for view in GOLD_SOURCES), purchase_intent_training_set]
)
