"""Dagster assets of the purchase-intent use case: train + register the challenger, estimate the
discount's uplift, evaluate the challenger beside the baselines and the champion, and move the
champion alias behind the promotion gate.

The chain's state travels as asset values (training set -> TrainedChallenger -> EvaluatedChallenger,
stored by the IO manager), so each step works on what its upstream produced. The model code
(sklearn, LightGBM, XGBoost, MLflow) is imported inside the assets: loading the code location must
stay fast.

A correct rejection is not an error: the champion asset then emits no materialisation (nothing
downstream rebuilds, its data version stays the champion's), records an observation and a run tag
saying "rejected", and fails the `promotion_gate` check with WARN severity, so the run succeeds. A
refusal for missing evidence (fail closed) fails the check with ERROR severity: the run fails, as an
operational problem should. A crash fails the run without a check result.
"""

import subprocess
from typing import Any

import dagster as dg

from hn_assets.contracts import PURCHASE_LABEL as LABEL
from hn_assets.defs.resources import (
    ModelRegistryResource,
    ReportStoreResource,
    SimulatorTruthResource,
    WarehouseResource,
)
from hn_assets.defs.transform.assets import DUCKDB_POOL
from hn_assets.features.training_set import SavedTrainingSet
from hn_assets.models.results import EvaluatedChallenger, TrainedChallenger, TrainedUplift
from hn_assets.settings import REPO_ROOT

TEST_METRICS = ("roc_auc", "pr_auc", "brier", "ece")
UPLIFT_ARTIFACT = "uplift"
CHAMPION_KEY = dg.AssetKey("purchase_intent_champion")


class TrainingConfig(dg.Config):
    search_budget: int = 4  # hyper-parameter trials per model family
    seed: int = 42
    # Train the candidates on these features only (an ablation); default: the whole feature service.
    feature_subset: list[str] | None = None


class DiscountPolicyConfig(dg.Config):
    """The discount's economics, which the uplift model's policy optimises (defaults: docs/models.md)."""

    margin_share: float = 0.25  # margin as a share of the basket value
    discount_share: float = 0.10  # the offer: 10 % off
    basket_value: float = 900.0  # EUR, a typical laptop basket


class EvaluationConfig(dg.Config):
    """Bootstrap settings of the evaluation (defaults: docs/models.md)."""

    bootstrap_rounds: int = 200
    interval_level: float = 0.95


class PromotionConfig(dg.Config):
    """The promotion gate's thresholds (hn_assets/models/gate.py GateConfig; defaults: docs/models.md)."""

    ece_ceiling: float = 0.02
    baseline_margin: float = 0.005
    floor_tolerance_auc: float = 0.005
    floor_tolerance_brier: float = 0.0005
    slice_min_positives: int = 30
    slice_auc_floor: float = 0.60
    slice_tolerance_auc: float = 0.01


def _git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def _session_spans(warehouse: WarehouseResource):
    from hn_assets.models.split import SPAN_COLUMNS

    return warehouse.scan_gold("fct_sessions", SPAN_COLUMNS).collect()


def _require_usable_split(frame, split: dict) -> str:
    import polars as pl

    sides = frame.group_by("split").agg(pl.len().alias("rows"), pl.col(LABEL).sum().alias("positives"))
    usable = sides.filter(
        pl.col("split").is_in(["train", "test"]) & (pl.col("positives") > 0) & (pl.col("rows") > pl.col("positives"))
    )
    if usable.height < 2:
        raise dg.Failure(
            description="the training set is too small or too short for a temporal split with a "
            f"{split['gap']} gap: {sides.to_dicts()}",
            metadata={"split": split, "sides": str(sides.to_dicts())},
        )
    return str(sides.sort("split").to_dicts())


def _as_trained(trained: TrainedChallenger, registry):
    """The training set with each row's side exactly as the model was trained and tested."""
    import polars as pl

    from hn_assets.models.registry import SPLIT_ARTIFACT

    sides = registry.load_frame(trained.run_id, SPLIT_ARTIFACT)
    return pl.read_parquet(trained.training_set_path).join(sides, on="session_key", how="inner")


