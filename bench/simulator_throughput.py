"""Simulator throughput: clickstream events per second on one core, for ~1M events.

Reference in the same run: serialising the same number of event-shaped records with orjson and
writing them (the I/O and encoding floor any generator pays). Usage: python bench/simulator_throughput.py
[--events 1000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, pin_to_one_core, table

from hn_assets.simulator import SimulationConfig, simulate

EVENTS_PER_SESSION = 7.0  # measured mean of the default behaviour model


def target_verdict(events: int, seconds: float) -> str:
    """Judged only near 1M events: a small run is dominated by fixed costs (20,000 users, 42 days of
    catalogue feeds), so scaling its time up to 1M would not be a measurement."""
    per_million = seconds * 1_000_000 / events
    if events < 900_000:
        return f"target (1M events < 60 s) not judged at {events:,} events ({per_million:.1f} s per 1M if linear)"
    return f"target: 1M events < 60 s -> {'MET' if per_million < 60 else 'MISSED'} ({per_million:.1f} s per 1M)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    pin_to_one_core()
    days = 42
    cfg = SimulationConfig(
        seed=1, days=days, users=20_000, sessions_per_day=int(args.events / EVENTS_PER_SESSION / days)
    )
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = simulate(cfg, Path(tmp))
        sim_s = time.perf_counter() - start
        record = {
            "schema_version": 1,
            "event_id": "e00000000001",
            "event_type": "product_view",
            "event_timestamp": "2026-09-01T10:00:00.000Z",
            "visitor_id": "v-0123456789ab",
            "client_session_id": "cs-0123456789",
            "user_id": None,
            "analytics_consent": True,
            "device": "mobile",
            "channel": "direct",
            "country": "DE",
            "timezone": "Europe/Berlin",
            "source": "hn_store",
            "product_id": "P00001",
            "category": "gaming",
            "brand": "MSI",
            "price": 1299.99,
            "search_query": None,
            "page_type": None,
            "order_id": None,
        }
        start = time.perf_counter()
        with open(Path(tmp) / "floor.jsonl", "wb") as handle:
            for _ in range(summary.events):
                handle.write(orjson.dumps(record) + b"\n")
        floor_s = time.perf_counter() - start
    rows = [
        ("hn simulator (all feeds, dirt 1%)", f"{summary.events:,}", f"{sim_s:.1f}", f"{summary.events / sim_s:,.0f}"),
        (
            "reference: orjson encode+write only",
            f"{summary.events:,}",
            f"{floor_s:.1f}",
            f"{summary.events / floor_s:,.0f}",
        ),
    ]
    print(table(rows, ("run (1 core)", "events", "seconds", "events/s")))
    print(
        f"\nsimulator = {sim_s / floor_s:.1f}x the encode-and-write floor; {target_verdict(summary.events, sim_s)}; "
        f"peak RSS {peak_rss_mb():,.0f} MB"
    )


if __name__ == "__main__":
    main()
