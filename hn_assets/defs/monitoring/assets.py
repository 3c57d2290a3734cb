"""Dagster assets of the monitoring layer (docs/monitoring.md): drift of the features and of the
predictions against what the champion was trained on, training-serving skew, and live performance.
Each reads the recent window of the inference log (`bronze_inference_log`), writes an HTML report
under `$HN_HOME/reports/monitoring/<asset>/<UTC time>/` (linked from metadata), records its figures
as float metadata (the UI plots them over time) and a data version that names the report's content,
and says whether it recommends retraining (`retrain_recommended`, read by the
`purchase_intent_retrain_trigger` sensor in defs/automation.py).

Without a champion, or without live traffic in the window, an asset does not materialise: it
records an observation saying so (status "no live traffic in the window") and its checks are not
evaluated, so nothing downstream or in the trigger mistakes an empty window for a healthy one.
The cores are in hn_assets/monitoring/; Evidently, MLflow and Feast are imported in the bodies.
"""

import hashlib
import json
from datetime import UTC, datetime

import dagster as dg

from hn_assets.defs.resources import (
    FeatureStoreResource,
    LakehouseResource,
    ModelRegistryResource,
    ReportStoreResource,
    WarehouseResource,
)

INFERENCE_LOG = dg.AssetKey("bronze_inference_log")
CHAMPION = dg.AssetKey("purchase_intent_champion")
SESSIONS = dg.AssetKey("fct_sessions")  # labels and bot flags of the logged sessions
FEATURE_DRIFT = dg.AssetKey("feature_drift_report")
PREDICTION_DRIFT = dg.AssetKey("prediction_drift_report")
SKEW = dg.AssetKey("training_serving_skew_report")
LIVE_PERFORMANCE = dg.AssetKey("purchase_intent_live_performance")
# The reports whose `retrain_recommended` requests the training chain (skew does not: retraining
# on features computed differently online would not fix it; it alerts instead).
TRIGGER_REPORTS = (FEATURE_DRIFT, PREDICTION_DRIFT, LIVE_PERFORMANCE)
RETRAIN_KEY = "retrain_recommended"
REASONS_KEY = "alert_reasons"
# The key numeric features whose PSI is reported and alerted on (those the champion uses).
PSI_FEATURES = [
    "events_so_far",
    "page_views_so_far",
    "product_views_so_far",
    "distinct_products_so_far",
    "cart_adds_so_far",
    "searches_so_far",
    "seconds_since_start",
    "local_hour",
    "lifetime_purchase_count",
    "avg_order_value_90d",
    "days_since_last_purchase",
    "sessions_last_30d",
    "list_price",
    "avg_selling_price_7d",
    "competitor_price_gap",
]


class WindowConfig(dg.Config):
    window_days: float = 7.0  # the recent window of the inference log
    window_end: str | None = None  # ISO time; default: the newest logged score


class FeatureDriftConfig(WindowConfig):
    drift_share: float = 0.5  # dataset drift when at least this share of the features drifted
    psi_threshold: float = 0.25
    psi_features: list[str] = PSI_FEATURES
    method: str | None = None  # an Evidently stat test for every column; default: Evidently's choice
    threshold: float | None = None
    max_reference_rows: int = 50_000


class PredictionDriftConfig(WindowConfig):
    psi_threshold: float = 0.25
    method: str | None = None
    threshold: float | None = None
    max_reference_rows: int = 50_000


class SkewReportConfig(WindowConfig):
    sample_size: int = 500
    match_tolerance_seconds: float = 1.0
    abs_tolerance: float = 1e-6
    rel_tolerance: float = 1e-6
    warn_share: float = 0.01  # the check warns above this share of compared rows with any mismatch
    seed: int = 0


class LivePerformanceConfig(WindowConfig):
    window_days: float = 14.0  # two weeks of labelled days for the consecutive-day rule
    max_relative_drop: float = 0.05
    consecutive_days: int = 2
    min_rows_per_day: int = 50
    min_positives_per_day: int = 5


# ---- shared steps ------------------------------------------------------------------------------
def _stamp() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"


def _data_version(*parts) -> dg.DataVersion:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return dg.DataVersion(digest)


