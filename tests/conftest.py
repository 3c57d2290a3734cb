"""Shared fixtures: every test gets its own HN_HOME; a small simulated store is built once."""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from hn_assets.settings import get_settings
from hn_assets.simulator import SimulationConfig, simulate

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = REPO.parent / "shared" / "data" / "real"
SMALL_STORE = SimulationConfig(seed=7, days=4, users=250, products=40, sessions_per_day=180, dirty_rate=0.05)


@contextmanager
def environment(**values: str | None):
    """os.environ with `values` set (None: unset) for a store wider than one test (module or session
    scope, where monkeypatch is not available); restored afterwards."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest() -> None:
    """The Dagster code location is built from dbt's manifest: parse once if it is missing."""
    from hn_assets.defs.transform.translator import DBT_PROJECT_DIR, dbt_executable

    if not (DBT_PROJECT_DIR / "target" / "manifest.json").exists():
        env = {**os.environ, "HN_HOME": os.environ.get("HN_HOME") or str(get_settings().home)}
        subprocess.run(
            [dbt_executable(), "parse", "--profiles-dir", ".", "--quiet"], cwd=DBT_PROJECT_DIR, check=True, env=env
        )


@pytest.fixture
def hn_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "hn"
    monkeypatch.setenv("HN_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    monkeypatch.delenv("HN_PSEUDONYM_KEY", raising=False)
    return home


@pytest.fixture(scope="session")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated store's landing files (read-only: copy before ingesting)."""
    out = tmp_path_factory.mktemp("small_store")
    simulate(SMALL_STORE, out)
    return out


@pytest.fixture
def landed_store(small_store: Path, hn_home: Path) -> Path:
    """The small store's landing files copied into this test's HN_HOME."""
    shutil.copytree(small_store / "landing", hn_home / "landing")
    return hn_home


@pytest.fixture
def rees46_sample() -> Path:
    path = REAL_DATA / "rees46_multicat_2019oct_head" / "2019-Oct_head.csv"
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    return path
