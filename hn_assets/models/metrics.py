"""Evaluation metrics for calibrated probabilities: ranking, calibration, business cut-offs, and the
session-level paired bootstrap behind every interval the evaluation reports and the gate reads.

Why sessions: a training row is a snapshot, and one session contributes up to 30 correlated rows
(purchasing sessions about twice as many). Resampling rows treats them as independent, so the
intervals come out too narrow and slices look credibly weak too easily. The cluster bootstrap
resamples sessions with replacement; a row's weight is how often its session was drawn.

Why paired: the challenger-minus-champion difference is computed on the *same* resample, so the
interval of the difference is narrower than what two separate intervals would suggest (both models
find the same sessions easy or hard). Rejected: comparing two unpaired intervals for overlap (too
conservative) and DeLong's test (assumes independent rows, and covers ROC-AUC only).

The metrics are written over sample weights on a score order computed once per model, so each
resample costs O(rows) instead of a fresh sort; with unit weights they equal scikit-learn's
`roc_auc_score`, `average_precision_score` and `brier_score_loss` (a test holds them equal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METRICS = ("roc_auc", "pr_auc", "brier", "ece")
LOWER_IS_BETTER = frozenset({"brier", "ece"})
ECE_BINS = 10


@dataclass(frozen=True)
class Ranked:
    """One model's scores on a fixed set of rows, sorted once (descending) with tied scores grouped."""

    order: np.ndarray  # row indices, highest score first
    group: np.ndarray  # tie-group index of each sorted row
    groups: int
    y: np.ndarray  # labels in sorted order
    p: np.ndarray  # scores in sorted order

    @classmethod
    def of(cls, y: np.ndarray, p: np.ndarray) -> Ranked:
        order = np.argsort(-p, kind="stable")
        ps = p[order]
        group = np.concatenate([[0], np.cumsum(ps[1:] != ps[:-1])]) if len(ps) else np.zeros(0, int)
        return cls(order, group, int(group[-1]) + 1 if len(ps) else 0, y[order].astype(float), ps)