def _links(html_path) -> dict:
    return {
        "report_html": dg.MetadataValue.path(str(html_path)),
        "report_url": dg.MetadataValue.url(html_path.resolve().as_uri()),
    }


def _md_table(rows: list[dict], columns: list[str]) -> dg.MetadataValue:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in columns) + " |" for r in rows]
    return dg.MetadataValue.md("\n".join(lines))


def _degraded(context: dg.AssetExecutionContext, check: str, status: str, **metadata):
    """No report: an observation says why (the asset does not materialise), and its check is
    recorded as not evaluated (Dagster requires a result per check; passed, `evaluated: false`)."""
    context.log.info(f"{context.asset_key.to_user_string()}: {status}")
    context.log_event(dg.AssetObservation(context.asset_key, metadata={"status": status, **metadata}))
    yield dg.AssetCheckResult(check_name=check, passed=True, metadata={"evaluated": False, "status": status})


def _window(config: WindowConfig, lakehouse: LakehouseResource, warehouse: WarehouseResource):
    """The window's scores without those of sessions the batch flagged as bots (the model is
    trained and tested without them: comparing their traffic with its reference would report the
    bots as drift), all answers and the model's."""
    from hn_assets.monitoring import live

    rows, window = live.recent(live.read_log(lakehouse.delta()), config.window_days, config.window_end)
    if window is not None:
        rows, window = live.without_bots(rows, window, _bot_sessions(warehouse, rows))
    return rows, live.model_rows(rows), window


def _bot_sessions(warehouse: WarehouseResource, rows) -> list[str]:
    import polars as pl

    keys = rows["session_key"].drop_nulls().unique().to_list()
    try:
        flagged = warehouse.scan_gold("fct_sessions", ["session_key", "is_bot"]).filter(
            pl.col("is_bot") & pl.col("session_key").is_in(keys)
        )
        return flagged.collect()["session_key"].to_list()
    except (FileNotFoundError, pl.exceptions.ComputeError):  # no gold sessions yet: none known as bots
        return []


def _traffic_metadata(rows, scored, window) -> dict:
    out = {"scores_in_window": float(rows.height), "model_scores_in_window": float(scored.height)}
    if rows.height:
        out["fallback_share"] = float(1 - scored.height / rows.height)
    if window is not None:
        out.update(window.metadata())
    return out


def _reference_frame(ref, columns: list[str]):
    import polars as pl

    schema = ref.schema()
    return ref.train.select([pl.col(c).cast(pl.String) if schema[c] == pl.String else pl.col(c) for c in columns])


