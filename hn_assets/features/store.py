"""The platform's Feast store, configured in code (STACK_NOTES: one YAML cannot switch online
stores, and Feast's ${VAR} expansion has no defaults), with the definitions of feature_repo/.

Which gold mart feeds which view is stated once, in `sources.py`; `gold_source_of` reads it back
from a FeatureView so a test can hold the repo to it."""

from __future__ import annotations

import hashlib
import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

from hn_assets.settings import REPO_ROOT

FEATURE_REPO = REPO_ROOT / "feature_repo"
PROJECT = "hn_commerce"
ONLINE_STORES = ("sqlite", "redis")


def repo_config(registry: Path, online_store: str, sqlite_path: Path, redis_url: str):
    from feast.repo_config import RepoConfig

    if online_store == "redis":
        online = {"type": "redis", "connection_string": redis_url}
    elif online_store == "sqlite":
        online = {"type": "sqlite", "path": str(sqlite_path)}
    else:
        raise ValueError(f"the online store must be one of {ONLINE_STORES}, not {online_store!r}")
    registry.parent.mkdir(parents=True, exist_ok=True)
    return RepoConfig(
        project=PROJECT,
        provider="local",
        registry=str(registry),
        online_store=online,
        offline_store={"type": "duckdb"},
        entity_key_serialization_version=3,
        repo_path=FEATURE_REPO,
    )


def feature_store(config):
    from feast import FeatureStore

    return FeatureStore(config=config, repo_path=str(FEATURE_REPO))


def definitions() -> ModuleType:
    """feature_repo/features.py, loaded fresh (its sources point at the current HN_HOME)."""
    spec = importlib.util.spec_from_file_location("hn_feature_repo", FEATURE_REPO / "features.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def apply(store) -> ModuleType:
    """Register every entity, source, view and service of the repo; returns the definitions."""
    defs = definitions()
    store.apply([*defs.ENTITIES, *defs.DATA_SOURCES, *defs.FEATURE_VIEWS, *defs.FEATURE_SERVICES])
    return defs


def gold_source_of(feature_view) -> tuple[str, str]:
    """(gold mart, time column) that a feature view reads: from its batch source's Parquet path
    (`.../lake/gold/<mart>/*.parquet`) and timestamp field."""
    source = getattr(feature_view, "batch_source", None) or feature_view.stream_source.batch_source
    return Path(source.path).parent.name, source.timestamp_field


@cache
def repo_fingerprint() -> str:
    """Changes whenever a file of the feature repo changes: the registry asset's code version."""
    digest = hashlib.sha256()
    for path in sorted(FEATURE_REPO.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
