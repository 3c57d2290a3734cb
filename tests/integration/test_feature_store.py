"""Feast over the gold exports: point-in-time correctness, online = offline, Redis, session logic."""

import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl
import pytest

from hn_assets.defs.resources import FeatureStoreResource
from hn_assets.features.store import apply
from hn_assets.online.session import Event, session_snapshots
from hn_assets.settings import get_settings
from tests.dbt_helpers import dbt, ingest_everything

pytestmark = pytest.mark.integration
T0 = datetime(2026, 10, 1, 12, tzinfo=UTC)


def _write_gold(name: str, frame: pl.DataFrame) -> None:
    folder = get_settings().gold_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(folder / "data_0.parquet")


def _known_answer_gold() -> None:
    ts = pl.Datetime("us", "UTC")
    _write_gold(
        "user_features",
        pl.DataFrame(
            {
                "user_id": ["u1", "u1", "u2"],
                "event_timestamp": [T0, T0 + timedelta(days=2), T0 - timedelta(days=400)],
                "lifetime_purchase_count": [1, 2, 7],
                "avg_order_value_90d": [10.0, 20.0, 70.0],
                "days_since_last_purchase": [0, 0, 0],
                "preferred_category": ["gaming", "gaming", "bag"],
                "sessions_last_30d": [1, 2, 3],
            },
            schema_overrides={"event_timestamp": ts},
        ),
    )
    _write_gold(
        "product_features",
        pl.DataFrame(
            {
                "product_id": ["p1"],
                "event_timestamp": [T0],
                "views_7d": [5],
                "views_30d": [9],
                "cart_adds_7d": [1],
                "purchases_7d": [0],
                "purchases_30d": [1],
                "view_to_purchase_rate_30d": [0.1],
                "avg_selling_price_7d": [None],
                "stock_level": [3],
                "list_price": [999.0],
                "competitor_price_gap": [0.05],
            },
            schema_overrides={"event_timestamp": ts, "avg_selling_price_7d": pl.Float64},
        ),
    )
    _write_gold(
        "fct_session_snapshots",
        pl.DataFrame(
            {
                "session_key": ["s1"],
                "as_of": [T0],
                "events_so_far": [1],
                "page_views_so_far": [1],
                "product_views_so_far": [0],
                "distinct_products_so_far": [0],
                "cart_adds_so_far": [0],
                "cart_removes_so_far": [0],
                "searches_so_far": [0],
                "seconds_since_start": [0.0],
                "local_hour": [14],
                "is_weekend": [False],
                "device": ["mobile"],
                "channel": ["direct"],
            },
            schema_overrides={"as_of": ts},
        ),
    )


def test_point_in_time_join_returns_what_was_known_at_each_scoring_time(hn_home):
    _known_answer_gold()
    store = FeatureStoreResource().store()
    apply(store)
    entity_rows = pl.DataFrame(
        {
            "row": [1, 2, 3, 4, 5],
            "user_id": ["u1", "u1", "u2", "u3", "u1"],
            "event_timestamp": [
                T0 + timedelta(days=1),  # u1 before its value changed -> 1
                T0 + timedelta(days=3),  # after the change -> 2
                T0 + timedelta(days=1),  # u2's only value is older than the TTL -> null
                T0 + timedelta(days=1),  # u3 never had a value -> null
                T0 - timedelta(days=1),
            ],  # before anything was known -> null
        },
        schema_overrides={"event_timestamp": pl.Datetime("us", "UTC")},
    )
    result = store.get_historical_features(
        entity_df=entity_rows.to_pandas(),
        features=["user_history:lifetime_purchase_count", "user_history:avg_order_value_90d"],
    ).to_df()
    got = pl.from_pandas(result).sort("row")
    assert got.height == entity_rows.height
    assert got["lifetime_purchase_count"].to_list() == [1, 2, None, None, None]
    assert got["avg_order_value_90d"].to_list() == [10.0, 20.0, None, None, None]


@pytest.fixture
def built_store(landed_store, tmp_path):
    ingest_everything()
    dbt("build", target_path=tmp_path / "target")
    store = FeatureStoreResource().store()
    apply(store)
    return store


