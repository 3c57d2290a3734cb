"""The registered champion, loaded the way a stranger would load it, scores like the platform.

`models:/purchase_intent@champion` is loaded with `mlflow.pyfunc.load_model` in a fresh interpreter
(`python -I`, an empty working directory, a bare environment) that must not import the platform's
code, and its scores on the test window are held equal to the platform's own scores of the same
candidate. This is what a reader of the README does and what serving relies on; a model that needs
a class from today's code, or that scores differently after the round trip, fails here.

Why a subprocess and not `load_model` in this process: here the platform is already imported, so a
model that silently depends on it would still load.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_SCRIPT = """
import sys, mlflow, numpy as np, pandas as pd
mlflow.set_tracking_uri({uri!r}); mlflow.set_registry_uri({uri!r})
model = mlflow.pyfunc.load_model({model_uri!r})
model.predict(model.input_example)
np.save("scores.npy", model.predict(pd.read_parquet("rows.parquet"))[:, 1])
assert "hn_assets" not in sys.modules, "the registered model imported the platform's code"
"""


def scores_in_fresh_process(tracking_uri: str, model_uri: str, rows) -> np.ndarray:
    """P(purchase) for `rows` (a pandas frame of the model's inputs) from `model_uri`, computed in a
    fresh interpreter with nothing of the platform on its path or in its environment."""
    with tempfile.TemporaryDirectory() as workdir:
        rows.to_parquet(Path(workdir) / "rows.parquet")
        script = _SCRIPT.format(uri=tracking_uri, model_uri=model_uri)
        done = subprocess.run(
            [sys.executable, "-I", "-c", script],
            cwd=workdir,
            env={"PATH": "/usr/bin:/bin", "HOME": workdir},
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{model_uri} failed in a fresh process: {done.stderr.strip()[-2000:]}")
        return np.load(Path(workdir) / "scores.npy")


def platform_test_scores(registry, trained):
    """The test window's model inputs and the platform's own scores of the trained challenger on them
    (the candidate object the training run logged, before any MLflow round trip)."""
    import polars as pl

    from hn_assets.models.registry import SPLIT_ARTIFACT
    from hn_assets.models.training import to_pandas

    sides = registry.load_frame(trained.run_id, SPLIT_ARTIFACT)
    test = pl.read_parquet(trained.training_set_path).join(sides, on="session_key").filter(pl.col("split") == "test")
    candidate = registry.load_candidates(trained.run_id)[trained.challenger]
    rows = to_pandas(test, candidate.features)
    return rows, np.asarray(candidate.predict(rows))
