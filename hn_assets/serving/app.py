"""The HTTP edge: a Starlette app (mounted into the Bento with `@bentoml.asgi_app`) and the
runtime that builds the service's core from its configuration.

Why Starlette under `asgi_app` rather than `@bentoml.api`: BentoML's own API path costs ~1 ms of
CPU per request; a mounted Starlette app reached 3-3.9k req/s on these 2 cores against 1-1.6k
(STACK_NOTES). Bodies are validated by pydantic-core's compiled JSON validator (~5 µs; 422 names
the field) and answers written with orjson. Measured with py-spy under wrk and kept (service.py):
OpenTelemetry's ASGI middleware excluded for /score and /events (it made a span per request: ~25 %
of a worker's CPU), BentoML's traffic-metrics middleware off (this app's own hn_* metrics, with
labelled children made once, are served at /metrics), access log off, the heap frozen after
loading with raised GC thresholds (`settle_heap`). `ModelFollower` swaps in a new champion.

Endpoints: POST /score, POST /events, GET /openapi.json (+ /docs, a plain page of every field),
GET /metrics (Prometheus, every worker); BentoML serves /readyz (via the service's
`__is_ready__`) and /livez. Errors: 401 without the right `X-API-Key` when
`HN_SERVING_API_KEY` is set; 413 for a body over `MAX_BODY_BYTES` or a batch over
`MAX_EVENTS_PER_REQUEST`; 422 naming the field; never 500 for /score (an unexpected error is
answered with the fallback and counted).
"""

from __future__ import annotations

import gc
import hmac
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hn_assets.serving import schemas

log = logging.getLogger("hn.serving")
API_KEY_HEADER = "x-api-key"
JSON = "application/json"
# A batch of up to INLINE_EVENTS events (~1-1.5 ms each, mostly the push) is applied on the event
# loop when the write turn is free (see `_apply_events`); a larger one in the /events thread.
INLINE_EVENTS = 4
TURN_POLL_SECONDS, TURN_WAIT_SECONDS = 0.0005, 0.05


def _json(body, status: int = 200) -> Response:
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status, media_type=JSON)


