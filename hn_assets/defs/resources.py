"""Resources: one per external system the assets touch (ARCHITECTURE.md §3).

Defaults come from `settings`, so the embedded set-up needs no configuration; production swaps
paths and options here (e.g. an `s3://` lake root with storage options), not in asset code.
"""


from pathlib import Path

import dagster as dg

from hn_assets.defs.ingest.bronze import DeltaLake
from hn_assets.defs.ingest.privacy import Pseudonymiser
from hn_assets.settings import Settings, get_settings


class LakehouseResource(dg.ConfigurableResource):
    """Landing zone, archive and the bronze Delta lake. Unset paths follow the settings (HN_HOME)
    at run time, so one code location serves whatever HN_HOME the run has."""

    landing_root: str | None = None
    archive_root: str | None = None
    bronze_root: str | None = None
    landing_retention_days: int | None = None
    storage_options: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> "LakehouseResource":
        return cls(landing_root=str(settings.landing_dir), archive_root=str(settings.archive_dir),
                   bronze_root=settings.bronze_uri, landing_retention_days=settings.landing_retention_days)

    @property
    def landing(self) -> Path:
        return Path(self.landing_root or get_settings().landing_dir)

    @property
    def archive(self) -> Path:
        return Path(self.archive_root or get_settings().archive_dir)

    @property
    def retention_days(self) -> int:
        return self.landing_retention_days or get_settings().landing_retention_days

    def delta(self) -> DeltaLake:
        return DeltaLake(self.bronze_root or get_settings().bronze_uri, self.storage_options or None)

    def pseudonymiser(self) -> Pseudonymiser:
        # The key is read at run time from HN_PSEUDONYM_KEY or HN_HOME/secrets, never from config.
        return Pseudonymiser(get_settings().pseudonym_key)


def default_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    from hn_assets.defs.models.tracking import mlflow_resource
    from hn_assets.defs.transform.project import dbt_resource

    lakehouse = LakehouseResource.from_settings(settings) if settings else LakehouseResource()
    return {"lakehouse": lakehouse, "dbt": dbt_resource(), "mlflow": mlflow_resource()}
