"""The code location loads and every asset is declared the way the UI needs it."""

import dagster as dg

from hn_assets.contracts import FEEDS, QUARANTINE_TABLE
from hn_assets.definitions import defs


def test_groups_and_bronze_tables():
    """One landing source, one bronze table and one staging model per feed of contracts.FEEDS.

    The feeds are the contracts' (not a count written here), so adding a feed to contracts.py
    without its assets fails, and so does an asset for a feed the contracts do not have.
    """
    graph = defs().resolve_asset_graph()
    groups: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, set()).add(key.to_user_string())
    assert FEEDS, "contracts.FEEDS is empty"
    assert groups["sources"] == {f"landing_{name}" for name in FEEDS}
    assert groups["bronze"] == {contract.bronze_table for contract in FEEDS.values()} | {QUARANTINE_TABLE}
    assert {f"stg_{name}" for name in FEEDS} <= groups["silver"]


def test_every_materialisable_asset_has_owner_kind_and_description():
    graph = defs().resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        assert node.owners, key
        assert node.description, key
        assert any(tag.startswith("dagster/kind/") for tag in node.tags), key
        # Every data layer declares how stale it may get (the registry only changes with code).
        if key.to_user_string() != "feast_registry":
            assert node.freshness_policy is not None, key


def test_dbt_sources_map_onto_the_bronze_assets():
    graph = defs().resolve_asset_graph()
    parents = {k.to_user_string() for k in graph.get(dg.AssetKey("stg_clickstream_events")).parent_keys}
    assert parents == {"bronze_clickstream_events"}
    assert graph.get(dg.AssetKey("fct_sessions")).group_name == "gold"
    assert graph.get(dg.AssetKey("int_sessions")).group_name == "silver"


def test_every_asset_carries_its_layers_policy():
    from hn_assets.policies import LAYER_POLICIES, NOT_FRESHNESS_BOUND

    graph = defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node, name = graph.get(key), key.to_user_string()
        policy = LAYER_POLICIES[node.group_name]  # every group is a layer with a policy
        assert set(policy.owners) <= set(node.owners), name
        assert {f"dagster/kind/{k}" for k in policy.kinds} <= set(node.tags), name
        if node.is_materializable and name not in NOT_FRESHNESS_BOUND and policy.freshness is not None:
            assert node.freshness_policy is not None, name


def test_assets_reach_settings_only_through_the_resources():
    from pathlib import Path

    import hn_assets.defs

    root = Path(hn_assets.defs.__file__).parent
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "get_settings" in p.read_text() and p.name != "resources.py"
    ]
    assert offenders == []


def test_dbt_bronze_sources_are_the_contracts_feeds_with_their_descriptions():
    from pathlib import Path

    import yaml

    from hn_assets.contracts import FEEDS

    sources = yaml.safe_load((Path(__file__).parents[1] / "dbt_project/models/staging/_sources.yml").read_text())
    bronze = next(s for s in sources["sources"] if s["name"] == "bronze")
    declared = {t["name"]: t for t in bronze["tables"]}
    assert set(declared) == {c.bronze_table for c in FEEDS.values()}
    for contract in FEEDS.values():
        table = declared[contract.bronze_table]
        assert table["description"] == contract.description, contract.name
        assert "meta" not in table  # the translator maps sources to bronze asset keys
    graph = defs().resolve_asset_graph()
    stg_parents = {f"stg_{c.name}": {f"bronze_{c.name}"} for c in FEEDS.values()}
    for model, parents in stg_parents.items():
        assert {k.to_user_string() for k in graph.get(dg.AssetKey(model)).parent_keys} >= parents, model


def test_jobs_select_what_they_mean():
    definitions = defs()

    def selected(job: str) -> set[str]:
        return {k.to_user_string() for k in definitions.resolve_job_def(job).asset_layer.selected_asset_keys}

    chain = {
        "purchase_intent_training_set",
        "purchase_intent_model",
        "purchase_intent_evaluation",
        "purchase_intent_champion",
    }
    assert selected("purchase_intent_training") >= chain
    # the nightly batch never rebuilds the weekly training set or what is trained on it
    assert not selected("daily_batch") & selected("purchase_intent_training")
    assert {"online_user_history", "fct_session_snapshots", "bronze_orders"} <= selected("daily_batch")
    assert selected("end_to_end") == selected("daily_batch") | selected("purchase_intent_training")


def test_feast_registry_reapplies_when_the_feature_repo_changes():
    graph = defs().resolve_asset_graph()
    node = graph.get(dg.AssetKey("feast_registry"))
    assert node.code_version and "CodeVersionChanged" in type(node.automation_condition).__name__


def test_dbt_accepted_values_are_the_contracts_vocabularies():
    """The vocabularies live in contracts.py; dbt's accepted_values tests must say the same."""
    from pathlib import Path

    import yaml

    from hn_assets import contracts
    from hn_assets.ingest.privacy import AGE_BANDS

    vocabulary = {
        "event_type": contracts.EVENT_TYPES,
        "device": contracts.DEVICES,
        "channel": contracts.CHANNELS,
        "acquisition_channel": contracts.CHANNELS,
        "device_preference": contracts.DEVICES,
        "order_channel": contracts.ORDER_CHANNELS,
        "price_tier": contracts.PRICE_TIERS,
        "currency": contracts.CURRENCIES,
        "payment_type": contracts.PAYMENT_TYPES,
        "age_band": (*(band for _, band in AGE_BANDS), "65+"),
    }
    checked = 0
    for path in (Path(__file__).parents[1] / "dbt_project" / "models").rglob("*.yml"):
        for model in yaml.safe_load(path.read_text()).get("models", []):
            for column in model.get("columns", []):
                for test in column.get("data_tests", []):
                    if isinstance(test, dict) and "accepted_values" in test and column["name"] in vocabulary:
                        values = test["accepted_values"]["arguments"]["values"]
                        assert set(values) == set(vocabulary[column["name"]]), (model["name"], column["name"])
                        checked += 1
    assert checked >= 4
