"""Dagster assets of the purchase-intent use case: train + register the challenger, evaluate it
beside the baselines and the champion, and move the champion alias behind a blocking gate."""

import json
import pickle
import subprocess
from datetime import timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from hn_assets.defs.models import tracking
from hn_assets.settings import REPO_ROOT, get_settings

# The model code (sklearn, LightGBM, XGBoost, MLflow) is imported inside the assets: loading the
# code location must stay fast.
LABEL = "purchased"

OWNER = "team:ml"
WEEKLY = dg.FreshnessPolicy.time_window(fail_window=timedelta(days=8), warn_window=timedelta(days=7))
TEST_METRICS = ("roc_auc", "pr_auc", "brier", "ece")


class TrainingConfig(dg.Config):
    search_budget: int = 4   # hyper-parameter trials per model family
    seed: int = 42


def _latest_training_set() -> Path:
    versions = sorted((get_settings().training_sets_dir / "purchase_intent").glob("*/data.parquet"))
    if not versions:
        raise FileNotFoundError("no purchase_intent training set: materialise purchase_intent_training_set first")
    return versions[-1]


def _git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def _run_dir(run_id: str) -> Path:
    return get_settings().home / "models" / "purchase_intent" / run_id


def _split_frame(path: Path) -> tuple[pl.DataFrame, dict]:
    from hn_assets.defs.models.split import split_with_both_classes

    frame, split = split_with_both_classes(pl.read_parquet(path), LABEL)
    return frame, split.metadata()


@dg.asset(group_name="models", kinds={"lightgbm", "xgboost", "mlflow"}, owners=[OWNER],
          deps=[dg.AssetKey("purchase_intent_training_set")], required_resource_keys={"mlflow"},
          freshness_policy=WEEKLY,
          description="Trains the baselines (add_to_cart rule, logistic regression) and LightGBM/XGBoost "
                      "candidates on a strict temporal split, calibrates them (isotonic, validation window), "
                      "logs to MLflow and registers the best as purchase_intent@challenger.")
def purchase_intent_model(context: dg.AssetExecutionContext, config: TrainingConfig) -> dg.MaterializeResult:
    import mlflow

    from hn_assets.defs.models.metrics import summary
    from hn_assets.defs.models.training import to_pandas, train_all

    path = _latest_training_set()
    frame, split = _split_frame(path)
    sides = frame.group_by("split").agg(pl.len().alias("rows"), pl.col(LABEL).sum().alias("positives"))
    usable = sides.filter(pl.col("split").is_in(["train", "test"]) & (pl.col("positives") > 0)
                          & (pl.col("rows") > pl.col("positives")))
    if usable.height < 2:
        raise dg.Failure(description="the training set is too small or too short for a temporal split with a "
                                     f"{split['gap']} gap: {sides.to_dicts()}",
                         metadata={"split": split, "sides": str(sides.to_dicts())})
    manifest = json.loads((path.parent / "manifest.json").read_text())
    result = train_all(frame, budget=config.search_budget, seed=config.seed)
    test = frame.filter(pl.col("split") == "test")
    y = test[LABEL].cast(pl.Int8).to_numpy()
    test_metrics = summary(y, result.best.predict(to_pandas(test, result.best.features)))
    run_id = mlflow.active_run().info.run_id
    folder = _run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "models.pkl", "wb") as handle:
        pickle.dump({m.name: m for m in result.baselines + result.candidates}, handle)
    tags = {"training_set_version": manifest["version"], "feature_service": manifest["feature_service"],
            "git_commit": _git_commit(), "best_candidate": result.best.name}
    mlflow.set_tags(tags)
    mlflow.log_params({"search_budget": config.search_budget, "seed": config.seed, **split,
                       "training_set_rows": manifest["rows"], "training_set_start": manifest["start"],
                       "training_set_end": manifest["end"], "training_set_path": str(path),
                       **{f"best_{k}": v for k, v in result.best.params.items()}})
    mlflow.log_metrics({f"test_{k}": test_metrics[k] for k in TEST_METRICS})
    mlflow.log_metrics({f"valid_roc_auc_{m.name}": m.valid_auc for m in result.baselines + result.candidates})
    model_uri = tracking.log_candidate(result.best, folder, to_pandas(test.head(3), result.best.features))
    version = tracking.register(model_uri, "challenger", {**tags, "run_id": run_id})
    (folder / "bundle.json").write_text(json.dumps({"run_id": run_id, "version": version, "challenger": result.best.name,
                                                    "training_set": str(path), "split": split}))
    mlflow.end_run()  # the evaluation logs into this run through the client, after it has ended
    return dg.MaterializeResult(metadata={
        "split_sizes": str(sides.sort("split").to_dicts()),
        "calibrated": result.best.calibrator is not None,  # false when the validation window has one class
        "mlflow_run_id": run_id, "registered_version": version, "best_candidate": result.best.name,
        **{f"test_{k}": test_metrics[k] for k in TEST_METRICS}, **split,
        "candidates_valid_roc_auc": {m.name: round(m.valid_auc, 4) for m in result.baselines + result.candidates}})


