"""Online feature lookup latency: Feast get_online_features for one entity, SQLite vs Redis.

Builds a small simulated store end to end (bronze, dbt, Feast apply + materialise) in a temp
HN_HOME, then times >= 2,000 single-entity reads of the purchase_intent_v1 user and product
views per online store. Reference in the same run: the raw key-value read underneath (a direct
SQLite SELECT on Feast's table, a Redis HGETALL) for the same entities, i.e. what Feast adds.
Redis needs redis-server on PATH (.ci/system-packages.sh installs it); it is skipped otherwise.

    python bench/online_feature_latency.py [--reads 2000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table

REPO = Path(__file__).resolve().parent.parent
FEATURES = [
    "user_history:lifetime_purchase_count",
    "user_history:sessions_last_30d",
    "user_history:avg_order_value_90d",
]


def percentiles(samples: list[float]) -> tuple[float, float]:
    arr = np.array(samples) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def build(home: Path) -> None:
    env = {**os.environ, "HN_HOME": str(home)}
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "hn"), "simulate", "--days", "10", "--users", "2000", "--sessions-per-day", "400", "--quiet"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from hn_assets.ingest.pipeline import ingest_landing; "
            "from hn_assets.defs.resources import LakehouseResource; "
            "from hn_assets.settings import get_settings; get_settings().ensure_dirs(); "
            "list(ingest_landing(LakehouseResource()))",
        ],
        env=env,
        cwd=REPO,
        check=True,
    )
    # Own target path: the repo's dbt_project/target/manifest.json is the code location's, and
    # one compiled for this throwaway HN_HOME would point its external marts at a deleted folder.
    subprocess.run(
        [str(bin_dir / "dbt"), "build", "--profiles-dir", ".", "--quiet", "--target-path", str(home / "dbt-target")],
        env=env,
        cwd=REPO / "dbt_project",
        check=True,
    )


def time_reads(store, users: list[str], reads: int) -> list[float]:
    store.get_online_features(features=FEATURES, entity_rows=[{"user_id": users[0]}]).to_dict()  # warm-up
    out = []
    for i in range(reads):
        start = time.perf_counter()
        store.get_online_features(features=FEATURES, entity_rows=[{"user_id": users[i % len(users)]}]).to_dict()
        out.append(time.perf_counter() - start)
    return out


def raw_sqlite(path: Path, reads: int) -> list[float]:
    con = sqlite3.connect(path)
    table_name = next(
        r[0] for r in con.execute("select name from sqlite_master where type='table'") if r[0].endswith("user_history")
    )
    keys = [r[0] for r in con.execute(f'select distinct entity_key from "{table_name}"')]
    out = []
    for i in range(reads):
        start = time.perf_counter()
        con.execute(
            f'select feature_name, value, event_ts from "{table_name}" where entity_key = ?', (keys[i % len(keys)],)
        ).fetchall()
        out.append(time.perf_counter() - start)
    return out


def raw_redis(url: str, reads: int) -> list[float]:
    import redis

    host, port = url.split(":")
    client = redis.Redis(host=host, port=int(port))
    keys = [k for k in client.scan_iter(count=1000)][:5000]
    out = []
    for i in range(reads):
        start = time.perf_counter()
        client.hgetall(keys[i % len(keys)])
        out.append(time.perf_counter() - start)
    return out


def start_redis(tmp: Path) -> tuple[subprocess.Popen, str] | None:
    binary = shutil.which("redis-server")
    if not binary:
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp)], stdout=subprocess.DEVNULL
    )
    for _ in range(200):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"127.0.0.1:{port}"
        time.sleep(0.05)
    proc.terminate()
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="hn-online-bench-") as tmp:
        home = Path(tmp) / "hn"
        os.environ["HN_HOME"] = str(home)
        build(home)
        import polars as pl

        from hn_assets.defs.resources import FeatureStoreResource
        from hn_assets.features.store import apply

        users = pl.read_parquet(home / "lake/gold/user_features/*.parquet")["user_id"].unique().sort().to_list()
        rows = []
        stores = [("sqlite", None)]
        redis = start_redis(Path(tmp))
        if redis:
            stores.append(("redis", redis[1]))
        try:
            for kind, url in stores:
                store = FeatureStoreResource(online_store=kind, redis_url=url).store()
                apply(store)
                store.materialize(
                    start_date=datetime(2020, 1, 1, tzinfo=UTC),
                    end_date=datetime.now(UTC),
                    feature_views=["user_history"],
                )
                p50, p99 = percentiles(time_reads(store, users, args.reads))
                rows.append((kind, "Feast get_online_features(...).to_dict()", args.reads, f"{p50:.3f}", f"{p99:.3f}"))
                raw = (
                    raw_sqlite(home / "feast" / "online_store.db", args.reads)
                    if kind == "sqlite"
                    else raw_redis(url, args.reads)
                )
                r50, r99 = percentiles(raw)
                rows.append((kind, "reference: raw key-value read", args.reads, f"{r50:.3f}", f"{r99:.3f}"))
        finally:
            if redis:
                redis[0].terminate()
        print(table(rows, ("online store", "read", "reads", "p50 ms", "p99 ms")))
        if not redis:
            print("\nskipped: Redis (redis-server not on PATH; .ci/system-packages.sh installs it)")


if __name__ == "__main__":
    main()
