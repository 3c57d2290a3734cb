"""Landing -> gold sessions, end to end, against the hand-written DuckDB reference (and Spark).

For each size (millions of REES46-format rows, scaled from the real sample with
../shared/bench-ref/scale_rees46.py, seed 7, 30 days):
  1. `hn load rees46 FILE` (adapter -> landing CSV)
  2. `dagster asset materialize --select +key:fct_sessions` (all upstream of fct_sessions;
     the older `+fct_sessions` means one level only) (bronze ingest + dbt build of the
     upstream of fct_sessions, with its tests), process start-up included; start-up (loading
     the code location) is also timed on its own, and the Dagster step times are listed.
  3. reference: ../shared/bench-ref/duckdb_sessionize.py on the same CSV (and spark_sessionize.py
     when SPARK_PYTHON points at a Python with pyspark).
Every command runs under ../shared/bench-ref/measure.py (wall time, peak RSS of the process tree).
Session counts of both are printed as a correctness cross-check (the definitions are the same).

    python bench/landing_to_gold.py --sizes 1 5 10
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BENCH_REF = REPO.parent / "shared" / "bench-ref"
BIN = Path(sys.executable).parent
DATA = Path(os.environ.get("HN_BENCH_DATA", Path(tempfile.gettempdir()) / "hn-bench-data"))
SPARK_TIMES = {1: 31.3, 5: 67.0, 10: 103.1}  # measured in ../shared/bench-ref (medians), for the note


def measure(label: str, log: Path, cmd: list[str], env: dict) -> dict:
    out = log.parent / f"{label}.out"
    subprocess.run([sys.executable, str(BENCH_REF / "measure.py"), "--label", label, "--log", str(log),
                    "--stdout", str(out), "--", *cmd], env=env, check=True, stdout=subprocess.DEVNULL)
    record = [json.loads(line) for line in log.read_text().splitlines() if json.loads(line)["label"] == label][-1]
    record["output"] = out.read_text(errors="replace")
    return record


def step_times(output: str) -> dict[str, float]:
    """Dagster's step durations ("in 812ms", "in 4.74s", "in 2m30s")."""
    found = re.findall(r'Finished execution of step "([^"]+)" in (?:(\d+)m)?([\d.]+)(ms|s)', output)
    return {step: int(minutes or 0) * 60 + float(v) / (1000 if unit == "ms" else 1)
            for step, minutes, v, unit in found}


def ensure_input(millions: int) -> Path:
    path = DATA / f"rees46_{millions}m.csv"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(BENCH_REF / "scale_rees46.py"), "--rows", str(millions * 1_000_000),
                        "--days", "30", "--seed", "7", "--out", str(path),
                        "--sample", str(REPO.parent / "shared/data/real/rees46_multicat_2019oct_head/2019-Oct_head.csv")],
                       check=True)
    return path


def run_size(millions: int, log: Path) -> list[tuple]:
    source = ensure_input(millions)
    subprocess.run(["sync"], check=False)
    with tempfile.TemporaryDirectory(prefix=f"hn-bench-{millions}m-") as home:
        env = {**os.environ, "HN_HOME": home, "DAGSTER_HOME": f"{home}/dagster",
               "HN_DUCKDB_MEMORY_LIMIT": os.environ.get("HN_DUCKDB_MEMORY_LIMIT", "2200MB")}
        subprocess.run([str(BIN / "hn"), "env"], env=env, check=True, stdout=subprocess.DEVNULL)
        # Deployment set-up, as `make install` does for its HN_HOME: the manifest and dbt's partial-parse
        # state are made for this profile (its paths follow HN_HOME), so the run does not reparse.
        subprocess.run([str(BIN / "dbt"), "parse", "--quiet"], cwd=REPO / "dbt_project",
                       env={**env, "DBT_PROFILES_DIR": str(REPO / "dbt_project")}, check=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import hn_assets.definitions"], env=env, check=True,
                       stderr=subprocess.DEVNULL)
        startup = time.perf_counter() - start
        load = measure(f"hn_load_{millions}m", log, [str(BIN / "hn"), "load", "rees46", str(source)], env)
        graph = measure(f"dagster_{millions}m", log, [str(BIN / "dagster"), "asset", "materialize", "-m",
                                                      "hn_assets.definitions", "--select", "+key:fct_sessions"], env)
        if "RUN_SUCCESS" not in graph["output"]:
            raise SystemExit(f"the Dagster run failed:\n{graph['output'][-3000:]}")
        with duckdb.connect(f"{home}/warehouse.duckdb", read_only=True) as con:
            ours = con.execute("select count(*) from gold.fct_sessions").fetchall()[0][0]
    with tempfile.TemporaryDirectory(prefix="bench-ref-out-") as out_dir:
        ref = measure(f"duckdb_ref_{millions}m", log, [sys.executable, str(BENCH_REF / "duckdb_sessionize.py"),
                                                       "--input", str(source), "--out", out_dir], dict(os.environ))
        ref_sessions = duckdb.sql(f"select count(*) from '{out_dir}/sessions.parquet'").fetchall()[0][0]
    spark = None
    if os.environ.get("SPARK_PYTHON"):
        with tempfile.TemporaryDirectory(prefix="bench-spark-") as out_dir:
            spark = measure(f"spark_{millions}m", log, [os.environ["SPARK_PYTHON"], str(BENCH_REF / "spark_sessionize.py"),
                                                        "--input", str(source), "--out", out_dir], dict(os.environ))
    steps = step_times(graph["output"])
    total = load["wall_s"] + graph["wall_s"]
    peak = max(load["peak_tree_rss_mb"], graph["peak_tree_rss_mb"])
    spark_wall = spark["wall_s"] if spark else SPARK_TIMES.get(millions)
    print(f"\n{millions}M rows: sessions ours={ours:,} reference={ref_sessions:,} "
          f"({'IDENTICAL COUNT' if ours == ref_sessions else 'DIFFERENT'}); steps: "
          + ", ".join(f"{k} {v:.1f}s" for k, v in steps.items()) + f"; code location load {startup:.1f}s")
    rows = [(f"{millions}M", "hn: load + materialize +key:fct_sessions", f"{total:.1f}",
             f"{load['wall_s']:.1f} + {graph['wall_s']:.1f}", f"{startup:.1f}", f"{peak:,.0f}",
             f"{spark_wall / total:.2f}x" if spark_wall else "n/a"),
            (f"{millions}M", "reference: hand-written DuckDB job", f"{ref['wall_s']:.1f}", "", "",
             f"{ref['peak_tree_rss_mb']:,.0f}", f"{spark_wall / ref['wall_s']:.2f}x" if spark_wall else "n/a")]
    if spark:
        rows.append((f"{millions}M", "Spark local[2] (this run)", f"{spark['wall_s']:.1f}", "", "",
                     f"{spark['peak_tree_rss_mb']:,.0f}", "1.00x"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 5, 10], help="millions of rows")
    args = parser.parse_args()
    log = DATA / "logs" / f"landing_to_gold_{int(time.time())}.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    rows = [row for size in args.sizes for row in run_size(size, log)]
    spark_note = "this run" if os.environ.get("SPARK_PYTHON") else "bench-ref medians (set SPARK_PYTHON to rerun)"
    print()
    print(table(rows, ("rows", "run", "wall s", "load + graph s", "start-up s", "peak RSS MB",
                       f"Spark / this ({spark_note})")))
    print(f"\nraw measurements: {log}")


if __name__ == "__main__":
    main()
