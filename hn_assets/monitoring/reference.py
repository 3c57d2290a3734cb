"""What the champion was trained on: the reference of every monitoring report.

From the registry alone (no path conventions): the version behind `purchase_intent@champion`, its
MLflow run's parameters (`training_set_path`, `features`), its metric `test_roc_auc` and the split
as trained (`registry.SPLIT_ARTIFACT`: session -> train | valid | test). The feature-drift reference
is the training side; predictions are compared with the champion's scores on its own test window
(out of sample, as the evaluation scored it).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from hn_assets.models.registry import SPLIT_ARTIFACT
from hn_assets.models.training import CATEGORICAL, ID_COLUMNS


@dataclass
class ChampionReference:
    version: str
    run_id: str
    training_set_path: str
    features: list[str]
    test_roc_auc: float | None
    frame: pl.DataFrame  # the training set joined with its split (column `split`)

    def side(self, name: str) -> pl.DataFrame:
        return self.frame.filter(pl.col("split") == name)

    @property
    def train(self) -> pl.DataFrame:
        return self.side("train")

    @property
    def test(self) -> pl.DataFrame:
        return self.side("test")

    def schema(self) -> dict[str, pl.DataType]:
        """Each model feature's reference type (device/channel as text)."""
        return {f: (pl.String if f in CATEGORICAL else self.frame.schema[f]) for f in self.features}

    def metadata(self) -> dict:
        return {
            "champion_version": self.version,
            "champion_run_id": self.run_id,
            "reference_training_set": self.training_set_path,
            "champion_test_roc_auc": float(self.test_roc_auc) if self.test_roc_auc is not None else None,
        }


def run_test_auc(registry, version: str) -> float | None:
    """`test_roc_auc` of the MLflow run that registered `version`."""
    client = registry.client()
    run_id = client.get_model_version(registry.name, str(version)).run_id
    value = client.get_run(run_id).data.metrics.get("test_roc_auc")
    return float(value) if value is not None else None


def champion_reference(registry) -> ChampionReference | None:
    """The champion's reference, or None before the first promotion."""
    version = registry.version_for_alias("champion")
    if version is None:
        return None
    run = registry.client().get_run(version.run_id)
    params, metrics = run.data.params, run.data.metrics
    path = params.get("training_set_path")
    if not path:
        raise RuntimeError(f"champion v{version.version}: its run {version.run_id} logged no training_set_path")
    sides = registry.load_frame(version.run_id, SPLIT_ARTIFACT)
    frame = pl.read_parquet(path).join(sides, on="session_key", how="inner")
    features = [f for f in params.get("features", "").split(",") if f] or [
        c for c in frame.columns if c not in ID_COLUMNS
    ]
    auc = metrics.get("test_roc_auc")
    return ChampionReference(
        str(version.version), version.run_id, path, features, float(auc) if auc is not None else None, frame
    )
