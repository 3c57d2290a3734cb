"""Drift between the champion's reference and the recent live window: Evidently 0.7 and PSI.

Evidently's `DataDriftPreset` (with its tests) gives, per column, a `ValueDrift` score with the
method and threshold Evidently chose for the column's type and the sample sizes (e.g. normed
Wasserstein distance for numbers and Jensen-Shannon distance for categories when the reference
holds over 1,000 rows, K-S / chi-square p-values below), whether the column drifted (its test),
and `DriftedColumnsCount` (count and share of drifted columns). Evidently 0.7 has no dataset-drift
boolean: the dataset has drifted when the share reaches `drift_share` (Evidently's convention, 0.5).

The Population Stability Index is computed here for the key numeric features: bins at the
reference's deciles (ties merged, missing values a bin of their own),
PSI = sum over bins of (cur - ref) * ln(cur / ref) with shares floored at 1e-4. Above 0.25 is the
usual "significant shift" convention (0.1-0.25 moderate).

A report alerts (and recommends retraining) when the dataset drifted or any key feature's PSI
reaches the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import polars as pl

PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class DriftConfig:
    drift_share: float = 0.5  # dataset drift: share of drifted columns at or above this
    psi_threshold: float = 0.25
    psi_bins: int = 10
    psi_features: tuple[str, ...] | None = None  # None: every numeric column
    method: str | None = None  # an Evidently stat test for every column (None: Evidently's choice)
    threshold: float | None = None  # its threshold (None: the method's default)
    max_reference_rows: int = 50_000
    seed: int = 0


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str  # numerical | categorical
    method: str
    threshold: float | None
    score: float
    drifted: bool
    psi: float | None = None


@dataclass
class DriftResult:
    columns: list[ColumnDrift]
    drifted_count: int
    drifted_share: float
    reference_rows: int
    current_rows: int
    config: DriftConfig
    snapshot: object = field(default=None, repr=False)  # the Evidently snapshot (save_html)

    @property
    def dataset_drift(self) -> bool:
        return self.drifted_share >= self.config.drift_share

    @property
    def psi_alerts(self) -> list[str]:
        return [c.column for c in self.columns if c.psi is not None and c.psi >= self.config.psi_threshold]

    @property
    def max_psi(self) -> float:
        values = [c.psi for c in self.columns if c.psi is not None]
        return float(max(values)) if values else 0.0

    @property
    def alert(self) -> bool:
        return self.dataset_drift or bool(self.psi_alerts)

    def reasons(self) -> list[str]:
        out = []
        if self.dataset_drift:
            out.append(
                f"{self.drifted_count} of {len(self.columns)} columns drifted "
                f"(share {self.drifted_share:.2f} >= {self.config.drift_share})"
            )
        for name in self.psi_alerts:
            psi = next(c.psi for c in self.columns if c.column == name)
            out.append(f"PSI {name} = {psi:.3f} >= {self.config.psi_threshold}")
        return out

    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def summary(self) -> dict:
        """The figures as plain values (floats, so the UI plots them over time)."""
        return {
            "drifted_share": float(self.drifted_share),
            "drifted_columns_count": float(self.drifted_count),
            "columns_checked": float(len(self.columns)),
            "max_drift_score": float(max((c.score for c in self.columns if not _is_p_value(c.method)), default=0.0)),
            "max_psi": self.max_psi,
            "reference_rows": float(self.reference_rows),
            "current_rows": float(self.current_rows),
        }

    def table(self) -> list[dict]:
        return [
            {
                "column": c.column,
                "kind": c.kind,
                "method": c.method,
                "threshold": c.threshold,
                "score": round(c.score, 6),
                "drifted": c.drifted,
                "psi": None if c.psi is None else round(c.psi, 6),
            }
            for c in self.columns
        ]


def _is_p_value(method: str) -> bool:
    return "p_value" in method.lower()


def psi(reference, current, bins: int = 10) -> float:
    """Population Stability Index of `current` against `reference` (see the module docstring)."""
    ref = np.asarray(reference, dtype="float64")
    cur = np.asarray(current, dtype="float64")
    ref_missing, cur_missing = np.isnan(ref), np.isnan(cur)
    known = ref[~ref_missing]
    if len(ref) == 0 or len(cur) == 0:
        return float("nan")
    edges = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1])) if len(known) else np.array([])

    def shares(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(edges, values[~missing], side="right"), minlength=len(edges) + 1)
        counts = np.append(counts, missing.sum()).astype("float64")
        return np.maximum(counts / len(values), PSI_FLOOR)

    r, c = shares(ref, ref_missing), shares(cur, cur_missing)
    return float(np.sum((c - r) * np.log(c / r)))


def _split_kinds(frame: pl.DataFrame, columns: list[str]) -> tuple[list[str], list[str]]:
    numerical = [c for c in columns if frame.schema[c].is_numeric()]
    return numerical, [c for c in columns if c not in numerical]


def _to_pandas(frame: pl.DataFrame, numerical: list[str], categorical: list[str]) -> pd.DataFrame:
    out = frame.select(
        [pl.col(c).cast(pl.Float64) for c in numerical] + [pl.col(c).cast(pl.String) for c in categorical]
    ).to_pandas()
    for c in categorical:
        out[c] = out[c].astype(object).where(out[c].notna(), None)
    return out


def run_drift(
    reference: pl.DataFrame, current: pl.DataFrame, columns: list[str], config: DriftConfig | None = None
) -> DriftResult:
    """Evidently's data drift and PSI for `columns` (types from the reference: numbers are
    numerical, text and booleans categorical). Both frames need every column (nulls allowed)."""
    from evidently import DataDefinition, Dataset, Report

    config = config or DriftConfig()
    from evidently.presets import DataDriftPreset

    if reference.height > config.max_reference_rows:
        reference = reference.sample(config.max_reference_rows, seed=config.seed)
    numerical, categorical = _split_kinds(reference, columns)
    all_numerical = set(numerical)
    # A column with no value on one side cannot be tested: reported, not passed to Evidently.
    usable = [
        c for c in columns if reference[c].null_count() < reference.height and current[c].null_count() < current.height
    ]
    numerical, categorical = [c for c in numerical if c in usable], [c for c in categorical if c in usable]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    ref_pd, cur_pd = _to_pandas(reference, numerical, categorical), _to_pandas(current, numerical, categorical)
    options = {}
    if config.method:
        options["method"] = config.method
    if config.threshold is not None:
        options["threshold"] = config.threshold
    report = Report(
        [DataDriftPreset(columns=numerical + categorical, drift_share=config.drift_share, **options)],
        include_tests=True,
    )
    snapshot = report.run(
        current_data=Dataset.from_pandas(cur_pd, data_definition=definition),
        reference_data=Dataset.from_pandas(ref_pd, data_definition=definition),
    )
    result = snapshot.dict()
    verdicts = {
        t["metric_config"]["params"]["column"]: t["status"] == "FAIL"
        for t in result["tests"]
        if t["metric_config"]["params"].get("type", "").endswith("ValueDrift")
    }
    psi_features = set(numerical if config.psi_features is None else config.psi_features)
    out, counted = [], None
    for metric in result["metrics"]:
        params = metric["config"]
        if params["type"].endswith("DriftedColumnsCount"):
            counted = metric["value"]
        elif params["type"].endswith("ValueDrift"):
            column = params["column"]
            value = (
                psi(
                    reference[column].cast(pl.Float64).to_numpy(),
                    current[column].cast(pl.Float64).to_numpy(),
                    config.psi_bins,
                )
                if column in psi_features and column in numerical
                else None
            )
            out.append(
                ColumnDrift(
                    column,
                    "numerical" if column in numerical else "categorical",
                    params.get("method") or "",
                    params.get("threshold"),
                    float(metric["value"])
                    if metric["value"] is not None and not _nan(metric["value"])
                    else float("nan"),
                    verdicts.get(column, False),
                    value,
                )
            )
    for column in columns:  # empty on one side: drifted by definition (a feature went missing)
        if column not in usable:
            out.append(
                ColumnDrift(
                    column,
                    "numerical" if column in all_numerical else "categorical",
                    "all values missing",
                    None,
                    1.0,
                    True,
                )
            )
    drifted = sum(c.drifted for c in out)
    share = drifted / len(out) if out else 0.0
    if counted is not None and len(out) == len(usable):
        drifted, share = int(counted["count"]), float(counted["share"])
    return DriftResult(out, drifted, share, reference.height, current.height, config, snapshot)


def _nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def save(result: DriftResult, folder, name: str = "report") -> dict:
    """The Evidently HTML and a JSON of the figures in `folder`; returns their paths."""
    import json
    from pathlib import Path

    folder = Path(folder)
    html, figures = folder / f"{name}.html", folder / f"{name}.json"
    result.snapshot.save_html(str(html))
    figures.write_text(
        json.dumps(
            {"summary": result.summary(), "columns": result.table(), "reasons": result.reasons()}, indent=2, default=str
        )
    )
    return {"html": html, "json": figures}
