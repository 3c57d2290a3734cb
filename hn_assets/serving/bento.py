"""The champion into the BentoML model store, and the Bento built offline (pure functions; the
Dagster asset `purchase_intent_bento` calls them).

`import_champion` copies `models:/purchase_intent@champion` (the MLflow model folder as
registered, loaded later with `mlflow.sklearn`) into a BentoML model `purchase_intent:v<MLflow
version>-<run id prefix>`, with the uplift model of the same training run (`uplift/xlearner.pkl`)
and the fallback's segment priors (purchase rate per device on the run's training side). Importing
the same version again returns the existing tag (idempotent: nothing rebuilds unless the champion
moved) and points `purchase_intent:latest` at it (a rollback to an older champion is followed
too). The BentoML store is `$BENTOML_HOME` (default `$HN_HOME/bentoml`, `bentoml_home()`).

`build_bento` runs `bentoml build` on `bentos/purchase_intent/bentofile.yaml` with the repository
as build context, offline: `uv` on PATH (else bentoml installs it from the network) and
`python: {lock_packages: false}` in the bentofile (STACK_NOTES).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from hn_assets.settings import REPO_ROOT, get_settings

MODEL_NAME = "purchase_intent"
BENTO_DIR = REPO_ROOT / "bentos" / "purchase_intent"
BENTOFILE = BENTO_DIR / "bentofile.yaml"


def bentoml_home() -> Path:
    """BENTOML_HOME if set, else `$HN_HOME/bentoml` (docs/architecture.md, "Storage")."""
    configured = os.environ.get("BENTOML_HOME", "").strip()
    return Path(configured) if configured else get_settings().home / "bentoml"


def _model_store(home: Path):
    from bentoml._internal.models import ModelStore

    (home / "models").mkdir(parents=True, exist_ok=True)
    return ModelStore(str(home / "models"))


def model_tag(version: str, run_id: str) -> str:
    return f"{MODEL_NAME}:v{version}-{run_id[:8]}"


def import_champion(
    tracking_uri: str | None = None,
    registry_uri: str | None = None,
    bentoml_home_dir: Path | None = None,
    alias: str = "champion",
) -> str:
    """`models:/purchase_intent@<alias>` into the BentoML model store; returns the model tag
    (`purchase_intent:v<version>-<run>`; labels `mlflow_version`, `mlflow_run_id`). Raises
    LookupError when the alias does not exist."""
    import bentoml
    import mlflow
    import polars as pl
    from mlflow.tracking import MlflowClient

    from hn_assets.models.registry import ModelRegistry
    from hn_assets.serving.model import META_FILE, MLFLOW_DIR, PRIORS_FILE, UPLIFT_FILE, segment_priors

    tracking_uri = tracking_uri or get_settings().mlflow_tracking_uri
    registry_uri = registry_uri or tracking_uri
    home = Path(bentoml_home_dir) if bentoml_home_dir else bentoml_home()
    store = _model_store(home)
    registry = ModelRegistry(tracking_uri)
    version = registry.version_for_alias(alias)
    if version is None:
        raise LookupError(f"models:/{MODEL_NAME}@{alias} does not exist in {registry_uri}")
    tag = model_tag(str(version.version), version.run_id)
    try:
        existing = str(bentoml.models.get(tag, _model_store=store).tag)
    except bentoml.exceptions.NotFound:
        pass
    else:
        point_latest(home, existing)  # a rollback: the champion is an older import again
        return existing
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    run = client.get_run(version.run_id)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}/{version.version}", dst_path=tmp))
        uplift = None
        try:
            uplift = Path(
                mlflow.artifacts.download_artifacts(
                    run_id=version.run_id, artifact_path="uplift/xlearner.pkl", dst_path=f"{tmp}/uplift"
                )
            )
        except Exception:  # noqa: BLE001 - a run without an uplift model: decisions say so
            uplift = None
        priors = {}
        path = run.data.params.get("training_set_path")
        if path and Path(path).exists():
            rows = pl.read_parquet(path, columns=["session_key", "device", "purchased"])
            try:
                split = registry.load_frame(version.run_id, "split/sessions.parquet")
                side = "split" if "split" in split.columns else split.columns[-1]
                rows = rows.join(split.filter(pl.col(side) == "train").select("session_key"), on="session_key")
            except Exception:  # noqa: BLE001 - no split logged: the whole training set
                pass
            priors = segment_priors(rows)
        meta = {
            "mlflow_version": str(version.version),
            "mlflow_run_id": version.run_id,
            "registered_model": MODEL_NAME,
            "alias": alias,
            "source": version.source,
            "training_set_version": run.data.tags.get("training_set_version")
            or run.data.params.get("training_set_version"),
        }
        labels = {"mlflow_version": str(version.version), "mlflow_run_id": version.run_id}
        with bentoml.models.create(tag, labels=labels, metadata=meta, _model_store=store) as model:
            target = Path(model.path)
            shutil.copytree(local, target / MLFLOW_DIR)
            if uplift is not None and uplift.exists():
                shutil.copy(uplift, target / UPLIFT_FILE)
            (target / PRIORS_FILE).write_text(json.dumps(priors))
            (target / META_FILE).write_text(json.dumps(meta))
        return str(model.tag)


def point_latest(home: Path, tag: str) -> None:
    """Make `purchase_intent:latest` name `tag` (BentoML's own pointer file, replaced atomically):
    what a running service follows (app.ModelFollower). A new import already moves it."""
    name, version = tag.split(":", 1)
    latest = Path(home) / "models" / name / "latest"
    if latest.exists() and latest.read_text().strip() == version:
        return
    tmp = latest.with_name(f".latest-{os.getpid()}")
    tmp.write_text(version)
    os.replace(tmp, latest)


def model_path(tag: str, bentoml_home_dir: Path | None = None) -> Path:
    """The folder of a model in the BentoML store."""
    import bentoml

    store = _model_store(Path(bentoml_home_dir) if bentoml_home_dir else bentoml_home())
    return Path(bentoml.models.get(tag, _model_store=store).path)


def build_bento(
    model_tag_: str | None = None,
    bentoml_home_dir: Path | None = None,
    version: str | None = None,
    timeout: float = 600,
) -> str:
    """`bentoml build` offline; returns the Bento tag (`purchase_intent:<version>`). The service
    packs `HN_SERVING_MODEL_TAG` (default `purchase_intent:latest`) as its model."""
    home = Path(bentoml_home_dir) if bentoml_home_dir else bentoml_home()
    bin_dir = Path(sys.executable).parent
    uv = shutil.which("uv") or (
        str(REPO_ROOT / ".tools" / "bin" / "uv") if (REPO_ROOT / ".tools/bin/uv").exists() else None
    )
    path = os.pathsep.join([str(bin_dir), *([str(Path(uv).parent)] if uv else []), os.environ.get("PATH", "")])
    env = {**os.environ, "BENTOML_HOME": str(home), "PATH": path, "BENTOML_DO_NOT_TRACK": "True"}
    if model_tag_:
        env["HN_SERVING_MODEL_TAG"] = model_tag_
    command = [str(bin_dir / "bentoml"), "build", "-f", str(BENTOFILE), "--output", "tag"]
    if version:
        command += ["--version", version]
    command.append(str(REPO_ROOT))
    done = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"bentoml build failed ({done.returncode}): {done.stderr[-2000:] or done.stdout[-2000:]}")
    tag = done.stdout.strip().splitlines()[-1].strip()
    return tag.removeprefix("__tag__:")
