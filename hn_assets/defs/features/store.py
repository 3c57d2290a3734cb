"""The Feast store of the platform, configured from settings (STACK_NOTES: one YAML cannot switch
online stores, and Feast's ${VAR} expansion has no defaults), with the definitions of feature_repo/."""

from __future__ import annotations

import importlib.util
from functools import cache
from types import ModuleType

from hn_assets.settings import REPO_ROOT, Settings, get_settings

FEATURE_REPO = REPO_ROOT / "feature_repo"
PROJECT = "hn_commerce"


def repo_config(settings: Settings | None = None):
    from feast.repo_config import RepoConfig

    settings = settings or get_settings()
    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    if settings.online_store == "redis":
        online = {"type": "redis", "connection_string": settings.redis_url}
    elif settings.online_store == "sqlite":
        online = {"type": "sqlite", "path": str(settings.feast_dir / "online_store.db")}
    else:
        raise ValueError(f"HN_ONLINE_STORE must be sqlite or redis, not {settings.online_store!r}")
    return RepoConfig(project=PROJECT, provider="local", registry=str(settings.feast_dir / "registry.db"),
                      online_store=online, offline_store={"type": "duckdb"}, entity_key_serialization_version=3,
                      repo_path=FEATURE_REPO)


def feature_store(settings: Settings | None = None):
    from feast import FeatureStore

    return FeatureStore(config=repo_config(settings), repo_path=str(FEATURE_REPO))


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


@cache
def repo_fingerprint() -> str:
    """Changes whenever a file of the feature repo changes: the registry asset's code version."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(FEATURE_REPO.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
