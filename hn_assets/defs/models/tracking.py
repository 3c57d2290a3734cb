"""MLflow: dagster-mlflow's tracking resource (one MLflow run per Dagster run), with the
experiment pre-created so its artifacts live under $HN_HOME/mlflow (dagster-mlflow would let
MLflow default to ./mlruns in the working directory), plus registry helpers (aliases, not stages)."""

from __future__ import annotations

import pickle
from pathlib import Path

import dagster as dg

from hn_assets.settings import Settings, get_settings

EXPERIMENT = "purchase_intent"
REGISTERED_MODEL = "purchase_intent"
PIP_REQUIREMENTS = ["lightgbm==4.7.0", "xgboost==3.2.0", "scikit-learn==1.9.1", "pandas==2.3.3", "numpy"]


def tracking_uri(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    (settings.home / "mlflow").mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{settings.home / 'mlflow' / 'mlflow.db'}"


def use_platform_tracking() -> None:
    """Point the MLflow client of this process at the platform's tracking store."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())


def ensure_experiment(uri: str, name: str, artifact_root: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    if client.get_experiment_by_name(name) is None:
        client.create_experiment(name, artifact_location=artifact_root.as_uri())


# The subset of dagster-mlflow's config this platform sets (its module imports mlflow: ~4 s).
CONFIG_SCHEMA = {"experiment_name": dg.Field(str),
                 "mlflow_tracking_uri": dg.Field(dg.Noneable(str), is_required=False, default_value=None)}


@dg.resource(config_schema=CONFIG_SCHEMA, description="dagster-mlflow tracking with the HN_HOME artifact store")
def hn_mlflow_tracking(init_context):
    import mlflow
    from dagster_mlflow.resources import MlFlow

    uri = init_context.resource_config.get("mlflow_tracking_uri") or tracking_uri()  # default: this run's HN_HOME
    mlflow.set_tracking_uri(uri)
    ensure_experiment(uri, init_context.resource_config["experiment_name"], get_settings().home / "mlflow" / "artifacts")
    return MlFlow(init_context)


def mlflow_resource() -> dg.ResourceDefinition:
    return hn_mlflow_tracking.configured({"experiment_name": EXPERIMENT})


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


def log_candidate(candidate, folder: Path, input_example) -> str:
    """Log the calibrated candidate as an MLflow pyfunc model in the active run; returns its URI."""
    import mlflow

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "candidate.pkl"
    with open(path, "wb") as handle:
        pickle.dump(candidate, handle)
    mlflow.log_artifact(str(path), "candidate")
    info = mlflow.pyfunc.log_model(name="model", python_model=_python_model_class()(),
                                   artifacts={"candidate": str(path)}, pip_requirements=PIP_REQUIREMENTS,
                                   code_paths=[str(Path(__file__).resolve().parents[2])],
                                   input_example=input_example)
    return info.model_uri


def register(model_uri: str, alias: str, tags: dict[str, str]) -> str:
    """Register a model version and point `alias` at it; returns the version."""
    import mlflow
    from mlflow.tracking import MlflowClient

    version = mlflow.register_model(model_uri, REGISTERED_MODEL)
    client = MlflowClient()
    client.set_registered_model_alias(REGISTERED_MODEL, alias, version.version)
    for key, value in tags.items():
        client.set_model_version_tag(REGISTERED_MODEL, version.version, key, value)
    return version.version


def version_for_alias(alias: str):
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        return MlflowClient().get_model_version_by_alias(REGISTERED_MODEL, alias)
    except MlflowException:
        return None


def load_candidate(version):
    """The pickled candidate behind a registered version (for evaluation side by side)."""
    import mlflow

    local = mlflow.artifacts.download_artifacts(f"runs:/{version.run_id}/candidate/candidate.pkl")
    with open(local, "rb") as handle:
        return pickle.load(handle)
