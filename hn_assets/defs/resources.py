"""Resources: one per external system the assets touch, and the only route from an asset to state.

Every resource is configuration plus a factory for the pure core that does the work (a
`DeltaLake`, a Feast `FeatureStore`, a `ModelRegistry`, ...). Unset fields follow the settings
(HN_HOME and friends) at run time, so one code location serves whatever HN_HOME a run has, and a
production deployment changes this one file (or the environment), never asset code: e.g. an
`s3://` lake root with storage options, Redis as the online store, an MLflow tracking server.
Only this module (and `settings.py`) reads settings; `test_definitions.py` enforces that.
"""

from __future__ import annotations

import importlib.metadata
import os
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from packaging import version

from hn_assets.defs.transform.translator import DBT_PROJECT_DIR, dbt_executable, dbt_project
from hn_assets.ingest.bronze import DeltaLake
from hn_assets.ingest.privacy import Pseudonymiser
from hn_assets.models.registry import EXPERIMENT, ModelRegistry, ensure_experiment
from hn_assets.settings import get_settings
from hn_assets.transform import warehouse


class LakehouseResource(dg.ConfigurableResource):
    """Landing zone, archive and the bronze Delta lake."""

    landing_root: str | None = None
    archive_root: str | None = None
    bronze_root: str | None = None
    landing_retention_days: int | None = None
    storage_options: dict[str, str] = {}

    @property
    def landing(self) -> Path:
        return Path(self.landing_root or get_settings().landing_dir)

    @property
    def archive(self) -> Path:
        return Path(self.archive_root or get_settings().archive_dir)

    @property
    def quarantine(self) -> Path:
        """Landing files that could not be read at all (kept for inspection, under the same retention)."""
        return Path(self.quarantine_root or get_settings().quarantine_dir)

    @property
    def retention_days(self) -> int:
        return self.landing_retention_days or get_settings().landing_retention_days

    def delta(self) -> DeltaLake:
        return DeltaLake(self.bronze_root or get_settings().bronze_uri, self.storage_options or None)

    def pseudonym_key(self) -> bytes:
        # Read at run time from HN_PSEUDONYM_KEY or HN_HOME/secrets, never from run config.
        return get_settings().pseudonym_key

    def pseudonymiser(self) -> Pseudonymiser:
        return Pseudonymiser(self.pseudonym_key())

    quarantine_root: str | None = None
    store_opened: str | None = None  # YYYY-MM-DD: earlier timestamps are quarantined
    future_margin_hours: int | None = None  # timestamps this far after ingestion are quarantined

    def ingest_target(self):
        from datetime import date, timedelta

        from hn_assets.ingest.pipeline import IngestTarget

        settings, lake = get_settings(), self.delta()
        return IngestTarget(
            landing=self.landing,
            archive=self.archive,
            quarantine=self.quarantine,
            bronze_root=lake.root,
            storage_options=lake.storage_options,
            pseudonym_key=self.pseudonym_key(),
            store_opened=date.fromisoformat(self.store_opened) if self.store_opened else settings.store_opened,
            future_margin=timedelta(hours=self.future_margin_hours or settings.future_margin_hours),
        )

    def ensure_layout(self) -> None:
        """The HN_HOME folders (lake/gold must exist before dbt exports to it)."""
        get_settings().ensure_dirs()


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse (dbt is its only writer) and the gold marts dbt exports as Parquet."""

    path: str | None = None
    gold_root: str | None = None
    memory_limit: str = "1GB"
    sample_rows: int | None = None  # data-quality checks validate a seeded sample of at most this many rows

    @property
    def check_sample_rows(self) -> int:
        return self.sample_rows or get_settings().gx_max_rows

    @property
    def database(self) -> Path:
        return Path(self.path or get_settings().warehouse_path)

    @property
    def gold(self) -> Path:
        return Path(self.gold_root or get_settings().gold_dir)

    def gold_files(self, mart: str) -> str:
        """The glob of a gold mart's Parquet export."""
        return str(self.gold / mart / "*.parquet")

    def scan_gold(self, mart: str, columns: list[str] | None = None):
        import polars as pl

        scan = pl.scan_parquet(self.gold_files(mart))
        return scan.select(columns) if columns else scan

    @contextmanager
    def read_only(self):
        with warehouse.read_only(self.database, self.memory_limit) as connection:
            yield connection

    def table_profiles(self, names: set[str], uncounted: frozenset[str] = frozenset()) -> dict[str, dict]:
        return warehouse.table_profiles(self.database, names, uncounted, self.memory_limit)