class Metrics:
    """Prometheus metrics through `bentoml.metrics` (multi-process safe under `bentoml serve`)."""

    def __init__(self):
        import bentoml

        m = bentoml.metrics
        self.requests = m.Counter("hn_requests", "Requests by endpoint and status", ["endpoint", "status"])
        self.latency = m.Histogram(
            "hn_request_duration_seconds",
            "Handler latency by endpoint",
            ["endpoint"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
        )
        self.fallbacks = m.Counter("hn_fallbacks", "Fallback answers by reason", ["reason"])
        self.validation_errors = m.Counter("hn_validation_errors", "422/413 answers by endpoint", ["endpoint"])
        self.decisions = m.Counter("hn_decisions", "Discount decisions", ["decision"])
        self.model = m.Counter("hn_model_loads", "Model loaded by a worker, by MLflow version", ["model_version"])

        self._children: dict = {}

    def child(self, metric, *values):
        """The labelled child, made once (prometheus' `labels()` costs a few µs a call)."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def observe(self, endpoint: str, status: int, started: float) -> None:
        self.child(self.requests, endpoint, str(status)).inc()
        self.child(self.latency, endpoint).observe(time.perf_counter() - started)


class _NoMetrics:
    def __getattr__(self, name):
        return self

    def labels(self, **_):
        return self

    def child(self, *_):
        return self

    def inc(self, *_):
        pass

    def observe(self, *_):
        pass


@dataclass
class Runtime:
    """What a worker holds: the core (None until built) and its metrics."""

    core: object | None = None
    metrics: object = None
    api_key: str | None = None
    follower: object | None = None
    reasons: str = "path"  # model.REASON_METHODS (HN_SERVING_REASONS)


RUNTIME = Runtime(metrics=_NoMetrics())


def _publish_interval(settings) -> dict:
    """HN_SERVING_PUBLISH_SECONDS for both landing writers, when configured."""
    return {"max_age_seconds": settings.serving_publish_seconds} if settings.serving_publish_seconds else {}


def build_core(model_dir: Path | None, worker: str, model_error: str | None = None):
    """The ServingCore from the environment (HN_HOME and the settings; see bentos/purchase_intent/
    service.py for the full list). `model_dir`: the model folder from the BentoML store (None:
    serve fallbacks only, `model_error` says why)."""
    from hn_assets.features.store import PROJECT, feature_store, repo_config
    from hn_assets.online.session import COUNTED  # noqa: F401 - warm import
    from hn_assets.serving.core import LandingAppender, ServingCore
    from hn_assets.serving.model import load_model_dir
    from hn_assets.serving.online import LeanOnlineReader, SdkOnlineReader, SessionPusher, use_wal
    from hn_assets.serving.privacy import LiveIds
    from hn_assets.serving.sessions import BatchSessions, LiveSessions
    from hn_assets.settings import get_settings

    settings = get_settings()
    sqlite_path = settings.feast_dir / "online_store.db"
    config = repo_config(settings.feast_dir / "registry.db", settings.online_store, sqlite_path, settings.redis_url)
    store = feature_store(config)
    if settings.online_store == "sqlite":
        mode = use_wal(sqlite_path)
        if mode != "wal":
            log.warning("online store %s not in WAL mode (%s): reads may wait for pushes", sqlite_path, mode)
        reader = LeanOnlineReader(sqlite_path, PROJECT)
    else:
        reader = SdkOnlineReader(store)
    model = None
    if model_dir is not None:
        try:
            model = load_model_dir(model_dir, RUNTIME.reasons)
        except Exception as exc:
            model_error = f"cannot load the model from {model_dir}: {exc!r}"[:300]
            log.exception("model load failed")
    writer, publish = None, _publish_interval(settings)
    try:
        from hn_assets.serving.inference_log import InferenceLogWriter

        writer = InferenceLogWriter(settings.landing_dir, worker, **publish)
    except ImportError:
        log.warning("hn_assets.serving.inference_log is not available: answers are not logged")
    core = ServingCore(
        ids=LiveIds(settings.pseudonym_key),
        sessions=LiveSessions(
            Path(os.environ.get("HN_SERVING_SESSIONS_DB") or settings.home / "serving" / "sessions.db"),
            BatchSessions.from_gold(str(settings.gold_dir / "fct_sessions" / "*.parquet")),
        ),
        reader=reader,
        pusher=SessionPusher(store),
        model=model,
        log=writer,
        landing=LandingAppender(settings.landing_dir, worker, **publish),
        model_error=model_error,
    )
    return core


class ModelFollower:
    """The service follows the champion (issue #13): a daemon thread per worker resolves the
    model tag (`purchase_intent:latest`, which `bento.import_champion` moves to the champion's
    model, also back to an older one on a rollback) in the BentoML model store every
    `interval` seconds; when it names another model, the thread loads it (off the hot path: the
    requests keep being answered by the current model), runs the fast path's equality check, and
    swaps it into the core with one reference assignment. A model that fails to load is logged
    and retried at the next change; the current one keeps serving. No request sees a mix: each
    takes the core's model once."""

    def __init__(self, core, tag: str, current: str | None, interval: float = 5.0, on_swap=None):
        import threading

        self.core, self.tag, self.current, self.interval = core, tag, current, interval
        self.on_swap = on_swap
        self.failed: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hn-model-follower", daemon=True)

    def start(self) -> ModelFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def resolve(self) -> tuple[str, str] | None:
        """(full tag, folder) the tag names now, or None when the store has no such model."""
        import bentoml

        try:
            model = bentoml.models.get(self.tag)
        except Exception:  # noqa: BLE001 - not there (yet): keep serving what we have
            return None
        return str(model.tag), model.path

    def check(self) -> bool:
        """One poll: True when a new model was swapped in."""
        from hn_assets.serving.model import load_model_dir

        found = self.resolve()
        if found is None or found[0] == self.current or found[0] == self.failed:
            return False
        tag, path = found
        started = time.perf_counter()
        try:
            loaded = load_model_dir(Path(path), RUNTIME.reasons)
        except Exception:
            log.exception("cannot load %s: still serving %s", tag, self.current)
            self.failed = tag
            return False
        self.core.swap_model(loaded)
        previous, self.current, self.failed = self.current, tag, None
        log.info("now serving %s (was %s), loaded in %.1f s", tag, previous, time.perf_counter() - started)
        if self.on_swap is not None:
            self.on_swap(loaded)
        settle_heap()  # the old model's garbage collected, the new one frozen like the rest
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:
                log.exception("model follower poll failed")


def settle_heap() -> None:
    """After loading: collect once, freeze what is alive (never scanned again) and raise the
    young-generation threshold, so no full GC pass over BentoML's heap lands on a request
    (STACK_NOTES: p99 167 ms with the default GC, 4 ms without cyclic GC)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)


# ---- handlers ---------------------------------------------------------------------------------
def _authorised(request: Request) -> bool:
    key = RUNTIME.api_key
    if not key:
        return True
    given = request.headers.get(API_KEY_HEADER, "")
    return hmac.compare_digest(given.encode(), key.encode())


async def _body(request: Request) -> bytes | Response:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > schemas.MAX_BODY_BYTES:
        return _json({"detail": f"body over {schemas.MAX_BODY_BYTES} bytes"}, 413)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > schemas.MAX_BODY_BYTES:
            return _json({"detail": f"body over {schemas.MAX_BODY_BYTES} bytes"}, 413)
    return body


def _unavailable(endpoint: str, started: float) -> Response:
    RUNTIME.metrics.observe(endpoint, 503, started)
    return _json({"detail": "the service is starting"}, 503)


async def score(request: Request) -> Response:
    started, m = time.perf_counter(), RUNTIME.metrics
    if not _authorised(request):
        m.observe("score", 401, started)
        return _json({"detail": "missing or wrong API key (X-API-Key)"}, 401)
    body = await _body(request)
    if isinstance(body, Response):
        m.validation_errors.labels(endpoint="score").inc()
        m.observe("score", 413, started)
        return body
    try:
        req = schemas.ScoreRequest.model_validate_json(body)
    except ValidationError as exc:
        m.validation_errors.labels(endpoint="score").inc()
        m.observe("score", 422, started)
        return _json({"detail": schemas.validation_detail(exc)}, 422)
    core = RUNTIME.core
    if core is None:
        return _unavailable("score", started)
    try:
        answer = core.score(req, started)
    except Exception as exc:
        log.exception("score failed")
        answer = _emergency_answer(core, req, exc)
    if answer["fallback"]:
        m.child(m.fallbacks, answer["fallback_reason"].split(":")[0][:40]).inc()
    m.child(m.decisions, "offer_discount" if answer["decision"]["offer_discount"] else "no_discount").inc()
    m.observe("score", 200, started)
    return _json(answer)


def _emergency_answer(core, req, exc: Exception) -> dict:
    return {
        "request_id": req.request_id or os.urandom(16).hex(),
        "session_key": "",
        "new_session": True,
        "probability": core._prior(req.context.device),
        "raw_score": None,
        "decision": core._no_offer("fallback"),
        "reasons": [],
        "model_version": core.model.champion.version if core.model else None,
        "fallback": True,
        "fallback_reason": f"internal error: {type(exc).__name__}",
        "feature_groups": [],
        "personalised": False,
    }


_EVENTS_THREAD = None


async def _apply_events(core, batch) -> dict:
    """`core.events(batch)` without ever blocking the event loop. A small batch runs on the loop,
    but only once it holds the write turn (`LiveSessions.acquire(blocking=False)`: this worker's
    lock and the store's flock), so no SQLite wait can happen there: while the other worker
    applies its events the loop polls every TURN_POLL_SECONDS and serves /score meanwhile.
    Rejected: inline without the turn (a wait for the other worker's transaction, in SQLite's
    busy handler, or a WAL checkpoint stalled every /score of the worker); every event in a
    thread: each of the ~15 SQLite calls of a push gives the GIL back and waits up to the 5 ms
    switch interval to get it from the busy loop again (py-spy: the events thread sat on the
    upserts of `online_write_batch`). Measured at 500 /score + 200 /events req/s, same machine,
    runs interleaved: events p99 46-74 ms inline against 337-617 ms in the thread under ~0.5-0.9
    cores of other load; 5-12 ms inline on a quiet machine. A large batch, or a turn not had
    within TURN_WAIT_SECONDS, goes to the thread."""
    import asyncio

    sessions = core.sessions
    if len(batch.events) > INLINE_EVENTS or not hasattr(sessions, "acquire"):
        return await _off_loop(core.events, batch)
    waited = 0.0
    while not sessions.acquire(blocking=False):
        if waited >= TURN_WAIT_SECONDS:
            return await _off_loop(core.events, batch)
        await asyncio.sleep(TURN_POLL_SECONDS)
        waited += TURN_POLL_SECONDS
    try:
        return core.events(batch)  # re-enters the turn it holds
    finally:
        sessions.release()


async def _off_loop(fn, *args):
    """`fn(*args)` in the worker's one /events thread. One thread, not anyio's pool: the worker's
    writes are serialised by its lock anyway, so more threads would only queue there and take the
    GIL from the loop."""
    global _EVENTS_THREAD
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    if _EVENTS_THREAD is None:
        _EVENTS_THREAD = ThreadPoolExecutor(1, thread_name_prefix="hn-events")
    return await asyncio.get_running_loop().run_in_executor(_EVENTS_THREAD, fn, *args)


async def events(request: Request) -> Response:
    started, m = time.perf_counter(), RUNTIME.metrics
    if not _authorised(request):
        m.observe("events", 401, started)
        return _json({"detail": "missing or wrong API key (X-API-Key)"}, 401)
    body = await _body(request)
    if isinstance(body, Response):
        m.validation_errors.labels(endpoint="events").inc()
        m.observe("events", 413, started)
        return body
    try:
        batch = schemas.parse_events(body)
    except schemas.TooLarge as exc:
        m.validation_errors.labels(endpoint="events").inc()
        m.observe("events", 413, started)
        return _json({"detail": str(exc)}, 413)
    except ValidationError as exc:
        m.validation_errors.labels(endpoint="events").inc()
        m.observe("events", 422, started)
        return _json({"detail": schemas.validation_detail(exc)}, 422)
    core = RUNTIME.core
    if core is None:
        return _unavailable("events", started)
    try:
        result = await _apply_events(core, batch)
    except Exception as exc:
        log.exception("events failed")
        m.observe("events", 503, started)
        return _json({"detail": f"events not applied: {type(exc).__name__}: {str(exc)[:200]}"}, 503)
    m.observe("events", 200, started)
    return _json(result)


_OPENAPI: bytes | None = None


async def openapi_json(_: Request) -> Response:
    global _OPENAPI
    if _OPENAPI is None:
        _OPENAPI = orjson.dumps(schemas.openapi())
    return Response(_OPENAPI, media_type=JSON)


async def docs(_: Request) -> Response:
    """Every field of every schema, as a plain page (no scripts: nothing is fetched)."""
    from html import escape

    spec = schemas.openapi()
    parts = ["<html><head><title>H.N purchase intent API</title></head><body><h1>H.N purchase intent API</h1>"]
    parts.append(
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. Header <code>X-API-Key</code> "
        "when HN_SERVING_API_KEY is set.</p>"
    )
    for path, ops in spec["paths"].items():
        for verb, op in ops.items():
            parts.append(f"<h2>{verb.upper()} {escape(path)}</h2><p>{escape(op.get('summary', ''))}</p>")
    for name, schema in spec["components"]["schemas"].items():
        parts.append(f"<h3>{escape(name)}</h3><p>{escape(schema.get('description', ''))}</p><table border=1>")
        parts.append("<tr><th>field</th><th>required</th><th>description</th></tr>")
        required = set(schema.get("required", []))
        for field, prop in schema.get("properties", {}).items():
            text = escape(prop.get("description", ""))
            parts.append(f"<tr><td>{escape(field)}</td><td>{field in required}</td><td>{text}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return Response("".join(parts), media_type="text/html")


async def metrics(_: Request) -> Response:
    """Prometheus text of every worker (BentoML's multiprocess client). BentoML serves /metrics
    itself when its metrics middleware is on; off (the default here, for speed), this route does."""
    import anyio
    from bentoml._internal.container import BentoMLContainer

    client = BentoMLContainer.metrics_client.get()
    content = await anyio.to_thread.run_sync(client.generate_latest)
    return Response(content, media_type=client.CONTENT_TYPE_LATEST)


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/score", score, methods=["POST"]),
            Route("/events", events, methods=["POST"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
        ]
    )
