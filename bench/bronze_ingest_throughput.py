"""Bronze ingest throughput (landing JSON lines -> validated, privacy-filtered Delta + quarantine).

Simulates ~1M clickstream events (1% dirty), then ingests them with the platform's ingest path.
Reference in the same run: the bare minimum without contract checks, privacy or quarantine
(polars read_ndjson of the same files straight into a Delta append).
Usage: python bench/bronze_ingest_throughput.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, table

from hn_assets.ingest.bronze import DeltaLake
from hn_assets.ingest.landing import discover
from hn_assets.ingest.pipeline import ingest_feed
from hn_assets.ingest.privacy import Pseudonymiser
from hn_assets.simulator import SimulationConfig, simulate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    days = 42
    cfg = SimulationConfig(seed=1, days=days, users=20_000, sessions_per_day=int(args.events / 7.0 / days))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        simulate(cfg, root)
        files = discover(root / "landing", "clickstream_events")
        start = time.perf_counter()
        report = ingest_feed("clickstream_events", files, DeltaLake(str(root / "lake")), Pseudonymiser(b"bench"))
        ingest_s = time.perf_counter() - start

        start = time.perf_counter()
        frames = []
        for f in files:  # keep whole JSON objects only: the floor has no quarantine path
            lines = [x for x in f.path.read_bytes().splitlines() if x.startswith(b"{") and x.endswith(b"}")]
            frames.append(pl.read_ndjson(io.BytesIO(b"\n".join(lines)), infer_schema_length=None, ignore_errors=True))
        frame = pl.concat(frames, how="diagonal_relaxed")
        frame.write_delta(str(root / "floor"), mode="append")
        floor_s = time.perf_counter() - start
    rows = [
        (
            "hn ingest (contract, privacy, quarantine, Delta)",
            f"{report.landed:,}",
            f"{ingest_s:.1f}",
            f"{report.landed / ingest_s:,.0f}",
        ),
        (
            "reference: read_ndjson -> Delta, no checks",
            f"{frame.height:,}",
            f"{floor_s:.1f}",
            f"{frame.height / floor_s:,.0f}",
        ),
    ]
    print(table(rows, ("run", "records", "seconds", "records/s")))
    print(
        f"\naccepted {report.accepted:,}, quarantined {report.quarantined:,} (balanced: {report.balanced}); "
        f"ingest = {ingest_s / floor_s:.1f}x the unchecked floor; peak RSS {peak_rss_mb():,.0f} MB"
    )


if __name__ == "__main__":
    main()