class FeatureStoreResource(dg.ConfigurableResource):
    """The Feast store (registry, online store) and the versioned training sets built from it."""

    registry_path: str | None = None
    online_store: str | None = None  # sqlite | redis
    sqlite_path: str | None = None
    redis_url: str | None = None
    training_sets_root: str | None = None

    @property
    def online_store_type(self) -> str:
        return self.online_store or get_settings().online_store

    def repo_config(self):
        from hn_assets.features.store import repo_config

        settings = get_settings()
        return repo_config(
            registry=Path(self.registry_path or settings.feast_dir / "registry.db"),
            online_store=self.online_store_type,
            sqlite_path=Path(self.sqlite_path or settings.feast_dir / "online_store.db"),
            redis_url=self.redis_url or settings.redis_url,
        )

    def store(self):
        from hn_assets.features.store import feature_store

        return feature_store(self.repo_config())

    @property
    def registry_file(self) -> Path:
        return Path(self.repo_config().registry.path)

    def training_sets(self, name: str) -> Path:
        return Path(self.training_sets_root or get_settings().training_sets_dir) / name


class ModelRegistryResource(dg.ConfigurableResource):
    """The MLflow model registry: versions, aliases and tags of the registered models."""

    tracking_uri: str | None = None

    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.tracking_uri or get_settings().mlflow_tracking_uri)


class ReportStoreResource(dg.ConfigurableResource):
    """Where reports (evaluation, later drift) are written: one folder per report."""

    root: str | None = None

    def folder(self, *parts: str) -> Path:
        folder = Path(self.root or get_settings().reports_dir).joinpath(*parts)
        folder.mkdir(parents=True, exist_ok=True)
        return folder


class BentoMLResource(dg.ConfigurableResource):
    """The BentoML store (models and built Bentos) and the HN_HOME a served Bento reads.

    `home` is BENTOML_HOME (default `$HN_HOME/bentoml`); `serve_home` the store a smoke-checked
    server reads through its sandbox (default HN_HOME); `api_key` what the check sends when the
    service has its key on (HN_SERVING_API_KEY)."""

    home: str | None = None
    serve_home: str | None = None
    api_key: str | None = None
    smoke_timeout_seconds: int = 240

    @property
    def bentoml_home(self) -> Path:
        from hn_assets.serving.smoke import bentoml_home

        return Path(self.home) if self.home else bentoml_home(get_settings().home)

    @property
    def store_home(self) -> Path:
        return Path(self.serve_home or get_settings().home)

    @property
    def smoke_api_key(self) -> str | None:
        return self.api_key or os.environ.get("HN_SERVING_API_KEY") or None


class AlertSinkResource(dg.ConfigurableResource):
    """Where alerts go (hn_assets/monitoring/alerts.py): a JSON log line always, and a POST to
    `webhook_url` when set (default HN_ALERT_WEBHOOK_URL; none: log only)."""

    webhook_url: str | None = None
    timeout_seconds: float = 5.0

    def sink(self):
        from hn_assets.monitoring.alerts import AlertSink

        return AlertSink(self.webhook_url or get_settings().alert_webhook_url, self.timeout_seconds)


class SimulatorTruthResource(dg.ConfigurableResource):
    """The simulator's ground truth: read only by the evaluation's labelled checks (the uplift
    estimate against the true effect), never by training; real data has none."""

    path: str | None = None

    def sessions(self):
        """Per simulated session: client_session_id, is_bot, offered, p_no_offer, p_offer; None if absent."""
        import polars as pl

        file = Path(self.path or get_settings().simulator_truth_path)
        return pl.read_csv(file, schema_overrides={"client_session_id": pl.String}) if file.exists() else None


