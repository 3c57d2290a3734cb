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
Without SPARK_PYTHON, Spark is not run: its figures are the medians recorded in
../shared/bench-ref/README.md (another run), printed as a recorded reference, never as measured here.

Needs data outside the repo: ../shared/bench-ref/ (HN_BENCH_REF) and, to generate a size not yet in
HN_BENCH_DATA, the real REES46 head under ../shared/data/real/ (HN_REAL_DATA). Without them it prints
one "skipped: ..." line and exits 0 (a fresh clone has neither).

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
from _common import table

REPO = Path(__file__).resolve().parent.parent
# Reference tooling and data live beside the repo, not in it; the env vars point elsewhere.
BENCH_REF = Path(os.environ.get("HN_BENCH_REF", REPO.parent / "shared" / "bench-ref"))
REAL_DATA = Path(os.environ.get("HN_REAL_DATA", REPO.parent / "shared" / "data" / "real"))
REES46_SAMPLE = REAL_DATA / "rees46_multicat_2019oct_head" / "2019-Oct_head.csv"
BIN = Path(sys.executable).parent
DATA = Path(os.environ.get("HN_BENCH_DATA", Path(tempfile.gettempdir()) / "hn-bench-data"))
# Recorded reference, not measured by this script: Spark local[2] medians of 3 runs per size (wall s,
# peak RSS MB) from the Results table of ../shared/bench-ref/README.md (its own run, 2 cores / 24 GB).
SPARK_RECORDED = {1: (31.3, 1818), 5: (67.0, 4094), 10: (103.1, 2938)}
SPARK_RECORDED_LABEL = "Spark local[2] (recorded reference, bench-ref, not this run)"


def measure(label: str, log: Path, cmd: list[str], env: dict) -> dict:
    out = log.parent / f"{label}.out"
    subprocess.run(
        [
            sys.executable,
            str(BENCH_REF / "measure.py"),
            "--label",
            label,
            "--log",
            str(log),
            "--stdout",
            str(out),
            "--",
            *cmd,
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    record = [json.loads(line) for line in log.read_text().splitlines() if json.loads(line)["label"] == label][-1]
    record["output"] = out.read_text(errors="replace")
    return record


def step_times(output: str) -> dict[str, float]:
    """Dagster's step durations ("in 812ms", "in 4.74s", "in 2m30s")."""
    found = re.findall(r'Finished execution of step "([^"]+)" in (?:(\d+)m)?([\d.]+)(ms|s)', output)
    return {step: int(minutes or 0) * 60 + float(v) / (1000 if unit == "ms" else 1) for step, minutes, v, unit in found}


def input_path(millions: int) -> Path:
    return DATA / f"rees46_{millions}m.csv"


def missing_references(sizes: list[int]) -> list[str]:
    """What this run needs from outside the repo and cannot find (checked before any work starts)."""
    tools = ["measure.py", "duckdb_sessionize.py", "duckdb_sessionize.sql"]
    tools += ["spark_sessionize.py"] if os.environ.get("SPARK_PYTHON") else []
    generate = any(not input_path(m).exists() for m in sizes)  # a cached input needs no generator or sample
    tools += ["scale_rees46.py"] if generate else []
    if not BENCH_REF.is_dir():  # the folder, not each file in it: one short line on a fresh clone
        missing = [f"bench-ref tooling (expected at {BENCH_REF})"]
    else:
        missing = [
            f"bench-ref/{name} (expected at {BENCH_REF / name})" for name in tools if not (BENCH_REF / name).exists()
        ]
    if generate and not REES46_SAMPLE.exists():
        missing.append(f"the real REES46 sample (expected at {REES46_SAMPLE})")
    return missing


def ensure_input(millions: int) -> Path:
    path = input_path(millions)
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                str(BENCH_REF / "scale_rees46.py"),
                "--rows",
                str(millions * 1_000_000),
                "--days",
                "30",
                "--seed",
                "7",
                "--out",
                str(path),
                "--sample",
                str(REES46_SAMPLE),
            ],
            check=True,
        )
    return path


