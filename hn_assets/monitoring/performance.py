"""Live performance: logged scores joined with what the sessions then did.

A logged score's label is its session's `purchased` in gold `fct_sessions` (the purchase arrives
through the normal feeds after the session ends); a score whose session is not in gold yet is
unlabelled and left out. Per day of `scored_at` (UTC): rows, positives, ROC-AUC, ECE, Brier, mean
score and base rate, the reliability curve, and the AUC per slice (device) where the slice has
both classes. A day is evaluable with at least `min_rows` rows and `min_positives` positives and
negatives.

Degradation: a day is degraded when its live AUC is more than `max_relative_drop` (5 %) below the
test ROC-AUC of the model version that served most of the day (its MLflow run's `test_roc_auc`);
the check fails when `consecutive_days` (2) calendar-consecutive evaluable days are degraded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import polars as pl

from hn_assets.models.metrics import expected_calibration_error, point_metrics, reliability_curve


@dataclass(frozen=True)
class PerformanceConfig:
    max_relative_drop: float = 0.05
    consecutive_days: int = 2
    min_rows: int = 50
    min_positives: int = 5
    slice_column: str = "device"


@dataclass
class DayPerformance:
    day: date
    rows: int
    positives: int
    model_version: str | None
    roc_auc: float | None
    ece: float | None
    brier: float | None
    mean_score: float
    base_rate: float
    reliability: list[tuple[float, float, int]] = field(default_factory=list)
    slices: dict[str, float] = field(default_factory=dict)
    reference_auc: float | None = None
    degraded: bool = False

    @property
    def evaluable(self) -> bool:
        return self.roc_auc is not None


@dataclass
class PerformanceResult:
    days: list[DayPerformance]
    labelled: int
    unlabelled: int
    config: PerformanceConfig
    overall: dict = field(default_factory=dict)

    def degraded_run(self) -> list[date]:
        """The longest run of calendar-consecutive degraded days (the check's evidence)."""
        best: list[date] = []
        run: list[date] = []
        for d in self.days:
            if d.degraded and run and d.day == run[-1] + timedelta(days=1):
                run.append(d.day)
            elif d.degraded:
                run = [d.day]
            else:
                run = []
            if len(run) > len(best):
                best = list(run)
        return best

    @property
    def failed(self) -> bool:
        return len(self.degraded_run()) >= self.config.consecutive_days

    def summary(self) -> dict:
        latest = next((d for d in reversed(self.days) if d.evaluable), None)
        return {
            "scores_labelled": float(self.labelled),
            "scores_unlabelled": float(self.unlabelled),
            "days_evaluated": float(sum(d.evaluable for d in self.days)),
            "days_degraded": float(sum(d.degraded for d in self.days)),
            "consecutive_days_degraded": float(len(self.degraded_run())),
            "live_roc_auc": float(self.overall["roc_auc"]) if self.overall.get("roc_auc") is not None else None,
            "live_ece": float(self.overall["ece"]) if self.overall.get("ece") is not None else None,
            "latest_day_roc_auc": float(latest.roc_auc) if latest else None,
            "latest_day_reference_auc": float(latest.reference_auc) if latest and latest.reference_auc else None,
        }

    def table(self) -> list[dict]:
        return [
            {
                "day": d.day.isoformat(),
                "rows": d.rows,
                "positives": d.positives,
                "model_version": d.model_version,
                "roc_auc": _round(d.roc_auc),
                "reference_auc": _round(d.reference_auc),
                "ece": _round(d.ece),
                "brier": _round(d.brier),
                "mean_score": _round(d.mean_score),
                "base_rate": _round(d.base_rate),
                "degraded": d.degraded,
                "slices_roc_auc": {k: _round(v) for k, v in d.slices.items()},
            }
            for d in self.days
        ]


def _round(value):
    return None if value is None else round(float(value), 5)


def label(scores: pl.DataFrame, sessions: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Scores joined with their session's `purchased` (sessions: session_key, purchased); returns
    the labelled rows and the number of unlabelled ones."""
    labels = sessions.select("session_key", pl.col("purchased").cast(pl.Int8)).unique("session_key")
    joined = scores.join(labels, on="session_key", how="left")
    return joined.filter(pl.col("purchased").is_not_null()), int(joined["purchased"].null_count())


def _evaluable(y: np.ndarray, cfg: PerformanceConfig) -> bool:
    positives = int(y.sum())
    return len(y) >= cfg.min_rows and positives >= cfg.min_positives and len(y) - positives >= cfg.min_positives


def live_performance(
    labelled: pl.DataFrame,
    unlabelled: int,
    reference_auc: dict[str, float | None],
    config: PerformanceConfig | None = None,
) -> PerformanceResult:
    """`labelled`: scored_at, calibrated_score, purchased, model_version (+ the slice column);
    `reference_auc`: model version -> its test ROC-AUC."""
    config = config or PerformanceConfig()
    frame = labelled.with_columns(pl.col("scored_at").dt.convert_time_zone("UTC").dt.date().alias("_day"))
    days = []
    for (day,), rows in sorted(frame.group_by("_day"), key=lambda kv: kv[0][0]):
        y = rows["purchased"].to_numpy().astype(int)
        p = rows["calibrated_score"].to_numpy().astype(float)
        versions = (
            rows["model_version"].drop_nulls().value_counts(sort=True) if "model_version" in rows.columns else None
        )
        version = str(versions[0, 0]) if versions is not None and versions.height else None
        ok = _evaluable(y, config)
        metrics = point_metrics(y, p) if ok else {}
        slices = {}
        if ok and config.slice_column in rows.columns:
            for (value,), part in rows.group_by(config.slice_column):
                ys = part["purchased"].to_numpy().astype(int)
                if 0 < ys.sum() < len(ys):
                    slices[str(value)] = float(
                        point_metrics(ys, part["calibrated_score"].to_numpy().astype(float))["roc_auc"]
                    )
        ref = reference_auc.get(version) if version else None
        auc = float(metrics["roc_auc"]) if ok else None
        days.append(
            DayPerformance(
                day=day,
                rows=len(y),
                positives=int(y.sum()),
                model_version=version,
                roc_auc=auc,
                ece=float(expected_calibration_error(y, p)) if ok else None,
                brier=float(metrics["brier"]) if ok else None,
                mean_score=float(p.mean()) if len(p) else 0.0,
                base_rate=float(y.mean()) if len(y) else 0.0,
                reliability=reliability_curve(y, p) if ok else [],
                slices=slices,
                reference_auc=ref,
                degraded=bool(ok and ref is not None and auc < (1 - config.max_relative_drop) * ref),
            )
        )
    y_all = frame["purchased"].to_numpy().astype(int) if frame.height else np.array([], dtype=int)
    p_all = frame["calibrated_score"].to_numpy().astype(float) if frame.height else np.array([])
    overall = {}
    if len(y_all) and 0 < y_all.sum() < len(y_all):
        overall = {**point_metrics(y_all, p_all), "ece": expected_calibration_error(y_all, p_all)}
    return PerformanceResult(days, frame.height, unlabelled, config, overall)
