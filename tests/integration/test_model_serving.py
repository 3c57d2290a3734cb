"""The registered model is the only model: logged by the platform's own code into a real MLflow
registry, `models:/purchase_intent@champion` loads in a fresh interpreter with no platform code on
its path, from an empty working directory, predicts on its logged input example, and scores exactly
as the platform does."""

import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from hn_assets.models.registry import ModelRegistry, ensure_experiment, log_candidate
from hn_assets.models.split import split_with_both_classes
from hn_assets.models.training import to_pandas, train_all
from tests.unit.test_model_foundations import synthetic_snapshots


@pytest.mark.parametrize("kind", ["lightgbm", "xgboost"])
def test_champion_loads_and_scores_identically_in_a_fresh_process(tmp_path, kind):
    import mlflow

    frame, sessions = synthetic_snapshots(sessions=1500, seed=9)
    split_frame, _ = split_with_both_classes(frame, "purchased", sessions)
    candidate = next(c for c in train_all(split_frame, budget=1, seed=9).candidates if c.kind == kind)
    test = split_frame.filter(pl.col("split") == "test")
    x = to_pandas(test, candidate.features)

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ensure_experiment(uri, "purchase_intent", tmp_path / "artifacts")
    registry = ModelRegistry(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("purchase_intent")
    with mlflow.start_run():
        model_uri = log_candidate(candidate, x.head(5))
    version = registry.register(model_uri, "champion", {"kind": kind})
    assert registry.load_alias("champion").version == version  # as the evaluation loads it

    x.to_parquet(tmp_path / "test.parquet")
    clean = tmp_path / "clean"
    clean.mkdir()
    script = (
        "import sys, mlflow, numpy as np, pandas as pd\n"
        f"mlflow.set_tracking_uri({uri!r}); mlflow.set_registry_uri({uri!r})\n"
        "m = mlflow.pyfunc.load_model('models:/purchase_intent@champion')\n"
        "assert m.metadata.signature is not None\n"
        "m.predict(m.input_example)\n"
        f"np.save('scores.npy', m.predict(pd.read_parquet({str(tmp_path / 'test.parquet')!r}))[:, 1])\n"
        "assert not [k for k in sys.modules if k.startswith('hn_assets')], 'platform code was imported'\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(clean)}
    subprocess.run([sys.executable, "-I", "-c", script], cwd=clean, check=True, env=env, timeout=300)
    assert np.array_equal(np.load(clean / "scores.npy"), candidate.predict(x))
