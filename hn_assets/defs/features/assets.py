"""Dagster assets of the features layer: the Feast registry, online materialisation per feature
view, and the purchase-intent point-in-time training set."""

from datetime import timedelta

import dagster as dg
import polars as pl

from hn_assets.defs.features.store import apply, definitions, feature_store, repo_fingerprint
from hn_assets.defs.features.training_set import LABEL, historical_features, save, spine
from hn_assets.settings import get_settings

OWNER = "team:ml"
FEATURE_SERVICE = "purchase_intent_v1"
GOLD_OF_VIEW = {"user_history": "user_features", "product_signals": "product_features",
                "session_activity": "fct_session_snapshots"}
TIME_COLUMN = {"fct_session_snapshots": "as_of"}


@dg.asset(group_name="features", kinds={"feast"}, owners=[OWNER], code_version=repo_fingerprint(),
          deps=[dg.AssetKey(m) for m in GOLD_OF_VIEW.values()],
          description="Feast registry: entities, feature views and services of feature_repo/ applied; "
                      "re-applied when the repo's definitions change (code version).")
def feast_registry() -> dg.MaterializeResult:
    store = feature_store()
    defs = apply(store)
    return dg.MaterializeResult(metadata={
        "feature_views": {fv.name: {"ttl": str(fv.ttl), "features": [f.name for f in fv.features]}
                          for fv in defs.FEATURE_VIEWS},
        "feature_services": [s.name for s in defs.FEATURE_SERVICES],
        "online_store": get_settings().online_store,
        "registry": dg.MetadataValue.path(str(get_settings().feast_dir / "registry.db"))})


def _online_asset(view: str):
    gold = GOLD_OF_VIEW[view]

    @dg.asset(name=f"online_{view}", group_name="features", kinds={"feast", get_settings().online_store},
              owners=[OWNER], deps=[feast_registry, dg.AssetKey(gold)],
              freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26),
                                                              warn_window=timedelta(hours=6)),
              description=f"Feature view `{view}` materialised into the online store (incremental: "
                          f"from the end of the last materialised interval to the newest `{gold}` row).")
    def _materialise() -> dg.MaterializeResult:
        store = feature_store()
        feature_view = store.get_feature_view(view)
        time_column = TIME_COLUMN.get(gold, "event_timestamp")
        source = pl.scan_parquet(get_settings().gold_dir / gold / "*.parquet")
        newest = source.select(pl.col(time_column).max()).collect().item()
        intervals = feature_view.materialization_intervals
        start = max(end for _, end in intervals) if intervals else source.select(pl.col(time_column).min()).collect().item()
        end = newest + timedelta(microseconds=1)
        rows = source.filter((pl.col(time_column) >= start) & (pl.col(time_column) < end)).select(pl.len()).collect().item()
        if rows:
            store.materialize(start_date=start, end_date=end, feature_views=[view])
        return dg.MaterializeResult(metadata={
            "rows_in_range": rows, "start": str(start), "end": str(end), "newest_gold_row": str(newest),
            "online_store": get_settings().online_store})

    return _materialise


online_assets = [_online_asset(view) for view in GOLD_OF_VIEW]


@dg.asset(group_name="features", kinds={"feast", "parquet"}, owners=[OWNER],
          deps=[feast_registry, dg.AssetKey("fct_session_snapshots")],
          freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(days=8),
                                                          warn_window=timedelta(days=7)),
          description="Purchase-intent training set: the fct_session_snapshots spine (each row's user and "
                      "last viewed product at as_of) joined point-in-time with feature service "
                      f"`{FEATURE_SERVICE}`; versioned under lake/training_sets/purchase_intent/.")
def purchase_intent_training_set() -> dg.MaterializeResult:
    settings = get_settings()
    store = feature_store()
    entity_rows = spine(settings.gold_dir / "fct_session_snapshots")
    joined = historical_features(store, entity_rows, FEATURE_SERVICE)
    features = [c for c in joined.columns if c not in (*entity_rows.columns,)]
    saved = save(joined, settings.training_sets_dir / "purchase_intent", FEATURE_SERVICE, features)
    return dg.MaterializeResult(metadata={
        "version": saved.version, "path": dg.MetadataValue.path(str(saved.path)),
        "dagster/row_count": saved.rows, "positive_share": saved.positives, "label": LABEL,
        "start": str(saved.start), "end": str(saved.end), "feature_service": FEATURE_SERVICE,
        "features": saved.features})


FEATURE_ASSETS = [feast_registry, *online_assets, purchase_intent_training_set]
