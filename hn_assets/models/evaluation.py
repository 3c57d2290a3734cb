"""The purchase-intent evaluation: every candidate, the baselines, the registered challenger and the
champion on one test window.

Scores come from scorers (`predict(frame) -> probabilities`): the run's candidates and baselines, and
the registered challenger, champion and floor model *as loaded from the registry* (the asset shell
loads them with `mlflow.pyfunc.load_model`, exactly as serving will). Every interval is a paired
session bootstrap (`metrics.bootstrap`); the row bootstrap is computed once more for the challenger
only, to show how much too narrow it was. The result feeds the gate (`gate.Evidence`) and the report
(`report.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import polars as pl

from hn_assets.contracts import DEVICES
from hn_assets.models.behaviour import Scorer, behaviour_tests
from hn_assets.models.gate import Evidence, SliceEvidence
from hn_assets.models.metrics import (
    Bootstrap,
    Interval,
    bootstrap,
    lift_by_decile,
    pr_points,
    reliability_curve,
    roc_points,
    summary,
)
from hn_assets.models.training import LABEL, to_pandas

CHALLENGER, CHAMPION, FLOOR = "challenger", "champion", "floor"
BASELINES = ("rule_cart_add", "logistic_regression")


@dataclass(frozen=True)
class EvaluationConfig:
    bootstrap_rounds: int = 200
    interval_level: float = 0.95
    seed: int = 0


def slice_masks(test: pl.DataFrame) -> dict[str, np.ndarray]:
    """Slices of the test window (a snapshot row may sit in several)."""
    out = {f"device={d}": pl.col("device") == d for d in DEVICES}
    out |= {
        "anonymous": pl.col("user_id").is_null(),
        "known user": pl.col("user_id").is_not_null(),
        "returning": pl.col("sessions_last_30d").fill_null(0) >= 2,
        "new": pl.col("sessions_last_30d").fill_null(0) < 2,
    }
    out |= {f"channel={c}": pl.col("channel") == c for c in test["channel"].drop_nulls().unique().sort()}
    if "country" in test.columns:
        out |= {f"country={c}": pl.col("country") == c for c in test["country"].drop_nulls().unique().sort()}
    masks = test.select(**{name: cond.fill_null(False) for name, cond in out.items()})
    return {name: masks[name].to_numpy() for name in masks.columns}


def score_all(test: pl.DataFrame, scorers: dict[str, Scorer]) -> dict[str, np.ndarray]:
    return {name: np.asarray(s.predict(to_pandas(test, s.features)), float) for name, s in scorers.items()}


# ---- explanations -----------------------------------------------------------------------------------
def _pipeline(estimator):
    """The fitted Pipeline(prepare, booster) inside a (possibly calibrated) candidate."""
    inner = getattr(estimator, "calibrated_classifiers_", None)
    estimator = inner[0].estimator.estimator if inner else estimator
    return estimator if hasattr(estimator, "named_steps") and "prepare" in estimator.named_steps else None


def explanations(candidate, x: pd.DataFrame, sample: int = 5) -> dict:
    """SHAP values from the boosters' native contributions: global importance, top reasons per row."""
    pipeline = _pipeline(candidate.estimator)
    if pipeline is None:
        return {}
    prepared, booster = pipeline.named_steps["prepare"].transform(x[candidate.features]), pipeline.named_steps["model"]
    if candidate.kind == "lightgbm":
        contrib = booster.predict(prepared, pred_contrib=True)
    elif candidate.kind == "xgboost":
        import xgboost as xgb

        dm = xgb.DMatrix(prepared, enable_categorical=True, feature_types=booster.feature_types)
        contrib = booster.get_booster().predict(dm, pred_contribs=True, iteration_range=(0, booster.best_iteration + 1))
    else:
        return {}
    names, values = list(prepared.columns), np.asarray(contrib)[:, :-1]
    importance = dict(sorted(zip(names, np.abs(values).mean(axis=0).round(5).tolist()), key=lambda kv: -kv[1]))
    top = np.argsort(-candidate.predict(x))[:sample]
    reasons = [[names[j] for j in np.argsort(-values[i])[:3]] for i in top]
    return {"global_importance": importance, "top_reasons_of_highest_scores": reasons}


# ---- the evaluation ---------------------------------------------------------------------------------
@dataclass
class Evaluation:
    challenger: str  # the best candidate's name (its registered copy is scored as "challenger")
    models: dict[str, dict]  # name -> point metrics + "<metric>_ci" (session bootstrap)
    diffs: dict[str, dict[str, tuple]]  # "challenger - <other>" -> metric -> (point, low, high)
    widths: dict[str, dict[str, float]]  # "session" / "row" -> metric -> interval width (challenger)
    slices: list[dict]
    behaviour: dict
    explanations: dict
    curves: dict  # name -> {"roc", "pr", "reliability"}
    lift: list[float]
    evidence: Evidence
    rows: int
    sessions: int
    champion_version: str | None
    uplift: dict = field(default_factory=dict)


def _intervals_of(b: Bootstrap, name: str) -> dict[str, tuple]:
    return {f"{m}_ci": (i.low, i.high) for m, i in b.models["overall"][name].items()}


