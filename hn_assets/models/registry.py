"""The MLflow model registry of the platform: versions, aliases (not stages), tags, the registered
model (an `mlflow.sklearn` flavour with signature and pip requirements), and the run's own artefacts
(candidates, split, uplift model). Pure MLflow, no Dagster: the registry resource
(hn_assets/defs/resources.py) builds one `ModelRegistry` from settings.

The registered model is the only model: the evaluation scores the challenger, the champion and the
floor model through `mlflow.pyfunc.load_model("models:/...")`, the loader serving uses, so an old
champion keeps scoring the way it was registered. It is saved in MLflow's default `skops` format
with the explicit list of types it may contain (`TRUSTED_TYPES`), not as a pickle of platform code.
"""

from __future__ import annotations

import io
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EXPERIMENT = "purchase_intent"
REGISTERED_MODEL = "purchase_intent"
PIP_REQUIREMENTS = ["scikit-learn==1.9.1", "lightgbm==4.7.0", "xgboost==3.2.0", "pandas==2.3.3", "numpy", "scipy"]
# The non-scikit-learn-core types a registered candidate is made of (skops refuses anything else).
TRUSTED_TYPES = [
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "sklearn.calibration._CalibratedClassifier",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
]
CANDIDATES_ARTIFACT = "candidates/candidates.pkl"  # every candidate and baseline of a training run
SPLIT_ARTIFACT = "split/sessions.parquet"  # session_key -> train | valid | test, as trained
FLOOR_TAG = "floor_version"  # registered-model tag: the best promoted version on its last window


def ensure_experiment(tracking_uri: str, name: str, artifact_root: Path) -> None:
    """Create the experiment with its artifacts under HN_HOME (MLflow would default to ./mlruns)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    if client.get_experiment_by_name(name) is None:
        client.create_experiment(name, artifact_location=artifact_root.as_uri())


def signature(candidate):
    """Input: every feature by name (numbers as double, device/channel as string), all required
    columns (values may be missing: NaN); output: P(no purchase), P(purchase)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    from hn_assets.models.training import CATEGORICAL

    inputs = Schema([ColSpec("string" if f in CATEGORICAL else "double", f) for f in candidate.features])
    return ModelSignature(inputs=inputs, outputs=Schema([TensorSpec(np.dtype("float64"), (-1, 2))]))


def log_candidate(candidate, input_example) -> str:
    """Log the calibrated candidate in the active run (`mlflow.sklearn`, pyfunc = predict_proba)."""
    import mlflow.sklearn

    info = mlflow.sklearn.log_model(
        candidate.estimator,
        name="model",
        signature=signature(candidate),
        input_example=input_example,
        pip_requirements=PIP_REQUIREMENTS,
        pyfunc_predict_fn="predict_proba",
        skops_trusted_types=TRUSTED_TYPES,
    )
    return info.model_uri


def log_pickle(obj, artifact: str) -> None:
    """A run-internal object (candidates, the uplift model) as a pickle artifact of the active run."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact).name
        path.write_bytes(pickle.dumps(obj))
        mlflow.log_artifact(str(path), str(Path(artifact).parent))


def log_frame(frame, artifact: str) -> None:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact).name
        frame.write_parquet(path)
        mlflow.log_artifact(str(path), str(Path(artifact).parent))


@dataclass
class RegisteredScorer:
    """A registered version loaded with `mlflow.pyfunc.load_model`; predict -> P(purchase)."""

    uri: str
    version: str
    model: object
    features: list[str]

    def predict(self, frame):
        return np.asarray(self.model.predict(frame[self.features]))[:, 1]


@dataclass(frozen=True)
class ModelRegistry:
    tracking_uri: str
    name: str = REGISTERED_MODEL

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def _use(self):
        import mlflow
        import mlflow.artifacts
        import mlflow.pyfunc

        mlflow.set_tracking_uri(self.tracking_uri)  # models:/ URIs and logged models resolve through it
        mlflow.set_registry_uri(self.tracking_uri)
        return mlflow

    def register(self, model_uri: str, alias: str, tags: dict[str, str]) -> str:
        """Register a model version and point `alias` at it; returns the version."""
        version = str(self._use().register_model(model_uri, self.name, tags=tags).version)  # MLflow 3: an int
        self.set_alias(alias, version)
        return version

    def version_for_alias(self, alias: str):
        """The version behind `alias`, or None when the alias (or the model) does not exist yet.
        Any other MLflow error (an unreachable registry, a broken database) fails the caller:
        it must never read as "no champion"."""
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, ErrorCode

        try:
            return self.client().get_model_version_by_alias(self.name, alias)
        except MlflowException as exc:
            missing = {ErrorCode.Name(RESOURCE_DOES_NOT_EXIST), ErrorCode.Name(INVALID_PARAMETER_VALUE)}
            if exc.error_code in missing and ("not found" in str(exc).lower() or "does not exist" in str(exc).lower()):
                return None
            raise

    def set_alias(self, alias: str, version: str) -> None:
        self.client().set_registered_model_alias(self.name, alias, version)

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        client = self.client()
        for key, value in tags.items():
            client.set_model_version_tag(self.name, version, key, value)

    def floor_version(self) -> str | None:
        """The best promoted version on the window of its last promotion decision (`gate.floor_after`)."""
        if self.version_for_alias("champion") is None:
            return None
        return self.client().get_registered_model(self.name).tags.get(FLOOR_TAG)

    def set_floor_version(self, version: str) -> None:
        self.client().set_registered_model_tag(self.name, FLOOR_TAG, version)

    def load_version(self, version: str) -> RegisteredScorer:
        return self._load(f"models:/{self.name}/{version}", version)

    def load_alias(self, alias: str) -> RegisteredScorer:
        """`models:/<name>@<alias>`, exactly as serving loads it; fails if the alias moved meanwhile."""
        version = self.version_for_alias(alias)
        scorer = self._load(f"models:/{self.name}@{alias}", str(version.version))
        if scorer.model.metadata.run_id != version.run_id:
            raise RuntimeError(f"alias {alias} moved while it was loaded (expected the model of run {version.run_id})")
        return scorer

    def _load(self, uri: str, version: str) -> RegisteredScorer:
        model = self._use().pyfunc.load_model(uri)
        return RegisteredScorer(uri, version, model, model.metadata.get_input_schema().input_names())

    def load_pickle(self, run_id: str, artifact: str):
        local = self._use().artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact, tracking_uri=self.tracking_uri
        )
        return pickle.loads(Path(local).read_bytes())

    def load_frame(self, run_id: str, artifact: str):
        import polars as pl

        local = self._use().artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact, tracking_uri=self.tracking_uri
        )
        return pl.read_parquet(io.BytesIO(Path(local).read_bytes()))

    def load_candidates(self, run_id: str) -> dict:
        """Every candidate and baseline a training run logged."""
        return self.load_pickle(run_id, CANDIDATES_ARTIFACT)

    def log_artifacts(self, run_id: str, folder: Path, artifact_path: str) -> None:
        self.client().log_artifacts(run_id, str(folder), artifact_path)