# ---- dbt ----------------------------------------------------------------------------------------
class LocalDbtCliResource(DbtCliResource):
    """dagster-dbt's CLI resource, minus two things it does on every run that this platform does not use:

    - it runs `dbt --version` to learn the CLI's version, and that command asks PyPI for the newest
      dbt releases (HTTP, ~5 s; nothing may be fetched at run time here): the executable is this
      environment's own dbt, so the installed dbt-core's version is the answer;
    - it builds an in-process dbt adapter (~2 s) for its column and row-count metadata fetchers:
      row counts and schemas come from WarehouseResource after the build, because a DuckDB handle
      held during the build would block dbt's writes.

    The dbt profile reads HN_HOME from the environment; a run that has none gets the settings'
    default, so the default is stated once (settings.py) for Python, dbt and Feast.
    """

    @property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None

    def cli(self, args, **kwargs):
        os.environ.setdefault("HN_HOME", str(get_settings().home))
        return super().cli(args, **kwargs)


def dbt_resource() -> LocalDbtCliResource:
    return LocalDbtCliResource(
        project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=dbt_executable()
    )


# ---- MLflow tracking: dagster-mlflow, with the run made explicit ----------------------------------
# The subset of dagster-mlflow's config this platform sets (its module imports mlflow: ~4 s).
MLFLOW_CONFIG = {
    "experiment_name": dg.Field(str, default_value=EXPERIMENT),
    "mlflow_tracking_uri": dg.Field(dg.Noneable(str), is_required=False, default_value=None),
}


@dg.resource(
    config_schema=MLFLOW_CONFIG,
    description="dagster-mlflow tracking: one MLflow run per Dagster run, opened explicitly by "
    "the asset that logs into it (`with mlflow_tracking.run() as run:`).",
)
def mlflow_tracking(init_context):
    """dagster-mlflow's `MlFlow`, which finds or creates the MLflow run of this Dagster run (tag
    `dagster_run_id`; its real value: steps in other processes log into the same run) but, unlike
    upstream, does not leave it active in the process from resource start-up until a hook ends it.
    Upstream's implicit active run made assets call `mlflow.active_run()`/`mlflow.end_run()` by
    hand, and a run left active leaked into the next job run of the same process."""
    import mlflow
    from dagster_mlflow.resources import MlFlow

    class ExplicitRunMlFlow(MlFlow):
        def _setup(self):
            self.mlflow_run_id = self.mlflow_run_id or self._get_current_run_id() or self._create_run()

        def _create_run(self) -> str:
            run = self.tracking_client.create_run(
                self.experiment.experiment_id,
                run_name=self.run_name,
                tags={"dagster_run_id": self.dagster_run_id, **(self.extra_tags or {})},
            )
            self.tracking_client.set_terminated(run.info.run_id)  # active only inside `run()`
            return run.info.run_id

        @contextmanager
        def run(self):
            """This Dagster run's MLflow run, active for the block (FAILED if the block raises)."""
            with mlflow.start_run(run_id=self.mlflow_run_id) as run:
                yield run

    settings = get_settings()
    uri = init_context.resource_config.get("mlflow_tracking_uri") or settings.mlflow_tracking_uri
    mlflow.set_tracking_uri(uri)
    ensure_experiment(uri, init_context.resource_config["experiment_name"], settings.mlflow_dir / "artifacts")
    return ExplicitRunMlFlow(init_context)


def default_resources() -> dict:
    """The embedded defaults: every store under HN_HOME, read at run time."""
    return {
        "lakehouse": LakehouseResource(),
        "warehouse": WarehouseResource(),
        "feature_store": FeatureStoreResource(),
        "model_registry": ModelRegistryResource(),
        "reports": ReportStoreResource(),
        "simulator_truth": SimulatorTruthResource(),
        "alerts": AlertSinkResource(),
        "bentoml_store": BentoMLResource(),
        "mlflow_tracking": mlflow_tracking,
        "dbt": dbt_resource(),
        # Asset values (training-set, model and evaluation references) between the model chain's
        # steps: pickles under the Dagster instance's storage directory.
        "io_manager": dg.FilesystemIOManager(),
    }


defs = dg.Definitions(resources=default_resources())
