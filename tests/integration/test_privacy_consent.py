"""Dated consent applies from its date: a withdrawal stops a customer's history from then on."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pytest

from hn_assets.defs.resources import LakehouseResource
from hn_assets.settings import get_settings
from hn_assets.simulator import simulate
from tests.dbt_helpers import dbt, ingest_everything
from tests.integration.test_privacy_linkage import REPEAT_BUYERS

pytestmark = pytest.mark.integration


def _records(landing: Path, feed: str) -> list[dict]:
    return [
        orjson.loads(line)
        for p in sorted((landing / feed).rglob("*.jsonl"))
        for line in p.read_bytes().splitlines()
        if line.strip()
    ]


def _withdrawing_customer(landing: Path) -> tuple[dict, datetime]:
    """A consenting customer (one profile version) with orders on both sides of a moment, and that moment."""
    versions: dict[str, list[dict]] = {}
    for record in _records(landing, "customers"):
        versions.setdefault(record["customer_id"], []).append(record)
    orders: dict[str, list[str]] = {}
    for order in _records(landing, "orders"):
        if order.get("customer_id"):
            orders.setdefault(order["customer_id"], []).append(order["order_timestamp"])
    candidates = [
        (len({t[:10] for t in times}), c)
        for c, times in orders.items()
        if len(versions.get(c, [])) == 1 and versions[c][0]["consent_analytics"]
    ]
    _, customer = max(candidates)
    times = sorted(datetime.fromisoformat(t) for t in orders[customer])
    splits = [k for k in range(1, len(times)) if times[k - 1].date() < times[k].date()]
    k = min(splits, key=lambda k: abs(k - len(times) / 2))  # a day boundary between orders, near the middle
    return versions[customer][0], times[k - 1] + (times[k] - times[k - 1]) / 2


def test_a_withdrawal_stops_new_history_from_its_date(tmp_path, hn_home):
    simulate(REPEAT_BUYERS, hn_home)
    landing = hn_home / "landing"
    profile, withdrawn_at = _withdrawing_customer(landing)
    withdrawal = {**profile, "consent_analytics": False, "updated_at": withdrawn_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    day = landing / "customers" / f"dt={withdrawn_at.date()}"
    day.mkdir(parents=True, exist_ok=True)
    (day / "withdrawal.jsonl").write_bytes(orjson.dumps(withdrawal) + b"\n")
    ingest_everything()
    dbt("build", "--exclude-resource-type", "unit_test", target_path=tmp_path / "target")

    token = LakehouseResource().pseudonymiser().token(profile["customer_id"])
    with duckdb.connect(str(get_settings().warehouse_path), read_only=True) as con:
        bought = con.execute(
            "select p.purchased_at, p.user_id from silver.int_purchases p join silver.stg_orders o using (order_id) "
            "where o.user_id = ? order by 1",
            [token],
        ).fetchall()
        history = con.execute(
            "select event_timestamp, lifetime_purchase_count from gold.user_features where user_id = ? order by 1",
            [token],
        ).fetchall()
        sessions = con.execute(
            "select session_start from silver.int_sessions where user_id = ? and not is_bot", [token]
        ).fetchall()

    before = [at for at, _ in bought if at < withdrawn_at]
    assert before and len(before) < len(bought), "the customer buys before and after withdrawing"
    assert [user for at, user in bought] == [token if at < withdrawn_at else None for at, _ in bought]
    assert max(count for _, count in history) == len(before)
    # After the withdrawal, rows only mark consented data leaving its window: nothing new enters.
    exits = {at + timedelta(days=90) for at in before} | {
        start + timedelta(days=30) for (start,) in sessions if start < withdrawn_at
    }
    assert {at for at, _ in history if at >= withdrawn_at} <= exits
