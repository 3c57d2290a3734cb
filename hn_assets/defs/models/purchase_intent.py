"""Dagster assets of the purchase-intent use case: train + register the challenger, evaluate it
beside the baselines and the champion, and move the champion alias behind a blocking gate.

The chain's state travels as asset values (training set -> TrainedChallenger -> EvaluatedChallenger,
stored by the IO manager), so each step works on what its upstream produced. The model code
(sklearn, LightGBM, XGBoost, MLflow) is imported inside the assets: loading the code location must
stay fast.
"""

import subprocess
from typing import Any

import dagster as dg

from hn_assets.contracts import PURCHASE_LABEL as LABEL
from hn_assets.defs.resources import ModelRegistryResource, ReportStoreResource, WarehouseResource
from hn_assets.features.training_set import SavedTrainingSet
from hn_assets.models.results import EvaluatedChallenger, TrainedChallenger
from hn_assets.settings import REPO_ROOT

TEST_METRICS = ("roc_auc", "pr_auc", "brier", "ece")
BASELINES = ("rule_cart_add", "logistic_regression")


class TrainingConfig(dg.Config):
    search_budget: int = 4  # hyper-parameter trials per model family
    seed: int = 42
    # Train the candidates on these features only (an ablation); default: the whole feature service.
    feature_subset: list[str] | None = None


def _git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def _split_frame(path):
    import polars as pl

    from hn_assets.models.split import split_with_both_classes

    frame, split = split_with_both_classes(pl.read_parquet(path), LABEL)
    return frame, split.metadata()


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


@dg.asset(
    group_name="models",
    kinds={"lightgbm", "xgboost"},
    description="Trains the baselines (add_to_cart rule, logistic regression) and LightGBM/XGBoost "
    "candidates on a strict temporal split, calibrates them (isotonic, validation window), "
    "logs to MLflow and registers the best as purchase_intent@challenger.",
)
def purchase_intent_model(
    config: TrainingConfig,
    purchase_intent_training_set: SavedTrainingSet,
    mlflow_tracking: dg.ResourceParam[Any],
    model_registry: ModelRegistryResource,
) -> dg.Output[TrainedChallenger]:
    import mlflow
    import polars as pl

    from hn_assets.models.metrics import summary
    from hn_assets.models.registry import log_candidate, log_candidates
    from hn_assets.models.training import to_pandas, train_all

    training_set = purchase_intent_training_set
    frame, split = _split_frame(training_set.path)
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
        log_candidates({m.name: m for m in everyone})
        model_uri = log_candidate(result.best, to_pandas(test.head(3), result.best.features))
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
            "calibrated": result.best.calibrator is not None,  # false when the validation window has one class
            "mlflow_run_id": trained.run_id,
            "registered_version": version,
            "best_candidate": result.best.name,
            "training_set_version": training_set.version,
            **{f"test_{k}": test_metrics[k] for k in TEST_METRICS},
            **split,
            "candidates_valid_roc_auc": {m.name: round(m.valid_auc, 4) for m in everyone},
        },
    )


@dg.asset(
    group_name="evaluation",
    kinds={"report"},
    description="Every candidate, the baselines and the current champion side by side on the challenger's "
    "test window: ROC/PR-AUC with bootstrap intervals, Brier, ECE and reliability, slices, "
    "behavioural tests, SHAP explanations, discount-policy value. HTML + Markdown.",
)
def purchase_intent_evaluation(
    purchase_intent_model: TrainedChallenger,
    model_registry: ModelRegistryResource,
    warehouse: WarehouseResource,
    reports: ReportStoreResource,
) -> dg.Output[EvaluatedChallenger]:
    import polars as pl

    from hn_assets.models.evaluation import evaluate, model_card, render

    trained, registry = purchase_intent_model, model_registry.registry()
    frame, _ = _split_frame(trained.training_set_path)
    countries = warehouse.scan_gold("fct_session_snapshots", ["snapshot_key", "country"]).collect()  # slices
    test = frame.filter(pl.col("split") == "test").join(countries, on="snapshot_key", how="left")
    models = registry.load_candidates(trained.run_id)
    champion = registry.version_for_alias("champion")
    if champion is not None:
        models["champion"] = registry.load_candidate(champion)
    evaluation = evaluate(test, models, trained.challenger, "champion" if champion else None)
    report_dir = reports.folder("purchase_intent", trained.run_id)
    md, html = render(
        evaluation,
        report_dir,
        {
            "challenger": f"purchase_intent v{trained.version} ({trained.challenger})",
            "champion": f"v{champion.version}" if champion else "none yet",
            "test window": f"from {trained.split['test_start']}",
            "rows": str(test.height),
        },
    )
    (report_dir / "model_card.md").write_text(model_card(trained, evaluation))
    registry.log_artifacts(trained.run_id, report_dir, "evaluation")
    evaluated = EvaluatedChallenger(
        trained=trained,
        models=evaluation.models,
        champion_version=champion.version if champion else None,
        flagged_slices=[s["slice"] for s in evaluation.slices if s["flagged"]],
        behaviour_passed=all(b["passed"] for b in evaluation.behaviour.values()),
        report_dir=str(report_dir),
    )
    best = evaluation.models[trained.challenger]
    return dg.Output(
        evaluated,
        metadata={
            "report_html": dg.MetadataValue.path(str(html)),
            "report_markdown": dg.MetadataValue.md(md.read_text()),
            "challenger_version": trained.version,
            "champion_version": evaluated.champion_version,
            "test_roc_auc": best["roc_auc"],
            "test_ece": best["ece"],
            "flagged_slices": evaluated.flagged_slices,
            "behaviour_passed": evaluated.behaviour_passed,
            "policy": evaluation.policy,
        },
    )


@dg.asset(
    group_name="models",
    check_specs=[
        dg.AssetCheckSpec(
            "promotion_gate",
            asset="purchase_intent_champion",
            blocking=True,
            description="challenger beats (or ties) the champion on ROC-AUC, no worse "
            "Brier, no flagged slice, behavioural tests pass",
        )
    ],
    description="Moves the `champion` alias of purchase_intent to the challenger when the promotion gate passes.",
)
def purchase_intent_champion(purchase_intent_evaluation: EvaluatedChallenger, model_registry: ModelRegistryResource):
    from hn_assets.models.gate import decide

    evaluated, registry = purchase_intent_evaluation, model_registry.registry()
    challenger, models = evaluated.trained, evaluated.models
    decision = decide(
        models[challenger.challenger],
        models.get("champion"),
        {k: v for k, v in models.items() if k in BASELINES},
        evaluated.flagged_slices,
        evaluated.behaviour_passed,
    )
    registry.tag_version(
        challenger.version,
        {
            "promotion_decision": "promoted" if decision.promote else "rejected",
            "promotion_reasons": "; ".join(decision.reasons),
        },
    )
    if decision.promote:
        registry.set_alias("champion", challenger.version)
    current = registry.version_for_alias("champion")
    yield dg.MaterializeResult(
        metadata={
            "promoted": decision.promote,
            "reasons": decision.reasons,
            "champion_version": current.version if current else None,
            "challenger_version": challenger.version,
        }
    )
    yield dg.AssetCheckResult(
        check_name="promotion_gate", passed=decision.promote, metadata={"reasons": decision.reasons}
    )


defs = dg.Definitions(assets=[purchase_intent_model, purchase_intent_evaluation, purchase_intent_champion])
