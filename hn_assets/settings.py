"""Every path and switch of the platform, read from the environment with embedded defaults.

One `Settings` object is the only place that knows where things live under `HN_HOME`
(docs/architecture.md, "Storage"). Code asks it for paths instead of building them.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path(_env("HN_HOME", str(REPO_ROOT / ".hn"))).resolve())
    landing_retention_days: int = field(default_factory=lambda: int(_env("HN_LANDING_RETENTION_DAYS", "7")))
    # DuckDB inside dbt (HN_DUCKDB_MEMORY_LIMIT, HN_DUCKDB_THREADS, HN_DBT_THREADS) is configured in
    # dbt_project/profiles.yml, its one home.
    # Great Expectations suites validate a seeded uniform sample of at most this many rows.
    gx_max_rows: int = field(default_factory=lambda: int(_env("HN_GX_MAX_ROWS", "250000")))
    # Timestamps before the store opened, or more than this margin after ingestion, are quarantined.
    store_opened: date = field(default_factory=lambda: date.fromisoformat(_env("HN_STORE_OPENED", "2000-01-01")))
    future_margin_hours: int = field(default_factory=lambda: int(_env("HN_FUTURE_MARGIN_HOURS", "24")))
    online_store: str = field(default_factory=lambda: _env("HN_ONLINE_STORE", "sqlite"))  # sqlite | redis
    redis_url: str = field(default_factory=lambda: _env("HN_REDIS_URL", "127.0.0.1:6379"))
    # Alerts (run failures, failed checks, drift, live performance) are POSTed here as JSON when set;
    # they are always logged as JSON lines (hn_assets/monitoring/alerts.py).
    alert_webhook_url: str | None = field(default_factory=lambda: _env("HN_ALERT_WEBHOOK_URL", "") or None)
    # The scoring service publishes its landing files (inference log, live events) at least this
    # often; unset, each writer's own default (inference log 5 min, live events 1 min).
    serving_publish_seconds: float | None = field(
        default_factory=lambda: float(_env("HN_SERVING_PUBLISH_SECONDS", "0")) or None
    )

    # ---- layout under HN_HOME -------------------------------------------------
    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def archive_dir(self) -> Path:
        """Landing files already ingested; deleted after `landing_retention_days`."""
        return self.home / "archive"

    @property
    def lake_dir(self) -> Path:
        """Local lake folder: gold Parquet exports and training sets."""
        return self.home / "lake"

    @property
    def bronze_uri(self) -> str:
        """Bronze Delta root: a local folder, or object storage via HN_LAKE_URI (s3://, abfss://)."""
        return f"{_env('HN_LAKE_URI', str(self.lake_dir)).rstrip('/')}/bronze"

    @property
    def gold_dir(self) -> Path:
        return self.lake_dir / "gold"

    @property
    def training_sets_dir(self) -> Path:
        return self.lake_dir / "training_sets"

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def quarantine_dir(self) -> Path:
        """Landing files that could not be read at all, moved out of landing (bronze_quarantine says why)."""
        return self.home / "quarantine"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def feast_dir(self) -> Path:
        return self.home / "feast"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def simulator_truth_path(self) -> Path:
        """The simulator's ground truth (`hn simulate` writes it beside the landing files). Read only
        by the evaluation's labelled checks, never by training; absent for real data."""
        return self.home / "simulator_truth" / "sessions.csv"

    @property
    def mlflow_dir(self) -> Path:
        """The embedded MLflow: tracking database and artifact store."""
        return self.home / "mlflow"

    @property
    def mlflow_tracking_uri(self) -> str:
        """An MLflow tracking server (HN_MLFLOW_TRACKING_URI), else SQLite under HN_HOME."""
        return _env("HN_MLFLOW_TRACKING_URI", f"sqlite:///{self.mlflow_dir / 'mlflow.db'}")

    # ---- secrets ---------------------------------------------------------------
    @cached_property
    def pseudonym_key(self) -> bytes:
        """Keyed-hash secret for pseudonymising ids: `HN_PSEUDONYM_KEY`, else generated once (0600).

        Checked against the fingerprint recorded beside bronze (docs/privacy.md, "Key"): a key other
        than the one that made the lake's tokens raises `PseudonymKeyMismatch` before anything is
        written with it."""
        from hn_assets.ingest.privacy import verify_key

        key = self._configured_or_generated_key()
        verify_key(key, self.bronze_uri)
        return key

    def _configured_or_generated_key(self) -> bytes:
        configured = os.environ.get("HN_PSEUDONYM_KEY", "").strip()
        if configured:
            return configured.encode()
        key_file = self.secrets_dir / "pseudonym.key"
        if not key_file.exists():
            self.secrets_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        return key_file.read_text().strip().encode()

    def ensure_dirs(self) -> None:
        for path in (
            self.landing_dir,
            self.archive_dir,
            self.gold_dir,
            self.feast_dir,
            self.dagster_home,
            self.reports_dir,
            self.mlflow_dir,
        ):
            path.mkdir(parents=True, exist_ok=True)


def get_settings() -> Settings:
    """Settings for the current environment (re-read each call so tests can switch HN_HOME)."""
    return Settings()
