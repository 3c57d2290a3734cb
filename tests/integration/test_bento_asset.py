"""`purchase_intent_bento` through Dagster on a small simulated store: the training chain promotes a
champion, the asset imports it and builds the Bento offline, the blocking smoke check serves that
Bento on a free port and passes; materialising again with the same champion builds nothing."""

import dagster as dg
import pytest

from hn_assets.online.session import SNAPSHOT_FEATURES
from hn_assets.simulator import SimulationConfig, simulate

pytestmark = pytest.mark.integration

# Small, but long enough for the temporal split of the training chain.
STORE = SimulationConfig(seed=5, days=21, users=700, products=40, sessions_per_day=260, dirty_rate=0.01)
SESSION_ONLY = list(SNAPSHOT_FEATURES)  # the in-session view only (no history, no product)
BENTO = dg.AssetKey("purchase_intent_bento")


def _smoke(result):
    return next(c for c in result.get_asset_check_evaluations() if c.check_name == "bento_smoke")


def _bentos(home) -> list[str]:
    folder = home / "bentoml" / "bentos" / "purchase_intent"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.exists() else []


def test_bento_is_built_for_the_champion_smoke_checked_and_not_rebuilt(hn_home):
    from hn_assets.definitions import defs
    from hn_assets.defs.resources import ModelRegistryResource

    simulate(STORE, hn_home)
    definitions = defs()
    with dg.instance_for_test() as instance:
        assert definitions.resolve_job_def("daily_batch").execute_in_process(instance=instance).success
        run_config = {
            "ops": {"purchase_intent_model": {"config": {"search_budget": 1, "feature_subset": SESSION_ONLY}}}
        }
        # The training job reaches the Bento: it is downstream of the champion.
        first = definitions.resolve_job_def("purchase_intent_training").execute_in_process(
            instance=instance, run_config=run_config, raise_on_error=False
        )
        assert first.success
        champion = ModelRegistryResource().registry().version_for_alias("champion")
        assert champion is not None, "the chain promoted no champion on this store"
        built = [e for e in first.get_asset_materialization_events() if e.asset_key == BENTO]
        assert len(built) == 1
        metadata = {k: v.value for k, v in built[0].materialization.metadata.items()}
        assert metadata["model_version"] == str(champion.version)
        assert metadata["bento_tag"].startswith(f"purchase_intent:v{champion.version}-")
        assert metadata["rebuilt"] is True and metadata["build_time"]
        smoke = _smoke(first)
        assert smoke.passed, smoke.metadata
        assert smoke.metadata["fallback"].value is False
        assert smoke.metadata["model_version"].value == str(champion.version)
        assert _bentos(hn_home) == [metadata["bento_tag"].split(":")[1]]
        assert instance.get_run_by_id(first.run_id).tags["purchase_intent/bento"] == "built"

        # The same champion again: nothing is built, nothing materialises, the smoke step is skipped.
        again = definitions.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=[BENTO]
        )
        assert again.success
        assert not [e for e in again.get_asset_materialization_events() if e.asset_key == BENTO]
        observed = [e for e in again.get_asset_observation_events() if e.asset_key == BENTO]
        assert observed and observed[0].asset_observation_data.asset_observation.metadata["rebuilt"].value is False
        assert instance.get_run_by_id(again.run_id).tags["purchase_intent/bento"] == "unchanged"
        assert _bentos(hn_home) == [metadata["bento_tag"].split(":")[1]]
        latest = instance.get_latest_materialization_event(BENTO)
        assert latest.run_id == first.run_id  # the Bento's data version is still the first build's

        # A rollback: `purchase_intent:latest` (what a running service follows) names another model,
        # as a newer champion's import leaves it; materialising the Bento for the champion moves it back.
        from hn_assets.serving.bento import point_latest

        pointer = hn_home / "bentoml" / "models" / "purchase_intent" / "latest"
        served = pointer.read_text().strip()
        point_latest(hn_home / "bentoml", "purchase_intent:vnewer-champion")
        assert (
            definitions.resolve_implicit_global_asset_job_def()
            .execute_in_process(instance=instance, asset_selection=[BENTO])
            .success
        )
        assert pointer.read_text().strip() == served
