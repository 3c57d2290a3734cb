"""The `erase_customer` job: one customer removed from every store, with a report.

Three ops, because the stores need different locks: `erase_from_lake` (pool `bronze_lake`: the
Delta vacuum must not run beside an ingest) lists the customer's pseudonyms on the erasure list
first, then erases landing, archive, quarantined files, bronze and its history, the gold exports,
the online store, MLflow artifacts, training sets and reports; `rebuild_warehouse` (pool
`duckdb_warehouse`: dbt is the warehouse's one writer) rebuilds silver and gold from the erased
bronze; `erasure_report` scans every store again and writes the report under
`reports/erasure/<run id>/`, failing the run if anything remains.

The ops hand on the customer's token and counts only; each rebuilds the subject from the erasure
list. A raw customer id in the run config is hashed at once and never logged or written, but
Dagster keeps run config in its run storage: `hn erase` passes the token instead.

A new layer that stores personal data (the inference log, drift reference sets) adds its `Store`
(hn_assets/erasure/registry.py) to `lake_stores` or `warehouse_stores`: the job, the verification
and the report then cover it.
"""

import re
from dataclasses import asdict

import dagster as dg
from dagster_dbt import DbtCliResource
from pydantic import Field

from hn_assets.contracts import BRONZE_TABLES, QUARANTINE_TABLE
from hn_assets.defs.ingest.assets import BRONZE_POOL
from hn_assets.defs.resources import (
    FeatureStoreResource,
    LakehouseResource,
    ModelRegistryResource,
    ReportStoreResource,
    WarehouseResource,
)
from hn_assets.defs.transform.assets import DUCKDB_POOL
from hn_assets.erasure.erasure_list import ErasureList
from hn_assets.erasure.registry import ErasureReport, Store, StoreResult, erase_all, scrub, verify
from hn_assets.erasure.resolve import linked_tokens
from hn_assets.erasure.stores.artifacts import ArtifactFilesStore, mlflow_artifact_roots
from hn_assets.erasure.stores.files import LandingFolderStore
from hn_assets.erasure.stores.lake import DeltaLakeStore
from hn_assets.erasure.stores.online import OnlineStore
from hn_assets.erasure.stores.parquet import ParquetFolderStore, TrainingSetStore
from hn_assets.erasure.stores.warehouse import WarehouseStore
from hn_assets.erasure.subject import Matcher, Subject

TOKEN = re.compile(r"^[0-9a-f]{24}$")  # Pseudonymiser.token: 12-byte BLAKE2b, hex


class EraseCustomerConfig(dg.Config):
    customer_token: str = Field(
        default="", description="The customer's pseudonym (what `hn erase` passes; 24 hex characters)."
    )
    customer_id: str = Field(
        default="",
        description="The raw customer id, hashed at once. Dagster keeps run config in its run storage: "
        "prefer `hn erase CUSTOMER_ID`, which passes only the pseudonym.",
    )
    reason: str = Field(default="", description="Why (e.g. the request's reference); emails and phones are scrubbed.")


def _token(config: EraseCustomerConfig, lakehouse: LakehouseResource) -> str:
    if bool(config.customer_token) == bool(config.customer_id.strip()):
        raise dg.Failure("give exactly one of customer_token and customer_id")
    if config.customer_token:
        if not TOKEN.match(config.customer_token):
            raise dg.Failure("customer_token must be a pseudonym: 24 lowercase hex characters")
        return config.customer_token
    return lakehouse.pseudonymiser().token(config.customer_id.strip())


def _subject(token: str, lakehouse: LakehouseResource) -> Subject:
    tokens = ErasureList.of(lakehouse.delta()).tokens(token)
    return Subject(token, Matcher(tokens, lakehouse.pseudonymiser()))


# ---- the registry: every store, in the order they are erased -----------------------------------
def lake_stores(
    lakehouse: LakehouseResource,
    warehouse: WarehouseResource,
    feature_store: FeatureStoreResource,
    model_registry: ModelRegistryResource,
    reports: ReportStoreResource,
) -> list[Store]:
    """MLflow comes before the training sets: its input examples are matched against the
    customer's training-set rows, which must still exist."""
    training_sets = TrainingSetStore("training_sets", feature_store.training_sets(""))  # "": every set
    tracking_uri = model_registry.registry().tracking_uri
    return [
        LandingFolderStore("landing", lakehouse.landing),
        LandingFolderStore("archive", lakehouse.archive),
        LandingFolderStore("quarantined_files", lakehouse.ingest_target().quarantine),
        DeltaLakeStore("bronze", lakehouse.delta(), [*BRONZE_TABLES, QUARANTINE_TABLE]),
        ParquetFolderStore("gold_exports", warehouse.gold),
        OnlineStore("online_store", feature_store.repo_config()),
        ArtifactFilesStore(
            "mlflow_artifacts", lambda: mlflow_artifact_roots(tracking_uri), example_rows=training_sets.subject_rows
        ),
        training_sets,
        ArtifactFilesStore("reports", lambda: ([reports.folder()], []), exclude=("erasure",)),
    ]


