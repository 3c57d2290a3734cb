"""Evaluation metrics for calibrated probabilities: ranking, calibration, business cut-offs."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Weighted mean |observed rate - mean score| over equal-frequency score bins."""
    order = np.argsort(p, kind="stable")
    error = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk):
            error += len(chunk) / len(p) * abs(y[chunk].mean() - p[chunk].mean())
    return float(error)


def reliability_curve(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[tuple[float, float, int]]:
    """(mean score, observed rate, count) per equal-frequency bin."""
    order = np.argsort(p, kind="stable")
    return [(float(p[c].mean()), float(y[c].mean()), len(c)) for c in np.array_split(order, bins) if len(c)]


def bootstrap_ci(
    metric, y: np.ndarray, p: np.ndarray, rounds: int = 200, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of metric(y, p) (resamples with both classes only)."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        idx = rng.integers(0, len(y), len(y))
        if 0 < y[idx].sum() < len(idx):
            values.append(metric(y[idx], p[idx]))
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def lift_by_decile(y: np.ndarray, p: np.ndarray) -> list[float]:
    """Positive rate of each score decile (highest first) over the overall rate."""
    order = np.argsort(-p, kind="stable")
    base = y.mean()
    return [float(y[c].mean() / base) if base else 0.0 for c in np.array_split(order, 10)]


def summary(y: np.ndarray, p: np.ndarray, thresholds: tuple[float, ...] = (0.5, 0.9)) -> dict[str, float]:
    out = {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
    }
    for t in thresholds:
        chosen = p >= t
        out[f"precision_at_{t}"] = float(y[chosen].mean()) if chosen.any() else float("nan")
        out[f"recall_at_{t}"] = float(y[chosen].sum() / y.sum()) if y.sum() else float("nan")
    return out