def weighted_metrics(ranked: Ranked, w: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC (average precision), Brier and ECE with row weights `w` (in original row
    order). NaN for the ranking metrics when the weighted sample lacks a class."""
    ws = w[ranked.order].astype(float)
    pos = np.bincount(ranked.group, ws * ranked.y, ranked.groups)
    neg = np.bincount(ranked.group, ws * (1 - ranked.y), ranked.groups)
    total_pos, total_neg, total = pos.sum(), neg.sum(), ws.sum()
    out = {"brier": float(np.sum(ws * (ranked.p - ranked.y) ** 2) / total) if total else float("nan")}
    out["ece"] = _weighted_ece(ranked, ws, total)
    if total_pos <= 0 or total_neg <= 0:
        return {"roc_auc": float("nan"), "pr_auc": float("nan"), **out}
    cum_pos, cum_neg = np.cumsum(pos), np.cumsum(neg)
    below = total_neg - cum_neg  # negatives scored strictly lower than the group
    auc = float(np.sum(pos * (below + 0.5 * neg)) / (total_pos * total_neg))
    precision = np.divide(cum_pos, cum_pos + cum_neg, out=np.zeros_like(cum_pos), where=(cum_pos + cum_neg) > 0)
    ap = float(np.sum(pos / total_pos * precision))
    return {"roc_auc": auc, "pr_auc": ap, **out}


def _weighted_ece(ranked: Ranked, ws: np.ndarray, total: float, bins: int = ECE_BINS) -> float:
    """Weighted mean |observed rate - mean score| over equal-weight score bins (ascending order)."""
    if total <= 0:
        return float("nan")
    ascending = slice(None, None, -1)
    w, y, p = ws[ascending], ranked.y[ascending], ranked.p[ascending]
    before = np.cumsum(w) - w
    b = np.minimum((before / total * bins).astype(int), bins - 1)
    gap = np.bincount(b, w * y, bins) - np.bincount(b, w * p, bins)
    return float(np.sum(np.abs(gap)) / total)


def point_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return weighted_metrics(Ranked.of(y, p), np.ones(len(y)))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """Weighted mean |observed rate - mean score| over equal-frequency score bins."""
    ranked = Ranked.of(y, p)
    return _weighted_ece(ranked, np.ones(len(y)), float(len(y)), bins)


def reliability_curve(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[tuple[float, float, int]]:
    """(mean score, observed rate, count) per equal-frequency bin."""
    order = np.argsort(p, kind="stable")
    return [(float(p[c].mean()), float(y[c].mean()), len(c)) for c in np.array_split(order, bins) if len(c)]


def lift_by_decile(y: np.ndarray, p: np.ndarray) -> list[float]:
    """Positive rate of each score decile (highest first) over the overall rate."""
    order = np.argsort(-p, kind="stable")
    base = y.mean()
    return [float(y[c].mean() / base) if base else 0.0 for c in np.array_split(order, 10)]


def roc_points(y: np.ndarray, p: np.ndarray, points: int = 200) -> list[tuple[float, float]]:
    """(false-positive rate, true-positive rate) along the ROC curve, thinned for plotting."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).astype(int))
    return list(zip(fpr[keep].tolist(), tpr[keep].tolist()))


def pr_points(y: np.ndarray, p: np.ndarray, points: int = 200) -> list[tuple[float, float]]:
    """(recall, precision) along the precision-recall curve, thinned for plotting."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, p)
    keep = np.unique(np.linspace(0, len(recall) - 1, min(points, len(recall))).astype(int))
    return list(zip(recall[keep].tolist(), precision[keep].tolist()))


def summary(y: np.ndarray, p: np.ndarray, thresholds: tuple[float, ...] = (0.5, 0.9)) -> dict[str, float]:
    out = point_metrics(y, p)
    for t in thresholds:
        chosen = p >= t
        out[f"precision_at_{t}"] = float(y[chosen].mean()) if chosen.any() else float("nan")
        out[f"recall_at_{t}"] = float(y[chosen].sum() / y.sum()) if y.sum() else float("nan")
    return out


# ---- the bootstrap ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    point: float
    low: float
    high: float

    @property
    def width(self) -> float:
        return self.high - self.low

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.point, self.low, self.high)


@dataclass(frozen=True)
class Bootstrap:
    """Per subset (`overall`, each slice): each model's metric intervals and each pair's paired
    difference (first minus second) with its interval."""

    models: dict[str, dict[str, dict[str, Interval]]]  # subset -> model -> metric -> interval
    diffs: dict[str, dict[tuple[str, str], dict[str, Interval]]]  # subset -> (a, b) -> metric -> a - b
    rounds: int
    level: float
    unit: str  # "session" or "row"


def cluster_codes(clusters) -> tuple[np.ndarray, int]:
    """Cluster labels (e.g. session keys) -> integer codes 0..k-1 and k."""
    _, codes = np.unique(np.asarray(clusters), return_inverse=True)
    return codes, int(codes.max()) + 1 if len(codes) else 0


def bootstrap(
    y: np.ndarray,
    scores: dict[str, np.ndarray],
    clusters=None,
    pairs: list[tuple[str, str]] | None = None,
    subsets: dict[str, np.ndarray] | None = None,
    rounds: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> Bootstrap:
    """Percentile intervals by resampling `clusters` (sessions; None: rows) with replacement.

    One draw of cluster counts per round is shared by every model, pair and subset, so differences
    are paired and a slice is resampled as the sessions of the slice that the round drew. Rounds
    in which a subset lacks a class are skipped for its ranking metrics."""
    codes, k = cluster_codes(np.arange(len(y)) if clusters is None else clusters)
    subsets = subsets or {"overall": np.ones(len(y), bool)}
    pairs = pairs or []
    ranked = {s: {m: Ranked.of(y[mask], p[mask]) for m, p in scores.items()} for s, mask in subsets.items()}
    sub_codes = {s: codes[mask] for s, mask in subsets.items()}
    draws: dict[str, dict[str, list]] = {s: {m: [] for m in scores} for s in subsets}
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        counts = np.bincount(rng.integers(0, k, k), minlength=k).astype(float)
        for s in subsets:
            w = counts[sub_codes[s]]
            for m in scores:
                draws[s][m].append(weighted_metrics(ranked[s][m], w))
    unit = "row" if clusters is None else "session"
    ones = {s: np.ones(int(mask.sum())) for s, mask in subsets.items()}
    points = {s: {m: weighted_metrics(ranked[s][m], ones[s]) for m in scores} for s in subsets}
    models = {s: {m: _intervals(points[s][m], draws[s][m], level) for m in scores} for s in subsets}
    diffs = {
        s: {(a, b): _diff_intervals(points[s][a], points[s][b], draws[s][a], draws[s][b], level) for a, b in pairs}
        for s in subsets
    }
    return Bootstrap(models, diffs, rounds, level, unit)


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def _intervals(point: dict, draws: list[dict], level: float) -> dict[str, Interval]:
    return {m: Interval(point[m], *_percentiles(np.array([d[m] for d in draws]), level)) for m in METRICS}


def _diff_intervals(pa: dict, pb: dict, da: list[dict], db: list[dict], level: float) -> dict[str, Interval]:
    return {
        m: Interval(pa[m] - pb[m], *_percentiles(np.array([a[m] - b[m] for a, b in zip(da, db)]), level))
        for m in METRICS
    }


def bootstrap_ci(
    metric, y: np.ndarray, p: np.ndarray, rounds: int = 200, seed: int = 0, level: float = 0.95, clusters=None
) -> tuple[float, float]:
    """Percentile interval of any metric(y, p), resampling `clusters` (None: rows) with replacement
    (resamples with both classes only). Slower than `bootstrap` (metric recomputed from scratch)."""
    codes, k = cluster_codes(np.arange(len(y)) if clusters is None else clusters)
    members = [np.flatnonzero(codes == c) for c in range(k)] if clusters is not None else None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        drawn = rng.integers(0, k, k)
        idx = drawn if members is None else np.concatenate([members[c] for c in drawn])
        if 0 < y[idx].sum() < len(idx):
            values.append(metric(y[idx], p[idx]))
    return _percentiles(np.array(values, float), level)