@dg.asset(
    group_name="models",
    kinds={"lightgbm", "xgboost"},
    description="Trains the baselines (add_to_cart rule, logistic regression) and LightGBM/XGBoost "
    "candidates on a strict temporal split (sessions placed by their real end from fct_sessions), "
    "calibrates them (isotonic, validation window), logs to MLflow (sklearn flavour, signature) and "
    "registers the best as purchase_intent@challenger.",
)
def purchase_intent_model(
    config: TrainingConfig,
    purchase_intent_training_set: SavedTrainingSet,
    mlflow_tracking: dg.ResourceParam[Any],
    model_registry: ModelRegistryResource,
    warehouse: WarehouseResource,
) -> dg.Output[TrainedChallenger]:
    import mlflow
    import polars as pl

    from hn_assets.models.metrics import summary
    from hn_assets.models.registry import CANDIDATES_ARTIFACT, SPLIT_ARTIFACT, log_candidate, log_frame, log_pickle
    from hn_assets.models.split import split_with_both_classes
    from hn_assets.models.training import to_pandas, train_all

    training_set = purchase_intent_training_set
    frame, chosen = split_with_both_classes(pl.read_parquet(training_set.path), LABEL, _session_spans(warehouse))
    split = chosen.metadata()
    sizes = _require_usable_split(frame, split)
    result = train_all(frame, budget=config.search_budget, seed=config.seed, features=config.feature_subset)
    test = frame.filter(pl.col("split") == "test")
    y = test[LABEL].cast(pl.Int8).to_numpy()
    test_metrics = summary(y, result.best.predict(to_pandas(test, result.best.features)))
    tags = {
        "training_set_version": training_set.version,
        "feature_service": training_set.feature_service,
        "git_commit": _git_commit(),
        "best_candidate": result.best.name,
    }
    everyone = result.baselines + result.candidates
    with mlflow_tracking.run() as run:
        mlflow.set_tags(tags)
        mlflow.log_params(
            {
                "search_budget": config.search_budget,
                "seed": config.seed,
                **split,
                "training_set_rows": training_set.rows,
                "training_set_start": str(training_set.start),
                "training_set_end": str(training_set.end),
                "training_set_path": str(training_set.path),
                "features": ",".join(result.best.features),
                **{f"best_{k}": v for k, v in result.best.params.items()},
            }
        )
        mlflow.log_metrics({f"test_{k}": test_metrics[k] for k in TEST_METRICS})
        mlflow.log_metrics({f"valid_roc_auc_{m.name}": m.valid_auc for m in everyone})
        log_pickle({m.name: m for m in everyone}, CANDIDATES_ARTIFACT)
        log_frame(frame.select("session_key", "split").unique().sort("session_key"), SPLIT_ARTIFACT)
        model_uri = log_candidate(result.best, to_pandas(test.head(5), result.best.features))
    version = model_registry.registry().register(model_uri, "challenger", {**tags, "run_id": run.info.run_id})
    trained = TrainedChallenger(
        run_id=run.info.run_id,
        version=version,
        challenger=result.best.name,
        training_set_version=training_set.version,
        training_set_path=str(training_set.path),
        feature_service=training_set.feature_service,
        split=split,
        features=list(result.best.features),
    )
    return dg.Output(
        trained,
        metadata={
            "split_sizes": sizes,
            "calibrated": result.best.calibrated,  # false when the validation window has one class
            "mlflow_run_id": trained.run_id,
            "registered_version": version,
            "model_uri": f"models:/{model_registry.registry().name}/{version}",
            "best_candidate": result.best.name,
            "training_set_version": training_set.version,
            **{f"test_{k}": test_metrics[k] for k in TEST_METRICS},
            **split,
            "candidates_valid_roc_auc": {m.name: round(m.valid_auc, 4) for m in everyone},
        },
    )


