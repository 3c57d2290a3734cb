"""BentoML's own ceiling: the trivial constant handler of bench/_trivial.py mounted with
`@bentoml.asgi_app` in a BentoML service configured like the real one (workers, access log,
metrics, tracing, traffic, GC treatment), so the difference to /score is the scoring itself.

The configuration comes from HN_CEILING_CONFIG (JSON, `@bentoml.service` keyword arguments) and the
GC treatment from HN_CEILING_GC (`default`, `freeze`, `service` = what the real service does after
loading, hn_assets/serving/app.py `settle_heap`: freeze + raised thresholds, `off`);
bench/scoring.py sets both. Served with `bentoml serve bench.ceiling_service:Ceiling`.
"""

from __future__ import annotations

import gc
import json
import os

import bentoml

from bench._trivial import app

CONFIG = json.loads(os.environ.get("HN_CEILING_CONFIG") or "{}") or {
    "workers": 2,
    "logging": {"access": {"enabled": False}},
}
GC_MODE = os.environ.get("HN_CEILING_GC", "default")


def treat_gc(mode: str) -> None:
    """After start-up: move what is loaded out of the collector's sight (freeze) and, for `service`,
    make young-generation passes rarer so no full pass runs on the hot path."""
    if mode == "default":
        return
    if mode == "service":
        from hn_assets.serving.app import settle_heap

        settle_heap()
        return
    gc.collect()
    gc.freeze()
    if mode == "off":
        gc.disable()


@bentoml.asgi_app(app, path="/")  # as bentos/purchase_intent/service.py mounts its app
@bentoml.service(**CONFIG)
class Ceiling:
    def __init__(self) -> None:
        treat_gc(GC_MODE)