# ---- feature drift ------------------------------------------------------------------------------
@dg.asset(
    group_name="monitoring",
    kinds={"evidently", "report"},
    deps=[INFERENCE_LOG, CHAMPION, SESSIONS],
    output_required=False,
    check_specs=[
        dg.AssetCheckSpec(
            "no_feature_drift",
            asset=FEATURE_DRIFT,
            description="Warns when the share of drifted features reaches the dataset-drift share or a key "
            "numeric feature's PSI reaches its threshold (0.25).",
        )
    ],
    description="Evidently 0.7 data drift of the champion's features: the last window of the inference log "
    "(default 7 days) against the champion's training rows (its MLflow run's training set, train side). "
    "Per feature the drift score, method and verdict, PSI for the key numeric features, share of drifted "
    "columns; HTML under reports/monitoring/. Recommends retraining when it alerts.",
)
def feature_drift_report(
    context: dg.AssetExecutionContext,
    config: FeatureDriftConfig,
    lakehouse: LakehouseResource,
    warehouse: WarehouseResource,
    model_registry: ModelRegistryResource,
    reports: ReportStoreResource,
):
    from hn_assets.monitoring import drift, live
    from hn_assets.monitoring.reference import champion_reference

    ref = champion_reference(model_registry.registry())
    if ref is None:
        yield from _degraded(context, "no_feature_drift", "no champion yet: nothing to compare the traffic with")
        return
    rows, scored, window = _window(config, lakehouse, warehouse)
    if scored.is_empty():
        yield from _degraded(
            context, "no_feature_drift", live.NO_TRAFFIC, **_traffic_metadata(rows, scored, window), **ref.metadata()
        )
        return
    features = ref.features
    current = live.feature_frame(scored, ref.schema())
    settings = drift.DriftConfig(
        drift_share=config.drift_share,
        psi_threshold=config.psi_threshold,
        psi_features=tuple(config.psi_features),
        method=config.method,
        threshold=config.threshold,
        max_reference_rows=config.max_reference_rows,
    )
    result = drift.run_drift(_reference_frame(ref, features), current.select(features), features, settings)
    folder = reports.folder("monitoring", FEATURE_DRIFT.to_user_string(), _stamp())
    paths = drift.save(result, folder)
    summary = result.summary()
    per_column = {f"drift_score/{c.column}": float(c.score) for c in result.columns}
    per_column.update({f"psi/{c.column}": float(c.psi) for c in result.columns if c.psi is not None})
    reasons = result.reasons()
    yield dg.MaterializeResult(
        metadata={
            "status": "ok",
            **_links(paths["html"]),
            **_traffic_metadata(rows, scored, window),
            **ref.metadata(),
            **summary,
            **per_column,
            "dataset_drift": result.dataset_drift,
            "drifted_features": ", ".join(result.drifted_columns()),
            "psi_alerts": ", ".join(result.psi_alerts),
            "columns": _md_table(result.table(), ["column", "kind", "method", "threshold", "score", "drifted", "psi"]),
            RETRAIN_KEY: result.alert,
            REASONS_KEY: "; ".join(reasons),
        },
        data_version=_data_version(ref.version, window.metadata(), summary, per_column),
    )
    yield dg.AssetCheckResult(
        check_name="no_feature_drift",
        passed=not result.alert,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "reasons": "; ".join(reasons) or "no drift",
            "drifted_share": float(result.drifted_share),
            "max_psi": result.max_psi,
        },
    )


# ---- prediction drift ---------------------------------------------------------------------------
@dg.asset(
    group_name="monitoring",
    kinds={"evidently", "report"},
    deps=[INFERENCE_LOG, CHAMPION, SESSIONS],
    output_required=False,
    check_specs=[
        dg.AssetCheckSpec(
            "no_prediction_drift",
            asset=PREDICTION_DRIFT,
            description="Warns when the live calibrated scores drifted from the champion's scores on its "
            "test window (Evidently's verdict) or their PSI reaches the threshold (0.25).",
        )
    ],
    description="Evidently 0.7 drift of the predictions: the calibrated scores the service answered in the "
    "window against the champion's own scores on its test window (scored as registered); PSI, mean score "
    "and the reference base rate beside them. Recommends retraining when it alerts.",
)
def prediction_drift_report(
    context: dg.AssetExecutionContext,
    config: PredictionDriftConfig,
    lakehouse: LakehouseResource,
    warehouse: WarehouseResource,
    model_registry: ModelRegistryResource,
    reports: ReportStoreResource,
):
    import polars as pl

    from hn_assets.contracts import PURCHASE_LABEL
    from hn_assets.models.training import to_pandas
    from hn_assets.monitoring import drift, live
    from hn_assets.monitoring.reference import champion_reference

    registry = model_registry.registry()
    ref = champion_reference(registry)
    if ref is None:
        yield from _degraded(context, "no_prediction_drift", "no champion yet: nothing to compare the traffic with")
        return
    rows, scored, window = _window(config, lakehouse, warehouse)
    if scored.is_empty():
        yield from _degraded(
            context, "no_prediction_drift", live.NO_TRAFFIC, **_traffic_metadata(rows, scored, window), **ref.metadata()
        )
        return
    test = ref.test if ref.test.height else ref.train
    scorer = registry.load_version(ref.version)
    reference = pl.DataFrame({"score": scorer.predict(to_pandas(test, ref.features))})
    current = scored.select(pl.col("calibrated_score").cast(pl.Float64).alias("score"))
    settings = drift.DriftConfig(
        drift_share=0.5,
        psi_threshold=config.psi_threshold,
        psi_features=("score",),
        method=config.method,
        threshold=config.threshold,
        max_reference_rows=config.max_reference_rows,
    )
    result = drift.run_drift(reference, current, ["score"], settings)
    folder = reports.folder("monitoring", PREDICTION_DRIFT.to_user_string(), _stamp())
    paths = drift.save(result, folder)
    column = result.columns[0]
    figures = {
        "score_drift": float(column.score),
        "score_psi": float(column.psi) if column.psi is not None else 0.0,
        "mean_score_live": float(current["score"].mean()),
        "mean_score_reference": float(reference["score"].mean()),
        "reference_base_rate": float(test[PURCHASE_LABEL].cast(pl.Float64).mean()),
        "offer_share_live": float((scored["decision"] == "offer_discount").mean())
        if "decision" in scored.columns
        else 0.0,
    }
    reasons = result.reasons() or ([f"score drifted ({column.method} {column.score:.4f})"] if column.drifted else [])
    alert = result.alert or column.drifted
    yield dg.MaterializeResult(
        metadata={
            "status": "ok",
            **_links(paths["html"]),
            **_traffic_metadata(rows, scored, window),
            **ref.metadata(),
            **figures,
            "score_drift_method": column.method,
            "score_drifted": column.drifted,
            "reference_rows": float(reference.height),
            RETRAIN_KEY: alert,
            REASONS_KEY: "; ".join(reasons),
        },
        data_version=_data_version(ref.version, window.metadata(), figures),
    )
    yield dg.AssetCheckResult(
        check_name="no_prediction_drift",
        passed=not alert,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"reasons": "; ".join(reasons) or "no drift", "score_psi": figures["score_psi"]},
    )