@dg.asset(
    group_name="models",
    kinds={"lightgbm"},
    pool=DUCKDB_POOL,  # reads the silver clickstream (offer pages) read-only for a moment
    description="The discount's uplift: an X-learner on LightGBM fitted on the store's randomised "
    "offers (sessions that opened on an offer page) of the training window, pre-treatment covariates "
    "only; logged into the training run. Never reads the simulator's ground truth.",
)
def discount_uplift_model(
    config: DiscountPolicyConfig,
    purchase_intent_model: TrainedChallenger,
    model_registry: ModelRegistryResource,
    warehouse: WarehouseResource,
) -> dg.Output[TrainedUplift]:
    import pickle
    import tempfile
    from pathlib import Path

    import polars as pl

    from hn_assets.models.uplift import OFFERED_SESSIONS_SQL, PolicyConfig, fit_uplift, session_table

    trained, registry = purchase_intent_model, model_registry.registry()
    with warehouse.read_only() as connection:
        offered = pl.DataFrame(
            connection.execute(OFFERED_SESSIONS_SQL).fetchall(), schema=["session_key"], orient="row"
        )
    sessions = warehouse.scan_gold("fct_sessions", ["session_key", "client_session_id", "country"]).collect()
    table = session_table(_as_trained(trained, registry), sessions, offered)
    model = fit_uplift(table, PolicyConfig(config.margin_share, config.discount_share, config.basket_value))
    valid = table.filter(pl.col("split") == "valid")
    counts = table.group_by("split").agg(pl.len().alias("sessions"), pl.col("treated").sum().alias("treated"))
    sizes = {f"{r['split']}_{k}": int(r[k]) for r in counts.to_dicts() for k in ("sessions", "treated")}
    reason = "fitted" if model else "too few randomised offers (or buyers among them) in the training window"
    with tempfile.TemporaryDirectory() as tmp:
        table.write_parquet(Path(tmp) / "sessions.parquet")
        if model:
            Path(tmp, "xlearner.pkl").write_bytes(pickle.dumps(model))
        registry.log_artifacts(trained.run_id, Path(tmp), UPLIFT_ARTIFACT)
    uplift = TrainedUplift(trained.run_id, f"{UPLIFT_ARTIFACT}/xlearner.pkl" if model else None, reason, sizes)
    return dg.Output(
        uplift,
        metadata={
            "estimated": model is not None,
            "reason": reason,
            **sizes,
            "treated_share_train": model.propensity if model else None,
            "offer_cutoff_eur": _finite(model.offer_cutoff) if model else None,
            "offer_share_valid": float(model.offers(valid).mean()) if model and valid.height else None,
        },
    )


def _finite(value: float) -> float | str:
    """Metadata cannot hold an infinite cutoff: say what it means instead."""
    return value if abs(value) != float("inf") else ("offer to no one" if value > 0 else "offer to everyone")


def _registered(registry, trained: TrainedChallenger):
    """Challenger, champion and floor model as serving loads them; a champion (or floor) that cannot
    be loaded is reported as missing, which the gate turns into a refusal (fail closed)."""
    registered, errors = {"challenger": registry.load_version(trained.version)}, {}
    champion = registry.version_for_alias("champion")
    if champion is not None:
        try:
            registered["champion"] = registry.load_alias("champion")
        except Exception as exc:  # noqa: BLE001 - any failure to load means no metrics: fail closed
            errors["champion"] = f"cannot load models:/{registry.name}@champion: {exc!r}"[:500]
    floor = registry.floor_version()
    if floor is not None and champion is not None and floor != str(champion.version):
        try:
            registered["floor"] = registry.load_version(floor)
        except Exception as exc:  # noqa: BLE001
            errors["floor"] = f"cannot load floor v{floor}: {exc!r}"[:500]
    return registered, champion, floor, errors


def _uplift_results(uplift: TrainedUplift, registry, truth, cfg: EvaluationConfig) -> dict:
    import polars as pl

    from hn_assets.models.uplift import evaluate_uplift, truth_check

    if uplift.artifact is None:
        return {"reason": uplift.reason}
    model = registry.load_pickle(uplift.run_id, uplift.artifact)
    test = registry.load_frame(uplift.run_id, f"{UPLIFT_ARTIFACT}/sessions.parquet").filter(pl.col("split") == "test")
    return {
        "estimate": evaluate_uplift(model, test, rounds=cfg.bootstrap_rounds),
        # A labelled check, only when the simulator's truth file exists (never used by training).
        "truth": truth_check(model, test, truth) if truth is not None else None,
    }


