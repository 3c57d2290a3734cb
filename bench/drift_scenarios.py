"""Drift scenarios: does the champion degrade, and does retraining on recent weeks recover it?

For each scenario, on its own store (a fresh HN_HOME under a temp dir, a real Dagster instance):
  1. simulate PRE pre-drift days and POST post-drift days (`drift_start_day = PRE`);
  2. `daily_batch` (landing -> bronze -> gold -> online features), the real job;
  3. `purchase_intent_training` with the training set's window ending on the drift day
     (`window_end`): the old champion, trained, calibrated and tested on pre-drift weeks only;
  4. `purchase_intent_training` again on a sliding window of the last WINDOW weeks (`window_weeks`),
     which holds the post-drift weeks: the retrained challenger (its validation week, where it is
     calibrated, and its test week are post-drift); the gate decides as it always does;
  5. both models (the candidate objects the runs logged) score the retrained run's test sessions
     (the last post-drift week, the SAME rows for both) and the old champion its own pre-drift test
     week; ROC-AUC, Brier and ECE with 95 % intervals from the paired session bootstrap
     (hn_assets/models/metrics.bootstrap, 200 rounds), and the paired difference retrained - old.

What to expect: a concept drift (browse_heavy_audience) makes the old ranking wrong, so retraining
raises ROC-AUC; a base-rate shift (price_shock) leaves the ranking but breaks the calibration, so
retraining lowers Brier and ECE; a covariate shift (young_mobile_influx) may need neither.
The figures go into docs/monitoring.md, "Scenarios", by hand from this output.

    .venv/bin/python bench/drift_scenarios.py                     # the three drift scenarios
    .venv/bin/python bench/drift_scenarios.py --scenarios baseline price_shock --keep /tmp/drift
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import table

from hn_assets.simulator import SimulationConfig, simulate

PRE_DAYS, POST_DAYS, WINDOW_WEEKS = 28, 21, 4
STORE = SimulationConfig(seed=21, users=1500, products=40, sessions_per_day=450, dirty_rate=0.01)
DRIFTS = ("browse_heavy_audience", "price_shock", "young_mobile_influx")
KIND = {
    "baseline": "none (control)",
    "young_mobile_influx": "covariate shift",
    "price_shock": "base-rate shift",
    "browse_heavy_audience": "concept drift",
}
METRICS = ("roc_auc", "brier", "ece")


@dataclass
class Trained:
    run_id: str
    version: str
    value: object  # TrainedChallenger
    gate: str  # promoted / rejected and why


def _training(instance, budget: int, rounds: int, **window) -> Trained:
    import dagster as dg

    from hn_assets.definitions import defs

    run_config = {
        "ops": {
            "purchase_intent_training_set": {"config": window},
            "purchase_intent_model": {"config": {"search_budget": budget}},
            "purchase_intent_evaluation": {"config": {"bootstrap_rounds": rounds}},
        },
        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
    }
    job = defs().resolve_job_def("purchase_intent_training")
    with contextlib.redirect_stdout(io.StringIO()):
        result = job.execute_in_process(instance=instance, run_config=run_config, raise_on_error=False)
    if not result.success:
        failures = [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
        raise SystemExit(f"purchase_intent_training failed: {(failures or ['?'])[0][:2000]}")
    trained = result.asset_value(dg.AssetKey("purchase_intent_model"))
    gate = next((c for c in result.get_asset_check_evaluations() if c.check_name == "promotion_gate"), None)
    decision = "no gate result"
    if gate is not None:
        reasons = gate.metadata.get("reasons")
        decision = f"{gate.metadata['decision'].value}: {reasons.value if reasons else ''}"
    return Trained(trained.run_id, trained.version, trained, decision)


@dataclass(frozen=True)
class Registered:
    """What a training run registered, read back from MLflow (so a kept store can be re-scored)."""

    version: str
    run_id: str
    challenger: str
    training_set_path: str


def _registered(version: str) -> Registered:
    from hn_assets.defs.resources import ModelRegistryResource

    registry = ModelRegistryResource().registry()
    run_id = registry.client().get_model_version(registry.name, version).run_id
    run = registry.client().get_run(run_id)
    return Registered(version, run_id, run.data.tags["best_candidate"], run.data.params["training_set_path"])


def _test_rows(trained: Registered):
    """The run's test rows, exactly as the run split them (the split artefact of its MLflow run)."""
    import polars as pl

    from hn_assets.defs.resources import ModelRegistryResource
    from hn_assets.models.registry import SPLIT_ARTIFACT

    registry = ModelRegistryResource().registry()
    sides = registry.load_frame(trained.run_id, SPLIT_ARTIFACT)
    frame = pl.read_parquet(trained.training_set_path).join(sides, on="session_key")
    return frame.filter(pl.col("split") == "test")