# ---- training-serving skew ----------------------------------------------------------------------
@dg.asset(
    group_name="monitoring",
    kinds={"report", "feast"},
    deps=[INFERENCE_LOG, CHAMPION, SESSIONS, dg.AssetKey("fct_session_snapshots"), dg.AssetKey("feast_registry")],
    output_required=False,
    check_specs=[
        dg.AssetCheckSpec(
            "skew_within_tolerance",
            asset=SKEW,
            description="Warns when more than the configured share (1 %) of the compared scores used a feature "
            "vector that differs from the training-set row for the same (session_key, as_of), or when no "
            "logged score matches a snapshot at all.",
        )
    ],
    description="Training-serving skew: for a sample of the window's logged scores, the features are "
    "recomputed offline for the same (session_key, as_of) with the training set's logic (the "
    "fct_session_snapshots spine, Feast's point-in-time join with the feature service) and compared "
    "feature by feature with the vector the service logged; mismatch share per feature, examples.",
)
def training_serving_skew_report(
    context: dg.AssetExecutionContext,
    config: SkewReportConfig,
    lakehouse: LakehouseResource,
    warehouse: WarehouseResource,
    feature_store: FeatureStoreResource,
    model_registry: ModelRegistryResource,
    reports: ReportStoreResource,
):
    import polars as pl

    from hn_assets.defs.features.assets import FEATURE_SERVICE
    from hn_assets.features.training_set import historical_features
    from hn_assets.monitoring import html, live, skew
    from hn_assets.monitoring.reference import champion_reference

    ref = champion_reference(model_registry.registry())
    if ref is None:
        yield from _degraded(context, "skew_within_tolerance", "no champion yet: no feature list to compare")
        return
    rows, scored, window = _window(config, lakehouse, warehouse)
    if scored.is_empty():
        yield from _degraded(
            context, "skew_within_tolerance", live.NO_TRAFFIC, **_traffic_metadata(rows, scored, window)
        )
        return
    settings = skew.SkewConfig(
        sample_size=config.sample_size,
        match_tolerance_seconds=config.match_tolerance_seconds,
        abs_tolerance=config.abs_tolerance,
        rel_tolerance=config.rel_tolerance,
        tolerances={"seconds_since_start": config.match_tolerance_seconds},
        warn_share=config.warn_share,
        seed=config.seed,
    )
    sample = scored.sample(min(config.sample_size, scored.height), seed=config.seed)
    keys = sample["session_key"].drop_nulls().unique().to_list()
    snapshots = (
        warehouse.scan_gold(
            "fct_session_snapshots", ["snapshot_key", "session_key", "user_id", "last_product_id", "as_of", "purchased"]
        )
        .filter(pl.col("session_key").is_in(keys))
        .collect()
    )
    matched = skew.match_snapshots(sample, snapshots, config.match_tolerance_seconds)
    features = ref.features
    store = feature_store.store()
    service = store.get_feature_service(FEATURE_SERVICE)
    groups = {f.name: p.name for p in service.feature_view_projections for f in p.features}
    if matched.height:
        entity_rows = (
            matched.select(
                "snapshot_key",
                "session_key",
                "user_id",
                pl.col("last_product_id").alias("product_id"),
                pl.col("as_of").alias("event_timestamp"),
                "purchased",
            )
            .unique("snapshot_key")
            .sort("snapshot_key")
        )
        offline = historical_features(store, entity_rows, FEATURE_SERVICE)
        offline = matched.select("request_id", "snapshot_key").join(
            offline.select(["snapshot_key", *features]), on="snapshot_key", how="inner"
        )
        schema = {f: offline.schema[f] for f in features}
    else:
        offline = pl.DataFrame(
            {"request_id": [], **{f: [] for f in features}}, schema={"request_id": pl.String, **ref.schema()}
        )
        schema = ref.schema()
    live_vectors = live.feature_frame(
        sample, {f: (pl.String if schema[f] == pl.String else schema[f]) for f in features}
    )
    if "feature_groups" in sample.columns:
        live_vectors = live_vectors.join(sample.select("request_id", "feature_groups"), on="request_id")
    result = skew.compare(
        live_vectors,
        offline.drop("snapshot_key", strict=False),
        features,
        settings,
        sampled=sample.height,
        groups=groups,
    )
    none_matched = sample.height > 0 and result.matched == 0
    warn = result.warn or none_matched
    reasons = []
    if result.warn:
        reasons.append(
            f"{result.row_mismatch_share:.1%} of compared scores differ from their training row "
            f"(> {settings.warn_share:.1%}): {', '.join(result.skewed_features())}"
        )
    if none_matched:
        reasons.append("no logged score matches a snapshot (session keys or clocks differ between service and batch)")
    summary = result.summary()
    folder = reports.folder("monitoring", SKEW.to_user_string(), _stamp())
    page = folder / "report.html"
    page.write_text(
        html.page(
            "Training-serving skew",
            {
                **summary,
                **(window.metadata() if window else {}),
                "champion": ref.version,
                "reasons": "; ".join(reasons) or "none",
            },
            [("Per feature", result.table())],
            [
                "Live: the feature vector the service logged. "
                "Offline: the training-set row for the same (session_key, as_of)."
            ],
        )
    )
    (folder / "report.json").write_text(
        json.dumps({"summary": summary, "features": result.table()}, indent=2, default=str)
    )
    per_feature = {f"mismatch_share/{f.feature}": float(f.share) for f in result.features}
    yield dg.MaterializeResult(
        metadata={
            "status": "ok",
            **_links(page),
            **_traffic_metadata(rows, scored, window),
            "champion_version": ref.version,
            **summary,
            **per_feature,
            "skewed_features": ", ".join(result.skewed_features()),
            "features": _md_table(
                [{k: v for k, v in r.items() if k != "examples"} for r in result.table()],
                ["feature", "compared", "mismatched", "share"],
            ),
            RETRAIN_KEY: False,
            REASONS_KEY: "; ".join(reasons),
        },
        data_version=_data_version(ref.version, window.metadata(), summary, per_feature),
    )
    yield dg.AssetCheckResult(
        check_name="skew_within_tolerance",
        passed=not warn,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"reasons": "; ".join(reasons) or "no skew", "row_mismatch_share": float(result.row_mismatch_share)},
    )


