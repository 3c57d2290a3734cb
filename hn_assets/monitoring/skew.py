"""Training-serving skew: the feature vector the service used, against the training-set row for the
same `(session_key, as_of)`.

A logged score is matched to the snapshot of the same session (gold `fct_session_snapshots`) whose
`as_of` is nearest its `scored_at`, within `match_tolerance_seconds`; a score at a moment that is
no snapshot (after checkout began, beyond the snapshot cap) cannot be compared and is counted as
unmatched, not as skew. The offline vector of a matched snapshot is built by the training set's own
logic (features/training_set.py: the spine row, Feast's point-in-time join with the feature
service) by the Dagster shell; this module compares the two vectors.

Per feature: rows compared, rows that differ beyond tolerance, their share and a few examples.
Numbers differ when |live - offline| > abs_tolerance + rel_tolerance * |offline| (per-feature
tolerances override: `seconds_since_start` is allowed the match tolerance), text and booleans when
not equal; one side missing and the other not is a difference. A feature of a group the service
says it did not use for the row (`feature_groups`: e.g. no user history without personalisation
consent) is not compared for that row (the service may log a view by a short name: `session` for
`session_activity`). The check warns when the share of rows with any difference
exceeds `warn_share`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl


@dataclass(frozen=True)
class SkewConfig:
    sample_size: int = 500
    match_tolerance_seconds: float = 1.0
    abs_tolerance: float = 1e-6
    rel_tolerance: float = 1e-6
    tolerances: dict[str, float] = field(default_factory=lambda: {"seconds_since_start": 1.0})
    warn_share: float = 0.01
    seed: int = 0


@dataclass
class FeatureSkew:
    feature: str
    compared: int
    mismatched: int
    examples: list[dict]

    @property
    def share(self) -> float:
        return self.mismatched / self.compared if self.compared else 0.0


@dataclass
class SkewResult:
    sampled: int
    matched: int
    features: list[FeatureSkew]
    rows_mismatched: int
    config: SkewConfig

    @property
    def unmatched(self) -> int:
        return self.sampled - self.matched

    @property
    def row_mismatch_share(self) -> float:
        return self.rows_mismatched / self.matched if self.matched else 0.0

    @property
    def worst(self) -> FeatureSkew | None:
        return max(self.features, key=lambda f: f.share, default=None)

    @property
    def warn(self) -> bool:
        return self.row_mismatch_share > self.config.warn_share

    def skewed_features(self) -> list[str]:
        return [f.feature for f in self.features if f.mismatched]

    def summary(self) -> dict:
        worst = self.worst
        return {
            "rows_sampled": float(self.sampled),
            "rows_matched": float(self.matched),
            "rows_unmatched": float(self.unmatched),
            "row_mismatch_share": float(self.row_mismatch_share),
            "max_feature_mismatch_share": float(worst.share) if worst else 0.0,
            "features_with_mismatches": float(len(self.skewed_features())),
        }

    def table(self) -> list[dict]:
        return [
            {
                "feature": f.feature,
                "compared": f.compared,
                "mismatched": f.mismatched,
                "share": round(f.share, 6),
                "examples": f.examples,
            }
            for f in sorted(self.features, key=lambda f: (-f.share, f.feature))
        ]


def match_snapshots(logged: pl.DataFrame, snapshots: pl.DataFrame, tolerance_seconds: float) -> pl.DataFrame:
    """request_id -> the snapshot (snapshot_key, as_of, ...) of the same session nearest in time.
    `logged`: request_id, session_key, scored_at; `snapshots`: session_key, as_of, snapshot_key, ..."""
    left = logged.select("request_id", "session_key", pl.col("scored_at").dt.convert_time_zone("UTC")).sort("scored_at")
    right = snapshots.with_columns(
        (
            pl.col("as_of").dt.replace_time_zone("UTC")
            if snapshots.schema["as_of"].time_zone is None
            else pl.col("as_of")
        ).dt.convert_time_zone("UTC")
    ).sort("as_of")
    joined = left.join_asof(
        right,
        left_on="scored_at",
        right_on="as_of",
        by="session_key",
        strategy="nearest",
        tolerance=f"{int(tolerance_seconds * 1_000_000)}us",
        check_sortedness=False,  # both sides sorted by time above; polars cannot check within groups
    )
    return joined.filter(pl.col("as_of").is_not_null())


def _group_used(view: str, logged: list[str]) -> bool:
    """Whether the service says it used feature view `view`: its name, or a shorter name the
    service logs for it (`session` for `session_activity`)."""
    return any(g and (g == view or view.startswith(f"{g}_")) for g in logged)


def _differs(live: pl.Expr, offline: pl.Expr, numeric: bool, tolerance: float, rel: float) -> pl.Expr:
    one_missing = live.is_null() != offline.is_null()
    if numeric:
        both = (live.cast(pl.Float64) - offline.cast(pl.Float64)).abs() > (
            tolerance + rel * offline.cast(pl.Float64).abs()
        )
    else:
        both = live.cast(pl.String) != offline.cast(pl.String)
    return one_missing | (live.is_not_null() & offline.is_not_null() & both)


def compare(
    live: pl.DataFrame,
    offline: pl.DataFrame,
    features: list[str],
    config: SkewConfig | None = None,
    sampled: int | None = None,
    groups: dict[str, str] | None = None,
    max_examples: int = 5,
) -> SkewResult:
    """`live` and `offline`: request_id + one column per feature (same names). `live` may carry
    `feature_groups` (comma-separated); `groups` maps a feature to its group (feature view)."""
    config = config or SkewConfig()
    joined = live.join(offline, on="request_id", how="inner", suffix="__offline")
    numeric = {f: offline.schema[f].is_numeric() for f in features}
    used = (
        joined["feature_groups"].fill_null("").str.split(",").to_list()
        if groups and "feature_groups" in joined.columns
        else None
    )
    per_feature, any_diff = [], pl.Series([False] * joined.height, dtype=pl.Boolean)
    for name in features:
        tol = config.tolerances.get(name, config.abs_tolerance)
        differs = joined.select(
            _differs(pl.col(name), pl.col(f"{name}__offline"), numeric[name], tol, config.rel_tolerance)
            .fill_null(False)
            .alias("d")
        )["d"]
        if used is not None and name in groups:
            considered = pl.Series([_group_used(groups[name], row) for row in used], dtype=pl.Boolean)
        else:
            considered = pl.Series([True] * joined.height, dtype=pl.Boolean)
        differs = differs & considered
        any_diff = any_diff | differs
        bad = joined.filter(differs)
        examples = [
            {"request_id": r["request_id"], "live": r[name], "offline": r[f"{name}__offline"]}
            for r in bad.head(max_examples).select("request_id", name, f"{name}__offline").to_dicts()
        ]
        per_feature.append(FeatureSkew(name, int(considered.sum()), int(differs.sum()), examples))
    return SkewResult(
        sampled if sampled is not None else live.height, joined.height, per_feature, int(any_diff.sum()), config
    )
