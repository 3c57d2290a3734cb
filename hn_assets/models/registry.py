"""The MLflow model registry of the platform: versions, aliases (not stages), tags, and the
calibrated candidates logged as pyfunc models. Pure MLflow, no Dagster: the registry resource
(hn_assets/defs/resources.py) builds one `ModelRegistry` from settings."""

from __future__ import annotations

import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

EXPERIMENT = "purchase_intent"
REGISTERED_MODEL = "purchase_intent"
PIP_REQUIREMENTS = ["lightgbm==4.7.0", "xgboost==3.2.0", "scikit-learn==1.9.1", "pandas==2.3.3", "numpy"]
CANDIDATES_ARTIFACT = "candidates/candidates.pkl"  # every candidate and baseline of a training run


def ensure_experiment(tracking_uri: str, name: str, artifact_root: Path) -> None:
    """Create the experiment with its artifacts under HN_HOME (MLflow would default to ./mlruns)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    if client.get_experiment_by_name(name) is None:
        client.create_experiment(name, artifact_location=artifact_root.as_uri())


def _python_model_class():
    import mlflow.pyfunc

    class CalibratedPurchaseIntent(mlflow.pyfunc.PythonModel):
        """Raw booster + isotonic calibrator: predict returns calibrated purchase probabilities."""

        def load_context(self, context):
            with open(context.artifacts["candidate"], "rb") as handle:
                self.candidate = pickle.load(handle)

        def predict(self, context, model_input, params=None):
            return self.candidate.predict(model_input)

    return CalibratedPurchaseIntent


def log_candidate(candidate, input_example) -> str:
    """Log the calibrated candidate as an MLflow pyfunc model in the active run; returns its URI."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "candidate.pkl"
        path.write_bytes(pickle.dumps(candidate))
        mlflow.log_artifact(str(path), "candidate")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=_python_model_class()(),
            artifacts={"candidate": str(path)},
            pip_requirements=PIP_REQUIREMENTS,
            code_paths=[str(Path(__file__).resolve().parents[1])],
            input_example=input_example,
        )
    return info.model_uri


def log_candidates(candidates: dict) -> None:
    """Every fitted candidate and baseline of the active run, for the evaluation beside them."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(CANDIDATES_ARTIFACT).name
        path.write_bytes(pickle.dumps(candidates))
        mlflow.log_artifact(str(path), str(Path(CANDIDATES_ARTIFACT).parent))


@dataclass(frozen=True)
class ModelRegistry:
    tracking_uri: str
    name: str = REGISTERED_MODEL

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def register(self, model_uri: str, alias: str, tags: dict[str, str]) -> str:
        """Register a model version and point `alias` at it; returns the version."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)  # register_model resolves logged models through it
        version = mlflow.register_model(model_uri, self.name, tags=tags).version
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

    def load_candidates(self, run_id: str) -> dict:
        """Every candidate and baseline a training run logged (`log_candidates`)."""
        import mlflow

        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=CANDIDATES_ARTIFACT, tracking_uri=self.tracking_uri
        )
        return pickle.loads(Path(local).read_bytes())

    def load_candidate(self, version):
        """The calibrated candidate behind a registered version (for evaluation side by side)."""
        import mlflow

        local = mlflow.artifacts.download_artifacts(
            run_id=version.run_id, artifact_path="candidate/candidate.pkl", tracking_uri=self.tracking_uri
        )
        return pickle.loads(Path(local).read_bytes())

    def log_artifacts(self, run_id: str, folder: Path, artifact_path: str) -> None:
        self.client().log_artifacts(run_id, str(folder), artifact_path)
