"""The classic reference design for bench/scoring.py: FastAPI + Feast `get_online_features(...)
.to_df()` + pandas `predict_proba`, with the same champion model and the same online store as the
real service (HN_HOME's MLflow registry and Feast store), served by uvicorn.

    HN_HOME=... .venv/bin/uvicorn bench.reference_service:app --port 8010 --workers 2 --no-access-log

POST /score takes the entity keys the store reads directly, `{"session_key", "user_id",
"product_id"}` (the benchmark derives them from the same visitors it sends to /score): no
pseudonymisation and no session resolution, so the reference does less per request than the real
service and the ratio between them is, if anything, understated.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

from hn_assets.settings import get_settings

FEATURE_SERVICE = os.environ.get("HN_REFERENCE_FEATURE_SERVICE", "purchase_intent_v1")
MODEL_URI = "models:/purchase_intent@champion"
CATEGORICAL = ("device", "channel")
STATE: dict = {}


def load() -> None:
    import mlflow
    import mlflow.sklearn

    from hn_assets.features.store import feature_store, repo_config

    settings = get_settings()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    info = mlflow.models.get_model_info(MODEL_URI)
    STATE["features"] = info.signature.inputs.input_names()
    STATE["model"] = mlflow.sklearn.load_model(MODEL_URI)
    STATE["version"] = str(mlflow.MlflowClient().get_model_version_by_alias("purchase_intent", "champion").version)
    store = feature_store(
        repo_config(
            registry=settings.feast_dir / "registry.db",
            online_store=settings.online_store,
            sqlite_path=settings.feast_dir / "online_store.db",
            redis_url=settings.redis_url,
        )
    )
    STATE["store"], STATE["service"] = store, store.get_feature_service(FEATURE_SERVICE)


@asynccontextmanager
async def lifespan(_: FastAPI):
    load()
    yield


app = FastAPI(title="purchase-intent reference (classic design)", lifespan=lifespan)


class ScoreRequest(BaseModel):
    session_key: str
    user_id: str | None = None
    product_id: str | None = None


@app.get("/readyz")
def readyz() -> dict:
    return {"ready": "model" in STATE}


@app.post("/score")
def score(request: ScoreRequest) -> dict:
    frame = (
        STATE["store"]
        .get_online_features(
            features=STATE["service"],
            # Feast takes no null keys: an anonymous visitor or no product reads an id with no row.
            entity_rows=[
                {
                    "session_key": request.session_key,
                    "user_id": request.user_id or "",
                    "product_id": request.product_id or "",
                }
            ],
        )
        .to_df()
    )
    x = frame.reindex(columns=STATE["features"])
    for column in x.columns:
        if column in CATEGORICAL:
            x[column] = x[column].astype(object).where(x[column].notna(), None)
        else:
            x[column] = pd.to_numeric(x[column], errors="coerce").astype("float64")
    probability = float(STATE["model"].predict_proba(x)[0, 1])
    return {"probability": probability, "model_version": STATE["version"]}