def run_size(millions: int, log: Path) -> list[tuple]:
    source = ensure_input(millions)
    subprocess.run(["sync"], check=False)
    with tempfile.TemporaryDirectory(prefix=f"hn-bench-{millions}m-") as home:
        env = {
            **os.environ,
            "HN_HOME": home,
            "DAGSTER_HOME": f"{home}/dagster",
            "HN_DUCKDB_MEMORY_LIMIT": os.environ.get("HN_DUCKDB_MEMORY_LIMIT", "2200MB"),
        }
        subprocess.run([str(BIN / "hn"), "env"], env=env, check=True, stdout=subprocess.DEVNULL)
        # Deployment set-up, as `make install` does for its HN_HOME: the manifest and dbt's partial-parse
        # state are made for this profile (its paths follow HN_HOME), so the run does not reparse.
        subprocess.run(
            [str(BIN / "dbt"), "parse", "--quiet"],
            cwd=REPO / "dbt_project",
            env={**env, "DBT_PROFILES_DIR": str(REPO / "dbt_project")},
            check=True,
        )
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "import hn_assets.definitions"], env=env, check=True, stderr=subprocess.DEVNULL
        )
        startup = time.perf_counter() - start
        load = measure(f"hn_load_{millions}m", log, [str(BIN / "hn"), "load", "rees46", str(source)], env)
        graph = measure(
            f"dagster_{millions}m",
            log,
            [
                str(BIN / "dagster"),
                "asset",
                "materialize",
                "-m",
                "hn_assets.definitions",
                "--select",
                "+key:fct_sessions",
            ],
            env,
        )
        if "RUN_SUCCESS" not in graph["output"]:
            raise SystemExit(f"the Dagster run failed:\n{graph['output'][-3000:]}")
        with duckdb.connect(f"{home}/warehouse.duckdb", read_only=True) as con:
            ours = con.execute("select count(*) from gold.fct_sessions").fetchall()[0][0]
    with tempfile.TemporaryDirectory(prefix="bench-ref-out-") as out_dir:
        ref = measure(
            f"duckdb_ref_{millions}m",
            log,
            [sys.executable, str(BENCH_REF / "duckdb_sessionize.py"), "--input", str(source), "--out", out_dir],
            dict(os.environ),
        )
        ref_sessions = duckdb.sql(f"select count(*) from '{out_dir}/sessions.parquet'").fetchall()[0][0]
    spark = None
    if os.environ.get("SPARK_PYTHON"):
        with tempfile.TemporaryDirectory(prefix="bench-spark-") as out_dir:
            spark = measure(
                f"spark_{millions}m",
                log,
                [
                    os.environ["SPARK_PYTHON"],
                    str(BENCH_REF / "spark_sessionize.py"),
                    "--input",
                    str(source),
                    "--out",
                    out_dir,
                ],
                dict(os.environ),
            )
    steps = step_times(graph["output"])
    print(
        f"\n{millions}M rows: sessions ours={ours:,} reference={ref_sessions:,} "
        f"({'IDENTICAL COUNT' if ours == ref_sessions else 'DIFFERENT'}); steps: "
        + ", ".join(f"{k} {v:.1f}s" for k, v in steps.items())
        + f"; code location load {startup:.1f}s"
    )
    return size_rows(millions, load, graph, startup, ref, spark)


def spark_ratio(spark_wall: float | None, wall: float, measured: bool) -> str:
    """Spark's wall over ours; a recorded Spark figure says so, so it never reads as measured here."""
    if spark_wall is None:
        return "n/a (no Spark figure for this size)"
    return f"{spark_wall / wall:.2f}x" + ("" if measured else " vs recorded reference")


def size_rows(millions: int, load: dict, graph: dict, startup: float, ref: dict, spark: dict | None) -> list[tuple]:
    total = load["wall_s"] + graph["wall_s"]
    peak = max(load["peak_tree_rss_mb"], graph["peak_tree_rss_mb"])
    measured = spark is not None
    recorded = SPARK_RECORDED.get(millions)
    spark_wall = spark["wall_s"] if measured else recorded and recorded[0]
    rows = [
        (
            f"{millions}M",
            "hn: load + materialize +key:fct_sessions",
            f"{total:.1f}",
            f"{load['wall_s']:.1f} + {graph['wall_s']:.1f}",
            f"{startup:.1f}",
            f"{peak:,.0f}",
            spark_ratio(spark_wall, total, measured),
        ),
        (
            f"{millions}M",
            "reference: hand-written DuckDB job",
            f"{ref['wall_s']:.1f}",
            "",
            "",
            f"{ref['peak_tree_rss_mb']:,.0f}",
            spark_ratio(spark_wall, ref["wall_s"], measured),
        ),
    ]
    if measured:
        rows.append(
            (
                f"{millions}M",
                "Spark local[2] (this run)",
                f"{spark['wall_s']:.1f}",
                "",
                "",
                f"{spark['peak_tree_rss_mb']:,.0f}",
                "1.00x",
            )
        )
    elif recorded:
        rows.append((f"{millions}M", SPARK_RECORDED_LABEL, f"{recorded[0]:.1f}", "", "", f"{recorded[1]:,}", "-"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 5, 10], help="millions of rows")
    args = parser.parse_args()
    missing = missing_references(args.sizes)
    if missing:  # a fresh clone has no ../shared: say what is missing and stop cleanly
        print(f"skipped: missing {'; '.join(missing)} (set HN_BENCH_REF / HN_REAL_DATA to use other folders)")
        return
    log = DATA / "logs" / f"landing_to_gold_{int(time.time())}.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    rows = [row for size in args.sizes for row in run_size(size, log)]
    print()
    print(
        table(rows, ("rows", "run", "wall s", "load + graph s", "start-up s", "peak RSS MB", "Spark wall / this wall"))
    )
    if not os.environ.get("SPARK_PYTHON"):
        print(
            "\nSpark was not run: its figures are recorded medians from ../shared/bench-ref/README.md, "
            "another run (set SPARK_PYTHON to a Python with pyspark to measure it here)"
        )
    print(f"\nraw measurements: {log}")


if __name__ == "__main__":
    main()