def _materialise_all(store) -> None:
    for view in ("user_history", "product_signals", "session_activity"):
        store.materialize(
            start_date=datetime(2020, 1, 1, tzinfo=UTC),
            end_date=datetime.now(UTC),
            feature_views=[view],
        )


def _latest_offline_users(limit: int = 25) -> pl.DataFrame:
    users = pl.read_parquet(get_settings().gold_dir / "user_features" / "*.parquet")
    latest = users.sort("event_timestamp").group_by("user_id").last()
    return latest.sort("user_id").head(limit)


def test_online_store_serves_the_latest_offline_values(built_store):
    _materialise_all(built_store)
    expected = _latest_offline_users()
    online = built_store.get_online_features(
        features=["user_history:lifetime_purchase_count", "user_history:sessions_last_30d"],
        entity_rows=[{"user_id": u} for u in expected["user_id"]],
    ).to_dict()
    assert online["lifetime_purchase_count"] == expected["lifetime_purchase_count"].to_list()
    assert online["sessions_last_30d"] == expected["sessions_last_30d"].to_list()


def test_session_feature_module_equals_the_dbt_snapshots(built_store):
    with duckdb.connect(str(get_settings().warehouse_path), read_only=True) as con:
        sessions = con.sql(
            "select session_key, timezone, device, channel from silver.int_sessions "
            "where not is_bot order by session_key limit 300"
        ).pl()
        events = con.sql(
            "select session_key, event_id, event_type, event_timestamp, product_id, user_id "
            "from silver.int_session_events where session_key in (select session_key from "
            "silver.int_sessions where not is_bot order by session_key limit 300)"
        ).pl()
        expected = con.sql(
            "select * from gold.fct_session_snapshots where session_key in (select session_key "
            "from silver.int_sessions where not is_bot order by session_key limit 300) "
            "order by session_key, snapshot_index"
        ).pl()
    rows = []
    for s in sessions.iter_rows(named=True):
        evs = [
            Event(e["event_id"], e["event_type"], e["event_timestamp"], e["product_id"], e["user_id"])
            for e in events.filter(pl.col("session_key") == s["session_key"]).iter_rows(named=True)
        ]
        rows += [
            {"session_key": s["session_key"], **snap}
            for snap in session_snapshots(evs, s["timezone"], s["device"], s["channel"])
        ]
    computed = pl.DataFrame(rows, infer_schema_length=None).sort("session_key", "snapshot_index")
    columns = [c for c in computed.columns if c != "as_of"]
    assert computed.height == expected.height > 100
    for column in columns:
        left, right = computed[column].to_list(), expected[column].to_list()
        if column == "seconds_since_start":
            left, right = [round(v, 3) for v in left], [round(v, 3) for v in right]
        assert left == right, column


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_server(tmp_path):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed and could not be installed (see .ci/system-packages.sh)")
    port = _free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.time() + 10
    while time.time() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def test_redis_online_store_materialises_and_serves(built_store, redis_server, monkeypatch):
    monkeypatch.setenv("HN_ONLINE_STORE", "redis")
    monkeypatch.setenv("HN_REDIS_URL", redis_server)
    store = FeatureStoreResource().store()
    apply(store)
    _materialise_all(store)
    expected = _latest_offline_users(10)
    online = store.get_online_features(
        features=["user_history:lifetime_purchase_count"], entity_rows=[{"user_id": u} for u in expected["user_id"]]
    ).to_dict()
    assert online["lifetime_purchase_count"] == expected["lifetime_purchase_count"].to_list()


def test_each_feature_view_reads_the_gold_mart_the_asset_graph_wires_it_after(hn_home):
    from hn_assets.features.sources import GOLD_SOURCES
    from hn_assets.features.store import definitions, gold_source_of

    views = {fv.name: fv for fv in definitions().FEATURE_VIEWS}
    assert set(views) == set(GOLD_SOURCES)
    for name, view in views.items():
        assert gold_source_of(view) == (GOLD_SOURCES[name].mart, GOLD_SOURCES[name].time_column), name