def warehouse_stores(warehouse: WarehouseResource, dbt: DbtCliResource) -> list[Store]:
    def full_refresh() -> None:
        # `run`, not `build`: the erasure rebuilds data; a data test failing for another reason must not
        # skip downstream models (the daily build runs the tests as asset checks).
        dbt.cli(["run", "--full-refresh"]).wait()

    return [WarehouseStore("warehouse", warehouse.database, full_refresh, warehouse.memory_limit)]


def _log(context: dg.OpExecutionContext, results: list[StoreResult]) -> None:
    for r in results:
        status = "" if r.status == "pending" else f" ({r.status})"  # settled by erasure_report's scan
        context.log.info(f"{r.store}: found {r.found}, removed {r.removed}{status} {r.detail}".rstrip())


# ---- the job -----------------------------------------------------------------------------------
@dg.op(pool=BRONZE_POOL, description="List the customer's pseudonyms on the erasure list, then erase the lake.")
def erase_from_lake(
    context: dg.OpExecutionContext,
    config: EraseCustomerConfig,
    lakehouse: LakehouseResource,
    warehouse: WarehouseResource,
    feature_store: FeatureStoreResource,
    model_registry: ModelRegistryResource,
    reports: ReportStoreResource,
) -> dict:
    token = _token(config, lakehouse)
    lake, pseudonymiser = lakehouse.delta(), lakehouse.pseudonymiser()
    linked = linked_tokens(token, lake, [lakehouse.landing, lakehouse.archive], pseudonymiser)
    listed = ErasureList.of(lake).add(token, linked, context.run_id)
    context.log.info(f"customer {token}: {', '.join(f'{k} {len(v)}' for k, v in linked.items())} ({listed} new)")
    stores = lake_stores(lakehouse, warehouse, feature_store, model_registry, reports)
    results = erase_all(stores, _subject(token, lakehouse))
    _log(context, results)
    linked_counts = {k: len(v) for k, v in linked.items()}
    reason = scrub(config.reason, config.customer_id.strip() or None)
    return {"token": token, "reason": reason, "linked": linked_counts, "listed": listed, "results": _plain(results)}


@dg.op(pool=DUCKDB_POOL, description="Rebuild silver and gold (dbt full refresh into a fresh warehouse file).")
def rebuild_warehouse(
    context: dg.OpExecutionContext,
    lake: dict,
    lakehouse: LakehouseResource,
    warehouse: WarehouseResource,
    dbt: DbtCliResource,
) -> list[dict]:
    results = erase_all(warehouse_stores(warehouse, dbt), _subject(lake["token"], lakehouse))
    _log(context, results)
    return _plain(results)


@dg.op(pool=DUCKDB_POOL, description="Scan every store again and write the erasure report (fails if anything remains).")
def erasure_report(
    context: dg.OpExecutionContext,
    lake: dict,
    rebuilt: list[dict],
    lakehouse: LakehouseResource,
    warehouse: WarehouseResource,
    feature_store: FeatureStoreResource,
    model_registry: ModelRegistryResource,
    reports: ReportStoreResource,
    dbt: DbtCliResource,
) -> dict:
    stores = [
        *lake_stores(lakehouse, warehouse, feature_store, model_registry, reports),
        *warehouse_stores(warehouse, dbt),
    ]
    results = [StoreResult(**r) for r in [*lake["results"], *rebuilt]]
    settled = verify(stores, _subject(lake["token"], lakehouse), results)
    report = ErasureReport(context.run_id, lake["token"], lake["reason"], lake["linked"], lake["listed"], settled)
    as_json, as_markdown = report.write(reports.folder("erasure", context.run_id))
    summary = {
        "token": report.customer_token,
        "complete": report.complete,
        "found_anywhere": report.found_anywhere,
        "removed": {s.store: s.removed for s in settled},
        "report": str(as_json),
        "markdown": str(as_markdown),
        "problems": report.problems(),
    }
    metadata = {
        "report": dg.MetadataValue.path(str(as_markdown)),
        "removed": dg.MetadataValue.json(summary["removed"]),
        "complete": report.complete,
    }
    if not report.complete:
        raise dg.Failure(f"erasure incomplete: {'; '.join(report.problems())}", metadata=metadata)
    context.add_output_metadata(metadata)
    return summary


def _plain(results: list[StoreResult]) -> list[dict]:
    return [asdict(r) for r in results]


@dg.job(
    name="erase_customer",
    description="Erase one customer (config: customer_token or customer_id, reason) from every store, list "
    "their pseudonyms so ingest drops them from late files, and report per store (reports/erasure/<run>/).",
    tags={"privacy": "erasure"},
)
def erase_customer():
    lake = erase_from_lake()
    erasure_report(lake, rebuild_warehouse(lake))


defs = dg.Definitions(jobs=[erase_customer])
