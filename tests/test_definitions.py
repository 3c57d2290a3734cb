"""The code location loads and every asset is declared the way the UI needs it."""

import dagster as dg

from hn_assets.contracts import BRONZE_TABLES, QUARANTINE_TABLE


def test_groups_and_bronze_tables():
    from hn_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    groups: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, set()).add(key.to_user_string())
    assert {"sources", "bronze"} <= set(groups)
    assert groups["bronze"] >= {*BRONZE_TABLES, QUARANTINE_TABLE}
    assert len(BRONZE_TABLES) == 10


def test_every_materialisable_asset_has_owner_kind_and_description():
    from hn_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        assert node.owners, key
        assert node.description, key
        assert any(tag.startswith("dagster/kind/") for tag in node.tags), key
        # Every data layer declares how stale it may get (the registry only changes with code).
        if key.to_user_string() != "feast_registry":
            assert node.freshness_policy is not None, key


def test_dbt_sources_map_onto_the_bronze_assets():
    from hn_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    parents = {k.to_user_string() for k in graph.get(dg.AssetKey("stg_clickstream_events")).parent_keys}
    assert parents == {"bronze_clickstream_events"}
    assert graph.get(dg.AssetKey("fct_sessions")).group_name == "gold"
    assert graph.get(dg.AssetKey("int_sessions")).group_name == "silver"
