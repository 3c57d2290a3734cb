"""The purchase-intent chain on a simulated store, through Dagster, MLflow and the real models.

Public APIs only: the jobs, their run config, the asset values they hand on, and the MLflow registry.
"""

import dagster as dg
import pytest

from hn_assets.simulator import SimulationConfig, simulate

pytestmark = pytest.mark.e2e

STORE = SimulationConfig(seed=11, days=14, users=900, products=40, sessions_per_day=320, dirty_rate=0.01)
# An ablation that must lose: the candidates see two in-session counts and nothing else.
WEAK_FEATURES = ["events_so_far", "cart_adds_so_far"]


def _train(instance, **config):
    from hn_assets.definitions import defs

    run_config = {"ops": {"purchase_intent_model": {"config": {"search_budget": 1, **config}}}}
    return (
        defs()
        .resolve_job_def("purchase_intent_training")
        .execute_in_process(instance=instance, run_config=run_config, raise_on_error=False)
    )


def _gate(result):
    return next(c for c in result.get_asset_check_evaluations() if c.check_name == "promotion_gate")


def test_training_chain_registers_a_calibrated_champion_and_refuses_a_worse_challenger(hn_home):
    from hn_assets.definitions import defs
    from hn_assets.defs.resources import ModelRegistryResource

    simulate(STORE, hn_home)
    registry = ModelRegistryResource().registry()
    client = registry.client()
    with dg.instance_for_test() as instance:
        assert defs().resolve_job_def("daily_batch").execute_in_process(instance=instance).success
        assert registry.version_for_alias("champion") is None  # nothing registered yet: none, not an error
        first = _train(instance)
        assert first.success and _gate(first).passed

        champion = registry.version_for_alias("champion")
        trained = first.asset_value(dg.AssetKey("purchase_intent_model"))
        assert champion.version == registry.version_for_alias("challenger").version == trained.version
        assert champion.tags["promotion_decision"] == "promoted"
        run = client.get_run(champion.run_id)
        for metric in ("test_roc_auc", "test_pr_auc", "test_brier", "test_ece"):
            assert metric in run.data.metrics
        assert run.data.metrics["test_roc_auc"] > 0.75
        assert run.data.tags["training_set_version"] == trained.training_set_version
        assert run.data.tags["feature_service"] == "purchase_intent_v1"
        assert run.info.status == "FINISHED"
        artifacts = {a.path for a in client.list_artifacts(champion.run_id, "evaluation")}
        assert {"evaluation/report.html", "evaluation/report.md", "evaluation/model_card.md"} <= artifacts

        evaluated = first.asset_value(dg.AssetKey("purchase_intent_evaluation"))
        assert evaluated.trained == trained and evaluated.champion_version is None
        assert evaluated.behaviour_passed  # invariance, direction, minimum functionality on the real model
        best = evaluated.models[trained.challenger]
        assert best["roc_auc"] > evaluated.models["rule_cart_add"]["roc_auc"]
        assert best["ece"] < 0.05

        # A deliberately worse challenger (two features only) is compared with the champion and refused.
        second = _train(instance, feature_subset=WEAK_FEATURES)
        assert not _gate(second).passed
        worse = second.asset_value(dg.AssetKey("purchase_intent_model"))
        compared = second.asset_value(dg.AssetKey("purchase_intent_evaluation"))
        assert worse.features == WEAK_FEATURES and compared.champion_version == champion.version
        assert compared.models[worse.challenger]["roc_auc"] < compared.models["champion"]["roc_auc"]
    assert registry.version_for_alias("champion").version == champion.version
    assert registry.version_for_alias("challenger").version == worse.version != champion.version
    refused = client.get_model_version(registry.name, worse.version)
    assert refused.tags["promotion_decision"] == "rejected"
    assert "below champion" in refused.tags["promotion_reasons"]