def _scores(trained: Registered, rows) -> np.ndarray:
    from hn_assets.defs.resources import ModelRegistryResource
    from hn_assets.models.training import to_pandas

    candidate = ModelRegistryResource().registry().load_candidates(trained.run_id)[trained.challenger]
    return np.asarray(candidate.predict(to_pandas(rows, candidate.features)))


def run_scenario(scenario: str, root: Path, budget: int, rounds: int, reuse: bool = False) -> dict:
    import dagster as dg
    import polars as pl

    from hn_assets.contracts import PURCHASE_LABEL
    from hn_assets.definitions import defs
    from hn_assets.models.metrics import bootstrap

    home = root / scenario
    os.environ["HN_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    os.environ.pop("HN_PSEUDONYM_KEY", None)
    cfg = SimulationConfig(
        **{**STORE.__dict__, "days": PRE_DAYS + POST_DAYS, "scenario": scenario, "drift_start_day": PRE_DAYS}
    )
    times = {}
    # The old champion's window ends a day before the drift day (midnight UTC): the drift starts on
    # the visitors' local day, and in Sydney or Tokyo that begins on the UTC day before.
    drift_day = cfg.start_date + timedelta(days=PRE_DAYS)
    old_end = drift_day - timedelta(days=1)
    record = home / "drift_bench.json"
    if reuse and record.exists():  # a kept store: re-score its two registered versions
        kept = json.loads(record.read_text())
        old = Trained("", kept["old"], None, kept["old_gate"])
        new = Trained("", kept["retrained"], None, kept["gate"])
        conversion = kept["conversion"]
    else:
        t0 = time.perf_counter()
        conversion = simulate(cfg, home).conversion_rate
        times["simulate"] = time.perf_counter() - t0
        (home / "dagster").mkdir(parents=True, exist_ok=True)
        with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
            t0 = time.perf_counter()
            quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
            with contextlib.redirect_stdout(io.StringIO()):
                batch = (
                    defs()
                    .resolve_job_def("daily_batch")
                    .execute_in_process(instance=instance, run_config=quiet, raise_on_error=False)
                )
            if not batch.success:
                raise SystemExit(f"{scenario}: daily_batch failed")
            times["daily_batch"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            old = _training(instance, budget, rounds, window_end=old_end.isoformat())
            times["train_old"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            new = _training(instance, budget, rounds, window_weeks=WINDOW_WEEKS)
            times["retrain"] = time.perf_counter() - t0
        record.write_text(
            json.dumps(
                {
                    "old": old.version,
                    "retrained": new.version,
                    "old_gate": old.gate,
                    "gate": new.gate,
                    "conversion": conversion,
                }
            )
        )
    old_reg, new_reg = _registered(old.version), _registered(new.version)

    post = _test_rows(new_reg)  # the last post-drift week: the same rows for both models
    pre = _test_rows(old_reg)  # the old champion's own (pre-drift) test week
    first = lambda f: f.group_by("session_key").agg(pl.col("event_timestamp").min())["event_timestamp"]
    assert first(post).min().date() >= drift_day, "the retrained test week must be post-drift"
    assert first(pre).max().date() < drift_day, "the old champion must not see post-drift sessions"
    y_post = post[PURCHASE_LABEL].cast(pl.Int8).to_numpy()
    y_pre = pre[PURCHASE_LABEL].cast(pl.Int8).to_numpy()
    scores = {"old": _scores(old_reg, post), "retrained": _scores(new_reg, post)}
    paired = bootstrap(
        y_post, scores, clusters=post["session_key"].to_numpy(), pairs=[("retrained", "old")], rounds=200, seed=0
    )
    own = bootstrap(y_pre, {"old": _scores(old_reg, pre)}, clusters=pre["session_key"].to_numpy(), rounds=200)

    def cell(iv) -> list[float]:
        return [round(iv.point, 4), round(iv.low, 4), round(iv.high, 4)]

    return {
        "scenario": scenario,
        "kind": KIND[scenario],
        "conversion": round(conversion, 4),
        "old_version": old.version,
        "retrained_version": new.version,
        "gate": new.gate,
        "old_gate": old.gate,
        "pre_test": {
            "sessions": pre["session_key"].n_unique(),
            "rows": pre.height,
            "positive_share": round(float(y_pre.mean()), 4),
        },
        "post_test": {
            "sessions": post["session_key"].n_unique(),
            "rows": post.height,
            "positive_share": round(float(y_post.mean()), 4),
        },
        "old_on_pre": {m: cell(own.models["overall"]["old"][m]) for m in METRICS},
        "old_on_post": {m: cell(paired.models["overall"]["old"][m]) for m in METRICS},
        "retrained_on_post": {m: cell(paired.models["overall"]["retrained"][m]) for m in METRICS},
        "diff": {m: cell(paired.diffs["overall"][("retrained", "old")][m]) for m in METRICS},
        "mean_score_post": {k: round(float(v.mean()), 4) for k, v in scores.items()},
        "seconds": {k: round(v, 1) for k, v in times.items()},
    }


def _fmt(c: list[float], digits: int = 3) -> str:
    return f"{c[0]:.{digits}f} [{c[1]:.{digits}f}, {c[2]:.{digits}f}]"


def report(results: list[dict]) -> str:
    rows = []
    for r in results:
        for label, key in (
            ("old champion, pre-drift test week", "old_on_pre"),
            ("old champion, post-drift test week", "old_on_post"),
            ("retrained, same post-drift week", "retrained_on_post"),
            ("retrained - old (paired)", "diff"),
        ):
            digits = 4
            rows.append((r["scenario"], label, *(_fmt(r[key][m], digits) for m in METRICS)))
    out = [table(rows, ("scenario", "model / window", "ROC-AUC", "Brier", "ECE"))]
    out.append("")
    out.append(
        table(
            [
                (
                    r["scenario"],
                    r["kind"],
                    f"{r['pre_test']['sessions']} / {r['pre_test']['positive_share']:.3f}",
                    f"{r['post_test']['sessions']} / {r['post_test']['positive_share']:.3f}",
                    f"{r['mean_score_post']['old']:.3f} / {r['mean_score_post']['retrained']:.3f}",
                    r["gate"][:90],
                    ", ".join(f"{k} {v:.0f}s" for k, v in r["seconds"].items()),
                )
                for r in results
            ],
            (
                "scenario",
                "kind",
                "pre test: sessions / positive share (rows)",
                "post test: sessions / positive share",
                "mean score old / retrained",
                "gate on the retrained",
                "time",
            ),
        )
    )
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", nargs="+", default=list(DRIFTS))
    parser.add_argument("--search-budget", type=int, default=1, help="trials per model family (default 1)")
    parser.add_argument("--eval-rounds", type=int, default=50, help="the evaluation asset's bootstrap rounds")
    parser.add_argument("--keep", help="keep the stores under this folder (default: a temp dir, removed)")
    parser.add_argument("--json", help="write the figures as JSON here")
    parser.add_argument("--reuse", action="store_true", help="with --keep: re-score stores a run already trained")
    args = parser.parse_args()
    for notice in ("BetaWarning", "PreviewWarning"):
        import dagster as dg

        warnings.filterwarnings("ignore", category=getattr(dg, notice))
    print(
        f"store: seed {STORE.seed}, {STORE.users} users, {STORE.sessions_per_day} sessions/day, "
        f"{PRE_DAYS} pre-drift + {POST_DAYS} post-drift days; retrain window {WINDOW_WEEKS} weeks; "
        f"search budget {args.search_budget}; paired session bootstrap, 200 rounds, 95 %"
    )
    results = []
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        root = Path(args.keep) if args.keep else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        root.mkdir(parents=True, exist_ok=True)
        for scenario in args.scenarios:
            t0 = time.perf_counter()
            results.append(run_scenario(scenario, root, args.search_budget, args.eval_rounds, args.reuse))
            print(f"{scenario}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    print()
    print(report(results))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