@dg.asset(
    group_name="evaluation",
    kinds={"report"},
    description="The registered challenger, every candidate, the baselines and the champion (loaded "
    "from the registry as serving loads it) on the challenger's test window: ROC/PR-AUC, Brier and ECE "
    "with paired session-bootstrap intervals, reliability, lift, slices vs the champion, behavioural "
    "tests, SHAP, the uplift estimate and discount-policy values. Self-contained HTML + Markdown.",
)
def purchase_intent_evaluation(
    config: EvaluationConfig,
    purchase_intent_model: TrainedChallenger,
    discount_uplift_model: TrainedUplift,
    model_registry: ModelRegistryResource,
    warehouse: WarehouseResource,
    reports: ReportStoreResource,
    simulator_truth: SimulatorTruthResource,
) -> dg.Output[EvaluatedChallenger]:
    import polars as pl

    from hn_assets.models import evaluation as ev
    from hn_assets.models.report import model_card, render

    trained, registry = purchase_intent_model, model_registry.registry()
    countries = warehouse.scan_gold("fct_session_snapshots", ["snapshot_key", "country"]).collect()  # slices
    test = (
        _as_trained(trained, registry).filter(pl.col("split") == "test").join(countries, on="snapshot_key", how="left")
    )
    registered, champion, floor, errors = _registered(registry, trained)
    evaluation = ev.evaluate(
        test,
        registry.load_candidates(trained.run_id),
        trained.challenger,
        registered,
        champion_version=str(champion.version) if champion else None,
        champion_error=errors.get("champion"),
        floor_version=floor if champion else None,
        cfg=ev.EvaluationConfig(config.bootstrap_rounds, config.interval_level),
    )
    evaluation.uplift = _uplift_results(discount_uplift_model, registry, simulator_truth.sessions(), config)
    report_dir = reports.folder("purchase_intent", trained.run_id)
    header = {
        "challenger": f"purchase_intent v{trained.version} ({trained.challenger})",
        "champion": f"v{champion.version}" if champion else "none yet",
        "test window": f"from {trained.split['test_start']}",
        "training set": trained.training_set_version,
        "MLflow run": trained.run_id,
    }
    md, html = render(evaluation, None, report_dir, header)
    (report_dir / "model_card.md").write_text(model_card(trained, evaluation))
    registry.log_artifacts(trained.run_id, report_dir, "evaluation")
    best = evaluation.models["challenger"]
    return dg.Output(
        EvaluatedChallenger(trained, evaluation, str(champion.version) if champion else None, str(report_dir), header),
        metadata={
            "report_html": dg.MetadataValue.path(str(html)),
            "report_url": dg.MetadataValue.url(html.resolve().as_uri()),
            "challenger_version": trained.version,
            "champion_version": str(champion.version) if champion else None,
            "test_roc_auc": best["roc_auc"],
            "test_roc_auc_ci": list(best["roc_auc_ci"]),
            "test_ece": best["ece"],
            "interval_width_roc_auc": {u: round(w["roc_auc"], 5) for u, w in evaluation.widths.items()},
            "behaviour": {k: v["passed"] for k, v in evaluation.behaviour.items()},
            "load_errors": errors,
            "uplift": _uplift_summary(evaluation.uplift),
        },
    )


def _uplift_summary(uplift: dict) -> dict:
    if "estimate" not in uplift:
        return uplift
    est, truth = uplift["estimate"], uplift.get("truth") or {}
    return {
        "qini_x_learner": est["x_learner"]["qini"],
        "aipw_average_uplift": [est["aipw"][k] for k in ("estimate", "low", "high")],
        "true_average_uplift": truth.get("true_average_uplift"),
        "realised_value": truth.get("realised_value"),
    }


def _decision_metadata(decision, evaluated: EvaluatedChallenger, champion_version) -> dict:
    return {
        "decision": decision.outcome,
        "reasons": decision.reasons,
        "failed_rules": [c.rule for c in decision.checks if not c.passed],
        "champion_version": champion_version,
        "challenger_version": evaluated.trained.version,
        "report_html": dg.MetadataValue.path(str(evaluated.report_dir) + "/report.html"),
    }


