"""The purchase-intent chain on a simulated store, through Dagster, MLflow and the real models."""

import json

import dagster as dg
import pytest

from hn_assets.simulator import SimulationConfig, simulate

pytestmark = pytest.mark.e2e

STORE = SimulationConfig(seed=11, days=14, users=900, products=40, sessions_per_day=320, dirty_rate=0.01)


def test_training_chain_registers_a_calibrated_champion_with_its_report(hn_home):
    from mlflow.tracking import MlflowClient

    from hn_assets.definitions import defs
    from hn_assets.defs.models import tracking

    simulate(STORE, hn_home)
    with dg.instance_for_test() as instance:
        assert defs.resolve_job_def("daily_batch").execute_in_process(instance=instance).success
        result = defs.resolve_job_def("purchase_intent_training").execute_in_process(
            instance=instance, run_config={"ops": {"purchase_intent_model": {"config": {"search_budget": 1}}}})
    assert result.success
    gate = next(c for c in result.get_asset_check_evaluations() if c.check_name == "promotion_gate")
    assert gate.passed

    tracking.use_platform_tracking()
    client = MlflowClient()
    champion = client.get_model_version_by_alias(tracking.REGISTERED_MODEL, "champion")
    challenger = client.get_model_version_by_alias(tracking.REGISTERED_MODEL, "challenger")
    assert champion.version == challenger.version
    assert champion.tags["promotion_decision"] == "promoted"
    run = client.get_run(champion.run_id)
    for metric in ("test_roc_auc", "test_pr_auc", "test_brier", "test_ece"):
        assert metric in run.data.metrics
    assert run.data.metrics["test_roc_auc"] > 0.75
    assert run.data.tags["training_set_version"] and run.data.tags["feature_service"] == "purchase_intent_v1"
    artifacts = {a.path for a in client.list_artifacts(champion.run_id, "evaluation")}
    assert {"evaluation/report.html", "evaluation/report.md", "evaluation/model_card.md"} <= artifacts

    report_dir = hn_home / "reports" / "purchase_intent" / champion.run_id
    results = json.loads((report_dir / "results.json").read_text())
    assert results["behaviour_passed"]  # invariance, direction, minimum functionality on the real model
    best = results["models"][results["challenger"]]
    assert best["roc_auc"] > results["models"]["rule_cart_add"]["roc_auc"]
    assert best["ece"] < 0.05

    # A deliberately worse challenger (the add_to_cart rule) is refused and the champion stays.
    import pickle

    import mlflow

    from hn_assets.defs.models.purchase_intent import _run_dir, purchase_intent_champion

    with open(_run_dir(champion.run_id) / "models.pkl", "rb") as handle:
        rule = pickle.load(handle)["rule_cart_add"]
    mlflow.set_experiment(tracking.EXPERIMENT)
    with mlflow.start_run() as run:
        uri = tracking.log_candidate(rule, _run_dir(run.info.run_id), None)
    worse = tracking.register(uri, "challenger", {"purpose": "gate test"})
    worse_results = {**results, "challenger": "rule_cart_add"}
    worse_dir = hn_home / "reports" / "purchase_intent" / run.info.run_id
    worse_dir.mkdir(parents=True)
    (worse_dir / "results.json").write_text(json.dumps(worse_results))
    with dg.instance_for_test() as instance:
        refused = dg.materialize([purchase_intent_champion], instance=instance, raise_on_error=False)
    gate = next(c for c in refused.get_asset_check_evaluations() if c.check_name == "promotion_gate")
    assert not gate.passed
    assert client.get_model_version_by_alias(tracking.REGISTERED_MODEL, "champion").version == champion.version
    assert client.get_model_version(tracking.REGISTERED_MODEL, worse).tags["promotion_decision"] == "rejected"
