"""The purchase-intent Bento: the champion imported into the BentoML store and built offline
(hn_assets/serving/bento.py), and a blocking smoke check against a live server of that Bento.

The Bento follows the champion. It rebuilds when the champion's version (or the code that goes into
the Bento: the service folder and the serving core) changes, and not otherwise: an unchanged pair
whose Bento is still in the BentoML store emits no materialisation (its data version stays the
Bento's), records an observation and tags the run `purchase_intent/bento=unchanged`, exactly as
the champion asset treats a rejected challenger. When the champion asset does not materialise
(a rejected challenger) this step is skipped, so a weekly run that keeps the champion builds
nothing. With the automation-conditions sensor on, a newly materialised champion requests the build
(eager).

The smoke check (blocking, its own step) serves the built Bento on a free local port against a
sandbox over the store (hn_assets/serving/smoke.py: the store's features and key, but its own
landing, sessions and inference log), waits for /readyz, posts a session's events, scores it,
checks the answer and stops the server by its PID.
"""

import time
from datetime import UTC, datetime

import dagster as dg

from hn_assets.defs.models.purchase_intent import CHAMPION_KEY
from hn_assets.defs.resources import BentoMLResource, ModelRegistryResource, WarehouseResource

BENTO_KEY = dg.AssetKey("purchase_intent_bento")


def _source_fingerprint() -> str:
    from hn_assets.serving.smoke import source_fingerprint

    return source_fingerprint()


def _last_build(instance: dg.DagsterInstance) -> dict | None:
    """The metadata of the Bento's latest materialisation (tag, model version, source fingerprint)."""
    event = instance.get_latest_materialization_event(BENTO_KEY)
    if event is None or event.asset_materialization is None:
        return None
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


@dg.asset(
    key=BENTO_KEY,
    group_name="serving",
    deps=[CHAMPION_KEY],
    output_required=False,
    code_version=_source_fingerprint(),
    automation_condition=dg.AutomationCondition.eager(),
    description="The champion (models:/purchase_intent@champion) imported into the BentoML store under "
    "BENTOML_HOME ($HN_HOME/bentoml) and the purchase-intent Bento (bentos/purchase_intent/) built offline, "
    "tagged `purchase_intent:v{model version}-{serving code fingerprint}`. Rebuilt when the champion version "
    "or the serving code changes; otherwise no materialisation (an observation says why).",
)
def purchase_intent_bento(
    context: dg.AssetExecutionContext, bentoml_store: BentoMLResource, model_registry: ModelRegistryResource
):
    from hn_assets.serving import bento
    from hn_assets.serving.smoke import bento_exists, bento_version

    registry = model_registry.registry()
    champion = registry.version_for_alias("champion")
    if champion is None:
        raise dg.Failure(description="no purchase_intent@champion in the registry: nothing to serve")
    version, fingerprint, home = str(champion.version), _source_fingerprint(), bentoml_store.bentoml_home
    tag = f"{bento.MODEL_NAME}:{bento_version(version, fingerprint)}"
    if bento_exists(tag, home):
        # A rollback (the alias moved back to a version built before): `purchase_intent:latest`,
        # which a running service follows, must name the champion's model again.
        bento.import_champion(registry.tracking_uri, bentoml_home_dir=home)
        context.instance.add_run_tags(context.run_id, {"purchase_intent/bento": "unchanged"})
        context.log_event(
            dg.AssetObservation(
                BENTO_KEY,
                metadata={
                    "rebuilt": False,
                    "bento_tag": tag,
                    "model_version": version,
                    "reason": f"{tag} (champion v{version}, unchanged serving code) is already built",
                },
            )
        )
        return
    began = time.monotonic()
    model_tag = bento.import_champion(registry.tracking_uri, bentoml_home_dir=home)
    built = bento.build_bento(model_tag, bentoml_home_dir=home, version=bento_version(version, fingerprint))
    context.instance.add_run_tags(context.run_id, {"purchase_intent/bento": "built"})
    yield dg.MaterializeResult(
        metadata={
            "rebuilt": True,
            "bento_tag": built,
            "model_tag": model_tag,
            "model_version": version,
            "source_fingerprint": fingerprint,
            "build_time": datetime.now(UTC).isoformat(timespec="seconds"),
            "build_seconds": round(time.monotonic() - began, 1),
            "bentoml_home": dg.MetadataValue.path(str(home)),
        },
        data_version=dg.DataVersion(f"purchase_intent/{version}/{fingerprint}"),
    )


def _known_product(warehouse: WarehouseResource) -> str | None:
    """A product the online store has signals for (the smoke session views it)."""
    try:
        frame = warehouse.scan_gold("product_features", ["product_id"]).head(1).collect()
    except Exception:  # noqa: BLE001 - no gold export: the session views no known product
        return None
    return frame["product_id"][0] if frame.height else None


@dg.asset_check(
    asset=BENTO_KEY,
    name="bento_smoke",
    blocking=True,
    description="Serves the built Bento on a free local port (sandboxed over the store), waits for /readyz, "
    "posts a session's events, scores that session and checks the answer: 200, the events' session, no "
    "fallback, the champion's version, a probability in [0, 1], three reasons. Stops the server by its PID.",
)
def bento_smoke(
    context: dg.AssetCheckExecutionContext,
    bentoml_store: BentoMLResource,
    model_registry: ModelRegistryResource,
    warehouse: WarehouseResource,
) -> dg.AssetCheckResult:
    import tempfile
    from pathlib import Path

    from hn_assets.serving.smoke import ServedBento, sandbox, smoke

    last = _last_build(context.instance)
    if not last:
        return dg.AssetCheckResult(passed=False, metadata={"reason": "the Bento has never been built"})
    tag, version = str(last["bento_tag"]), str(last["model_version"])
    champion = model_registry.registry().version_for_alias("champion")
    with tempfile.TemporaryDirectory(prefix="hn-bento-smoke-") as tmp:
        log = Path(tmp) / "server.log"
        try:
            with (
                sandbox(bentoml_store.store_home, Path(tmp) / "home") as home,
                ServedBento(
                    tag, home, bentoml_store.bentoml_home, timeout=bentoml_store.smoke_timeout_seconds, log_path=log
                ) as server,
            ):
                result = smoke(server.url, version, _known_product(warehouse), bentoml_store.smoke_api_key)
                startup = server.startup_s
        except (RuntimeError, OSError) as exc:  # incl. TimeoutError and a refused or reset connection
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            return dg.AssetCheckResult(
                passed=False, metadata={"reason": str(exc), "server_log_tail": dg.MetadataValue.md(f"```\n{tail}\n```")}
            )
    failures = list(result["failures"])
    if champion is not None and str(champion.version) != version:
        failures.append(f"the Bento serves v{version}, the champion is v{champion.version}")
    score = result["score"]
    return dg.AssetCheckResult(
        passed=not failures,
        metadata={
            "bento_tag": tag,
            "model_version": version,
            "failures": failures,
            "startup_seconds": round(startup, 1),
            "score_latency_ms": result["latency_ms"],
            "probability": score.get("probability"),
            "session_key": score.get("session_key"),
            "fallback": score.get("fallback"),
            "feature_groups": score.get("feature_groups"),
        },
    )


defs = dg.Definitions(assets=[purchase_intent_bento], asset_checks=[bento_smoke])
