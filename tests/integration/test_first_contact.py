"""What a user hits first: `make demo`/`make clean` never delete a store they did not create, and a
bare `dagster` command from the repo root works without DAGSTER_HOME."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

MARKER = ".hn-demo-store"


def make(*args: str, hn_home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HN_HOME": str(hn_home)}
    for outer in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):  # under `make test`: the outer make's are not this make's
        env.pop(outer, None)
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def user_store(tmp_path: Path) -> Path:
    """A store of the user's own (say, a loaded REES46 log): data, pseudonym key, model registry."""
    home = tmp_path / "hn-rees46"
    for path, data in {
        "secrets/pseudonym.key": b"0123456789abcdef",
        "lake/bronze/bronze_clickstream_events/_delta_log/00000000000000000000.json": b"{}",
        "mlflow/mlflow.db": b"SQLite format 3\x00",
    }.items():
        (home / path).parent.mkdir(parents=True, exist_ok=True)
        (home / path).write_bytes(data)
    return home


@pytest.mark.parametrize("target", ["demo", "clean"])
def test_make_refuses_to_delete_a_store_the_demo_did_not_create(user_store, target):
    before = contents(user_store)
    result = make(target, hn_home=user_store)
    assert result.returncode != 0
    assert result.stdout == ""  # refused before any recipe ran: nothing installed, simulated or deleted
    assert result.stderr.count("\n") == 1 and "refusing to delete" in result.stderr
    assert str(user_store) in result.stderr
    assert contents(user_store) == before


def test_make_clean_removes_a_store_the_demo_created(tmp_path):
    home = tmp_path / "demo-store"
    home.mkdir()
    (home / MARKER).touch()
    result = make("-n", "clean", hn_home=home)  # dry run: a real clean also removes this tree's dbt target
    assert result.returncode == 0, result.stderr
    assert f'rm -rf "{home}"' in result.stdout


def test_make_demo_on_a_fresh_machine_creates_and_marks_its_store(tmp_path):
    home = tmp_path / "absent"
    result = make("-n", "demo", hn_home=home)  # dry run: the real demo simulates and runs every asset
    assert result.returncode == 0, result.stderr
    assert f'rm -rf "{home}" && mkdir -p "{home}" && touch "{home}/{MARKER}"' in result.stdout


def test_bare_dagster_validate_from_the_repo_root_needs_no_dagster_home():
    """Dagster makes a temporary instance from ./dagster.yaml when DAGSTER_HOME is unset; the file
    must not require DAGSTER_HOME for it."""
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "HN_HOME")}
    dagster = str(Path(sys.executable).parent / "dagster")
    result = subprocess.run(
        [dagster, "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert 'DAGSTER_HOME" which is not set' not in output
    assert result.returncode == 0, output[-3000:]
    assert "All code locations passed validation" in output
