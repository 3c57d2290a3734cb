"""The purchase-intent Bento: live scoring of sessions and live events (issue #12).

Serve from source (the repository root is the working directory):
    BENTOML_HOME=$HN_HOME/bentoml .venv/bin/bentoml serve bentos.purchase_intent.service:PurchaseIntent \
        --host 127.0.0.1 --port 3001
or a built Bento (`hn_assets.serving.bento.build_bento`): `bentoml serve purchase_intent:latest`.

How the service finds its stores (environment, read by hn_assets/settings.py in each worker):
- HN_HOME: the platform's root. Under it the service reads `feast/registry.db` and
  `feast/online_store.db` (Feast SQLite online store; HN_ONLINE_STORE=redis with HN_REDIS_URL for
  Redis), `lake/gold/fct_sessions/*.parquet` (the batch's session numbers, for the 30-minute rule),
  the pseudonym key (HN_PSEUDONYM_KEY, else `secrets/pseudonym.key`; checked against the
  fingerprint beside bronze: HN_LAKE_URI or `lake/bronze/`), and writes `serving/sessions.db`
  (live session state shared by the workers; HN_SERVING_SESSIONS_DB overrides),
  `landing/clickstream_events/live-*.jsonl` (the raw events) and `landing/inference_log/` (one
  record per answered /score).
- BENTOML_HOME (default `$HN_HOME/bentoml`): the BentoML store holding the model.
- HN_SERVING_MODEL_TAG (default `purchase_intent:latest`): the model, as imported by
  `hn_assets.serving.bento.import_champion` (MLflow `models:/purchase_intent@champion` + its uplift
  model + segment priors). Missing or unloadable: every /score answers the fallback and /readyz
  stays 503.
- HN_SERVING_API_KEY: when set, every /score and /events needs the header `X-API-Key: <key>`
  (else 401); unset (the local demo) means no authentication.
- HN_SERVING_REASONS (default `path`): how the top three reasons are computed: `path`, the tree
  path (Saabas) contributions, ~15 µs; `shap`, exact TreeSHAP, ~0.3 ms more per request
  (model.PathContributions; their agreement is in docs/serving.md).
- HN_SERVING_WORKERS (default 2): worker processes.
- HN_SERVING_PUBLISH_SECONDS: publish the open landing files (inference log, live events) at least
  this often (default: the inference log every 5 min, the live events every minute); the batch
  sees a record after its file is published.
- HN_SERVING_FOLLOW (default 1 for a `:latest` tag, else 0) and HN_SERVING_MODEL_POLL_SECONDS
  (default 5): each worker polls the BentoML store and, when the tag names a new model (the
  pipeline imported a new champion), loads it in the background and swaps it in atomically;
  answers then carry the new `model_version`, with no failed request during the switch
  (app.ModelFollower).

Fallback (documented answer, never a 500): without a model or when the online store cannot be
read, `probability` is the purchase rate of the champion's training rows for the visitor's device
(else overall), `fallback: true`, `fallback_reason` says why, no reasons, no discount.
"""

from __future__ import annotations

import logging
import os
import time

import bentoml

from hn_assets.serving.app import RUNTIME, Metrics, ModelFollower, build_core, create_app, settle_heap

MODEL_TAG = os.environ.get("HN_SERVING_MODEL_TAG", "purchase_intent:latest")
# Follow the champion (a new model under the tag is loaded and swapped in while serving): on for a
# moving tag (`:latest`, the default), off for a pinned version unless HN_SERVING_FOLLOW=1.
FOLLOW = os.environ.get("HN_SERVING_FOLLOW", "1" if MODEL_TAG.endswith(":latest") else "0") == "1"
APP = create_app()
# BentoML's per-request traffic metrics middleware (bentoml_* series); the service's own hn_*
# counters and histograms (app.Metrics) cover every endpoint either way.
METRICS_MIDDLEWARE = os.environ.get("HN_SERVING_BENTOML_METRICS", "0") == "1"
log = logging.getLogger("hn.serving")


def _bentoml_home() -> None:
    if not os.environ.get("BENTOML_HOME"):
        from hn_assets.serving.bento import bentoml_home

        os.environ["BENTOML_HOME"] = str(bentoml_home())


def _model_ref():
    """The model as a BentoModel (so `bentoml build` packs it), or None when the store has none."""
    try:
        bentoml.models.get(MODEL_TAG)
    except Exception:  # noqa: BLE001 - no model: the service starts and answers the fallback
        return None
    return bentoml.models.BentoModel(MODEL_TAG)


_bentoml_home()


@bentoml.asgi_app(APP, path="/")
@bentoml.service(
    name="purchase_intent",
    workers=int(os.environ.get("HN_SERVING_WORKERS", "2")),
    traffic={"timeout": 10, "max_concurrency": 1000},
    logging={"access": {"enabled": False}},
    # Measured on the hot path: OpenTelemetry's ASGI middleware (a span per request, no exporter
    # configured) cost ~25 % of a worker's CPU under load; the app's own metrics are in /metrics.
    tracing={"excluded_urls": ["/score", "/events"]},
    metrics={"enabled": METRICS_MIDDLEWARE},
    http={"max_request_size": 1024 * 1024},
)
class PurchaseIntent:
    model = _model_ref()

    def __init__(self) -> None:
        started = time.perf_counter()
        RUNTIME.api_key = os.environ.get("HN_SERVING_API_KEY", "").strip() or None
        RUNTIME.reasons = os.environ.get("HN_SERVING_REASONS", "path")
        RUNTIME.metrics = Metrics()
        model_dir, error, current = None, None, None
        if self.model is not None:
            try:
                stored = self.model.stored if hasattr(self.model, "stored") else bentoml.models.get(MODEL_TAG)
                model_dir, current = stored.path, str(stored.tag)
            except Exception as exc:  # noqa: BLE001
                error = f"model {MODEL_TAG} not found: {exc}"[:300]
        else:
            error = f"model {MODEL_TAG} is not in the BentoML store ({os.environ.get('BENTOML_HOME')})"
        worker = f"w{bentoml.server_context.worker_index or 0}"
        core = build_core(model_dir, worker, error)
        RUNTIME.core = core
        if core.model is None:
            current = None
        else:
            RUNTIME.metrics.model.labels(model_version=str(core.model.champion.version)).inc()
        if FOLLOW:
            RUNTIME.follower = ModelFollower(
                core,
                MODEL_TAG,
                current,
                float(os.environ.get("HN_SERVING_MODEL_POLL_SECONDS", "5")),
                on_swap=lambda m: RUNTIME.metrics.model.labels(model_version=str(m.champion.version)).inc(),
            ).start()
        settle_heap()
        log.info("purchase_intent ready in %.1f s (model %s)", time.perf_counter() - started, MODEL_TAG)

    def __is_ready__(self) -> bool:
        return RUNTIME.core is not None and RUNTIME.core.model is not None