def slice_rows(test: pl.DataFrame, y: np.ndarray, b: Bootstrap, masks: dict, has_champion: bool) -> list[dict]:
    rows = []
    for name, mask in masks.items():
        positives = int(y[mask].sum())
        ch = b.models[name][CHALLENGER]["roc_auc"]
        champ = b.models[name][CHAMPION]["roc_auc"] if has_champion else None
        diff = b.diffs[name][(CHALLENGER, CHAMPION)]["roc_auc"] if has_champion else None
        defined = 0 < positives < int(mask.sum())
        rows.append(
            {
                "slice": name,
                "rows": int(mask.sum()),
                "sessions": int(test.filter(pl.Series(mask))["session_key"].n_unique()),
                "positives": positives,
                "challenger": ch if defined else None,
                "champion": champ if defined else None,
                "diff": diff if defined else None,
            }
        )
    return rows


def evaluate(
    test: pl.DataFrame,
    candidates: dict[str, Scorer],
    challenger: str,
    registered: dict[str, Scorer],
    champion_version: str | None = None,
    champion_error: str | None = None,
    floor_version: str | None = None,
    cfg: EvaluationConfig | None = None,
) -> Evaluation:
    """`registered`: "challenger" (required), "champion" and "floor" when loaded from the registry.
    A champion version without a "champion" scorer (it failed to load) is passed to the gate as
    missing metrics (fail closed)."""
    cfg = cfg or EvaluationConfig()
    y = test[LABEL].cast(pl.Int8).to_numpy()
    sessions = test["session_key"].to_numpy()
    scores = score_all(test, {**candidates, **registered})
    kw = {"rounds": cfg.bootstrap_rounds, "seed": cfg.seed, "level": cfg.interval_level}
    others = [n for n in (CHAMPION, *BASELINES) if n in scores]
    overall = bootstrap(y, scores, sessions, pairs=[(CHALLENGER, o) for o in others], **kw)
    rows = bootstrap(y, {CHALLENGER: scores[CHALLENGER]}, None, **kw)
    masks = slice_masks(test)
    # Bonferroni across slices: ~25 slices judged at 95 % each would flag one by chance in most runs.
    sliced_kw = {**kw, "level": 1 - (1 - cfg.interval_level) / max(1, len(masks))}
    pair = [n for n in (CHALLENGER, CHAMPION) if n in scores]
    sliced = bootstrap(
        y,
        {n: scores[n] for n in pair},
        sessions,
        pairs=[tuple(pair)] if len(pair) == 2 else [],
        subsets=masks,
        **sliced_kw,
    )
    has_champion = CHAMPION in scores
    models = {n: {**summary(y, p), **_intervals_of(overall, n)} for n, p in scores.items()}
    diffs = {
        f"{CHALLENGER} - {o}": {m: i.as_tuple() for m, i in overall.diffs["overall"][(CHALLENGER, o)].items()}
        for o in others
    }
    slices = slice_rows(test, y, sliced, masks, has_champion)
    best = candidates[challenger]
    x = to_pandas(test, best.features)
    evidence = Evidence(
        challenger=models[CHALLENGER],
        baselines={b: models[b] for b in BASELINES if b in models},
        vs_baselines={b: overall.diffs["overall"][(CHALLENGER, b)] for b in BASELINES if b in scores},
        champion_version=champion_version,
        champion=models.get(CHAMPION),
        vs_champion=overall.diffs["overall"][(CHALLENGER, CHAMPION)] if has_champion else None,
        champion_error=champion_error if champion_version and not has_champion else None,
        **_floor(models, floor_version, champion_version),
        slices=[SliceEvidence(s["slice"], s["positives"], s["challenger"], s["champion"], s["diff"]) for s in slices],
        behaviour_passed=False,
    )
    behaviour = behaviour_tests(registered[CHALLENGER], test)
    evidence = _with_behaviour(evidence, all(t["passed"] for t in behaviour.values()))
    return Evaluation(
        challenger=challenger,
        models=models,
        diffs=diffs,
        widths={
            "session": {m: i.width for m, i in overall.models["overall"][CHALLENGER].items()},
            "row": {m: i.width for m, i in rows.models["overall"][CHALLENGER].items()},
        },
        slices=slices,
        behaviour=behaviour,
        explanations=explanations(best, x),
        curves={n: _curves(y, scores[n]) for n in (CHALLENGER, CHAMPION, *BASELINES) if n in scores},
        lift=lift_by_decile(y, scores[CHALLENGER]),
        evidence=evidence,
        rows=test.height,
        sessions=int(test["session_key"].n_unique()),
        champion_version=champion_version,
    )


def _floor(models: dict, floor_version: str | None, champion_version: str | None) -> dict:
    """The best promoted model on this window: the better of the recorded floor model and the
    champion. A recorded floor model that could not be scored leaves its metrics None (the gate
    then fails closed)."""
    if floor_version and floor_version != champion_version and FLOOR not in models:
        return {"floor_version": floor_version, "floor": None}
    known = [(v, models[n]) for n, v in ((CHAMPION, champion_version), (FLOOR, floor_version)) if n in models]
    if not known:
        return {"floor_version": None, "floor": None}
    version, metrics = max(known, key=lambda vm: vm[1]["roc_auc"])
    return {"floor_version": version, "floor": metrics}


def _with_behaviour(evidence: Evidence, passed: bool) -> Evidence:
    from dataclasses import replace

    return replace(evidence, behaviour_passed=passed)


def _curves(y: np.ndarray, p: np.ndarray) -> dict:
    return {"roc": roc_points(y, p), "pr": pr_points(y, p), "reliability": reliability_curve(y, p)}


def interval(values: tuple | Interval | None) -> str:
    if values is None:
        return "–"
    point, low, high = values.as_tuple() if isinstance(values, Interval) else values
    return f"{point:.4f} ({low:.4f} to {high:.4f})"