@dg.asset(group_name="evaluation", kinds={"report", "mlflow"}, owners=[OWNER], deps=[purchase_intent_model],
          freshness_policy=WEEKLY,
          description="Every candidate, the baselines and the current champion side by side on the challenger's "
                      "test window: ROC/PR-AUC with bootstrap intervals, Brier, ECE and reliability, slices, "
                      "behavioural tests, SHAP explanations, discount-policy value. HTML + Markdown.")
def purchase_intent_evaluation(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    from mlflow.tracking import MlflowClient

    from hn_assets.defs.models.evaluation import evaluate, render

    tracking.use_platform_tracking()
    challenger = tracking.version_for_alias("challenger")
    folder = _run_dir(challenger.run_id)
    bundle = json.loads((folder / "bundle.json").read_text())
    frame, _ = _split_frame(Path(bundle["training_set"]))
    countries = pl.read_parquet(get_settings().gold_dir / "fct_session_snapshots" / "*.parquet",
                                columns=["snapshot_key", "country"])  # for the country slices
    test = frame.filter(pl.col("split") == "test").join(countries, on="snapshot_key", how="left")
    with open(folder / "models.pkl", "rb") as handle:
        models = pickle.load(handle)
    champion = tracking.version_for_alias("champion")
    if champion is not None:
        models["champion"] = tracking.load_candidate(champion)
    evaluation = evaluate(test, models, bundle["challenger"], "champion" if champion else None)
    report_dir = get_settings().reports_dir / "purchase_intent" / challenger.run_id
    md, html = render(evaluation, report_dir, {
        "challenger": f"purchase_intent v{challenger.version} ({bundle['challenger']})",
        "champion": f"v{champion.version}" if champion else "none yet",
        "test window": f"from {bundle['split']['test_start']}", "rows": str(test.height)})
    results = {"models": evaluation.models, "flagged_slices": [s["slice"] for s in evaluation.slices if s["flagged"]],
               "behaviour_passed": all(b["passed"] for b in evaluation.behaviour.values()),
               "challenger": bundle["challenger"], "version": challenger.version}
    (report_dir / "results.json").write_text(json.dumps(results, default=str))
    (report_dir / "model_card.md").write_text(model_card(challenger.version, bundle, evaluation))
    MlflowClient().log_artifacts(challenger.run_id, str(report_dir), "evaluation")
    best = evaluation.models[bundle["challenger"]]
    return dg.MaterializeResult(metadata={
        "report_html": dg.MetadataValue.path(str(html)), "report_markdown": dg.MetadataValue.md(md.read_text()),
        "test_roc_auc": best["roc_auc"], "test_ece": best["ece"], "flagged_slices": results["flagged_slices"],
        "behaviour_passed": results["behaviour_passed"], "policy": evaluation.policy})


@dg.asset(group_name="models", kinds={"mlflow"}, owners=[OWNER], deps=[purchase_intent_evaluation],
          freshness_policy=WEEKLY,
          check_specs=[dg.AssetCheckSpec("promotion_gate", asset="purchase_intent_champion", blocking=True,
                                         description="challenger beats (or ties) the champion on ROC-AUC, no worse "
                                                     "Brier, no flagged slice, behavioural tests pass")],
          description="Moves the `champion` alias of purchase_intent to the challenger when the promotion gate passes.")
def purchase_intent_champion(context: dg.AssetExecutionContext):
    from mlflow.tracking import MlflowClient

    from hn_assets.defs.models.gate import decide

    tracking.use_platform_tracking()
    challenger = tracking.version_for_alias("challenger")
    results = json.loads((get_settings().reports_dir / "purchase_intent" / challenger.run_id / "results.json").read_text())
    models = results["models"]
    champion = tracking.version_for_alias("champion")
    baselines = {k: v for k, v in models.items() if k in ("rule_cart_add", "logistic_regression")}
    decision = decide(models[results["challenger"]], models.get("champion") if champion else None, baselines,
                      results["flagged_slices"], results["behaviour_passed"])
    client = MlflowClient()
    client.set_model_version_tag(tracking.REGISTERED_MODEL, challenger.version, "promotion_decision",
                                 "promoted" if decision.promote else "rejected")
    client.set_model_version_tag(tracking.REGISTERED_MODEL, challenger.version, "promotion_reasons",
                                 "; ".join(decision.reasons))
    if decision.promote:
        client.set_registered_model_alias(tracking.REGISTERED_MODEL, "champion", challenger.version)
    current = tracking.version_for_alias("champion")
    yield dg.MaterializeResult(metadata={"promoted": decision.promote, "reasons": decision.reasons,
                                         "champion_version": current.version if current else None,
                                         "challenger_version": challenger.version})
    yield dg.AssetCheckResult(check_name="promotion_gate", passed=decision.promote,
                              metadata={"reasons": decision.reasons})


def model_card(version: str, bundle: dict, evaluation) -> str:
    best = evaluation.models[bundle["challenger"]]
    slices = "\n".join(f"| {s['slice']} | {s['positives']} | {s['roc_auc'] if s['roc_auc'] is None else round(s['roc_auc'], 4)} |"
                       for s in evaluation.slices)
    return f"""# Model card: purchase_intent v{version}

**Intended use.** Score a live web-shop session before checkout with the calibrated probability that it
ends in a purchase; drive on-site nudges and the discount policy (offer only where the expected gain
is positive). Not for decisions about individuals outside the shop, credit, or pricing per person.

**Model.** {bundle['challenger']} (LightGBM/XGBoost family), isotonic calibration on the validation window,
monotone in cart adds. Features: feature service purchase_intent_v1 (in-session activity, user history,
last viewed product). Training set: {bundle['training_set']}.

**Data window.** Temporal split: validation from {bundle['split']['valid_start']}, test from
{bundle['split']['test_start']}, {bundle['split']['gap']} gap at each boundary.

**Test metrics.** ROC-AUC {best['roc_auc']:.4f}, PR-AUC {best['pr_auc']:.4f}, Brier {best['brier']:.4f},
ECE {best['ece']:.4f}.

| slice | positives | ROC-AUC |
|---|---|---|
{slices}

**Limitations and fairness.** Trained on the H.N store's simulated or loaded data only; anonymous visitors
have no history features, so their scores rest on in-session behaviour; visitors without analytics
consent are linkable within a day only. Slices are checked for a credible AUC drop (>= 30 positives and the
upper bootstrap bound below 95 % of the overall AUC); no protected attributes are used as features.
"""


MODEL_ASSETS = [purchase_intent_model, purchase_intent_evaluation, purchase_intent_champion]