# ---- live performance ---------------------------------------------------------------------------
@dg.asset(
    group_name="monitoring",
    kinds={"report", "mlflow"},
    deps=[INFERENCE_LOG, CHAMPION, SESSIONS],
    output_required=False,
    check_specs=[
        dg.AssetCheckSpec(
            "live_auc_within_5pct_of_champion",
            asset=LIVE_PERFORMANCE,
            description="Fails when the live ROC-AUC is more than 5 % below the serving version's test ROC-AUC "
            "(its MLflow run's test_roc_auc) on two consecutive days.",
        )
    ],
    description="Live performance of purchase_intent: the window's logged scores joined with the purchases "
    "that followed (gold fct_sessions); per day ROC-AUC, ECE, Brier, reliability, AUC per device, against "
    "the test ROC-AUC of the version that served. Recommends retraining when the check fails.",
)
def purchase_intent_live_performance(
    context: dg.AssetExecutionContext,
    config: LivePerformanceConfig,
    lakehouse: LakehouseResource,
    warehouse: WarehouseResource,
    model_registry: ModelRegistryResource,
    reports: ReportStoreResource,
):
    import polars as pl

    from hn_assets.monitoring import html, live, performance
    from hn_assets.monitoring.reference import run_test_auc

    rows, scored, window = _window(config, lakehouse, warehouse)
    if scored.is_empty():
        yield from _degraded(
            context, "live_auc_within_5pct_of_champion", live.NO_TRAFFIC, **_traffic_metadata(rows, scored, window)
        )
        return
    keys = scored["session_key"].drop_nulls().unique().to_list()
    sessions = (
        warehouse.scan_gold("fct_sessions", ["session_key", "purchased"])
        .filter(pl.col("session_key").is_in(keys))
        .collect()
    )
    labelled, unlabelled = performance.label(scored, sessions)
    registry = model_registry.registry()
    references = {}
    for version in labelled["model_version"].drop_nulls().unique().to_list():
        try:
            references[str(version)] = run_test_auc(registry, str(version))
        except Exception as exc:  # noqa: BLE001 - a version not in this registry has no reference
            context.log.warning(f"no test_roc_auc for model version {version}: {exc!r}"[:300])
            references[str(version)] = None
    settings = performance.PerformanceConfig(
        max_relative_drop=config.max_relative_drop,
        consecutive_days=config.consecutive_days,
        min_rows=config.min_rows_per_day,
        min_positives=config.min_positives_per_day,
    )
    result = performance.live_performance(labelled, unlabelled, references, settings)
    run = result.degraded_run()
    reasons = (
        [
            f"live ROC-AUC more than {settings.max_relative_drop:.0%} below the champion's test ROC-AUC "
            f"on {len(run)} consecutive days ({run[0]} to {run[-1]})"
        ]
        if result.failed
        else []
    )
    summary = result.summary()
    days = result.table()
    folder = reports.folder("monitoring", LIVE_PERFORMANCE.to_user_string(), _stamp())
    page = folder / "report.html"
    reliability = [
        {"day": d.day.isoformat(), "mean_score": round(m, 4), "observed_rate": round(o, 4), "rows": n}
        for d in result.days
        for m, o, n in d.reliability
    ]
    page.write_text(
        html.page(
            "purchase_intent: live performance",
            {**summary, **(window.metadata() if window else {}), "reasons": "; ".join(reasons) or "none"},
            [("Per day", days), ("Reliability per day (equal-frequency bins)", reliability)],
        )
    )
    (folder / "report.json").write_text(json.dumps({"summary": summary, "days": days}, indent=2, default=str))
    versions = sorted({d["model_version"] for d in days if d["model_version"]})
    yield dg.MaterializeResult(
        metadata={
            "status": "ok" if result.labelled else "no labelled scores yet (sessions not in gold)",
            **_links(page),
            **_traffic_metadata(rows, scored, window),
            **{k: v for k, v in summary.items() if v is not None},
            "serving_versions": ", ".join(versions),
            "reference_test_roc_auc": {v: references.get(v) for v in versions},
            "days": _md_table(
                days,
                ["day", "rows", "positives", "model_version", "roc_auc", "reference_auc", "ece", "brier", "degraded"],
            ),
            RETRAIN_KEY: result.failed,
            REASONS_KEY: "; ".join(reasons),
        },
        data_version=_data_version(window.metadata(), days),
    )
    yield dg.AssetCheckResult(
        check_name="live_auc_within_5pct_of_champion",
        passed=not result.failed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"reasons": "; ".join(reasons) or "within tolerance", "consecutive_days_degraded": float(len(run))},
    )


defs = dg.Definitions(
    assets=[
        feature_drift_report,
        prediction_drift_report,
        training_serving_skew_report,
        purchase_intent_live_performance,
    ]
)