@dg.asset(
    group_name="models",
    output_required=False,
    check_specs=[
        dg.AssetCheckSpec(
            "promotion_gate",
            asset="purchase_intent_champion",
            blocking=True,
            description="The challenger beats both baselines, is not credibly worse than the champion on "
            "ROC-AUC, Brier and ECE (paired session bootstrap), keeps ECE under the ceiling, stays above the "
            "walk-down floor, no slice credibly worse than the champion's, behavioural tests pass. Failed "
            "with WARN when rightly rejected, with ERROR when evidence is missing (fail closed).",
        )
    ],
    description="Moves the `champion` alias of purchase_intent to the challenger when the promotion gate "
    "passes; materialises only then (data version = the champion's version), so nothing downstream "
    "rebuilds when the alias did not move.",
)
def purchase_intent_champion(
    context: dg.AssetExecutionContext,
    config: PromotionConfig,
    purchase_intent_evaluation: EvaluatedChallenger,
    model_registry: ModelRegistryResource,
):
    from pathlib import Path

    from hn_assets.models.gate import GateConfig, decide, floor_after
    from hn_assets.models.report import render

    evaluated, registry = purchase_intent_evaluation, model_registry.registry()
    evaluation, challenger = evaluated.evaluation, evaluated.trained
    decision = decide(evaluation.evidence, GateConfig(**config.model_dump()))
    render(evaluation, decision, Path(evaluated.report_dir), evaluated.report_header)
    registry.log_artifacts(challenger.run_id, Path(evaluated.report_dir), "evaluation")
    registry.tag_version(
        challenger.version,
        {"promotion_decision": decision.outcome, "promotion_reasons": "; ".join(decision.reasons)[:4900]},
    )
    if decision.promote:
        registry.set_alias("champion", challenger.version)
        e = evaluation.evidence
        floor = floor_after(True, (challenger.version, e.challenger), (e.floor_version, e.floor) if e.floor else None)
        registry.set_floor_version(floor[0])
        yield dg.MaterializeResult(
            metadata={**_decision_metadata(decision, evaluated, challenger.version), "floor_version": floor[0]},
            data_version=dg.DataVersion(f"purchase_intent/{challenger.version}"),
        )
    else:
        context.instance.add_run_tags(context.run_id, {"purchase_intent/promotion": decision.outcome.split(" ")[0]})
        context.log_event(
            dg.AssetObservation(
                CHAMPION_KEY, metadata=_decision_metadata(decision, evaluated, evaluated.champion_version)
            )
        )
    yield dg.AssetCheckResult(
        check_name="promotion_gate",
        passed=decision.promote,
        severity=dg.AssetCheckSeverity.ERROR if decision.fail_closed else dg.AssetCheckSeverity.WARN,
        metadata={"decision": decision.outcome, "reasons": decision.reasons},
    )


@dg.asset_check(
    asset=purchase_intent_champion,
    additional_ins={"purchase_intent_evaluation": dg.AssetIn("purchase_intent_evaluation")},
    description="`models:/purchase_intent@champion` loads with mlflow.pyfunc in a fresh interpreter (python -I, "
    "empty working directory, no platform code) and its test-window scores equal the platform's own.",
)
def champion_loads_and_scores_as_registered(
    purchase_intent_evaluation: EvaluatedChallenger, model_registry: ModelRegistryResource
) -> dg.AssetCheckResult:
    import time

    import numpy as np

    from hn_assets.models.reproduce import platform_test_scores, scores_in_fresh_process

    registry, trained = model_registry.registry(), purchase_intent_evaluation.trained
    champion = registry.version_for_alias("champion")
    if champion is None or str(champion.version) != trained.version:  # run on its own after a rejection
        return dg.AssetCheckResult(
            passed=False,
            metadata={"reason": f"the champion is not the last evaluated challenger v{trained.version}"},
        )
    rows, platform = platform_test_scores(registry, trained)
    started = time.perf_counter()
    fresh = scores_in_fresh_process(registry.tracking_uri, f"models:/{registry.name}@champion", rows)
    return dg.AssetCheckResult(
        passed=bool(np.array_equal(fresh, platform)),
        metadata={
            "model_uri": f"models:/{registry.name}@champion",
            "champion_version": trained.version,
            "test_rows": len(rows),
            "max_abs_difference": float(np.max(np.abs(fresh - platform))) if len(rows) else 0.0,
            "fresh_process_seconds": round(time.perf_counter() - started, 1),
        },
    )


defs = dg.Definitions(
    assets=[purchase_intent_model, discount_uplift_model, purchase_intent_evaluation, purchase_intent_champion],
    asset_checks=[champion_loads_and_scores_as_registered],
)
