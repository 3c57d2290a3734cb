"""Dagster assets of the sources and bronze layers (owners and freshness: hn_assets/policies.py).

`landing_<feed>` are observable source assets (pending files, their size); `bronze_ingest` is the one
multi-asset that writes every bronze table and the quarantine, with a counts-balance check per feed.
"""

import hashlib

import dagster as dg

from hn_assets.contracts import FEEDS, QUARANTINE_TABLE, FeedContract
from hn_assets.defs.resources import LakehouseResource
from hn_assets.ingest.landing import discover, purge_archive
from hn_assets.ingest.pipeline import FeedReport, ingest_landing

_DAGSTER_TYPES = {
    "string": "string",
    "int": "int64",
    "float": "float64",
    "bool": "bool",
    "timestamp": "timestamp[us, UTC]",
    "date": "date",
}


# Bronze writers of one lake run one at a time (with the local lake lock as a second guard).
BRONZE_POOL = "bronze_lake"


def landing_key(feed: str) -> dg.AssetKey:
    return dg.AssetKey(f"landing_{feed}")


def bronze_key(feed: str) -> dg.AssetKey:
    return dg.AssetKey(FEEDS[feed].bronze_table)


QUARANTINE_KEY = dg.AssetKey(QUARANTINE_TABLE)


def _contract_schema(contract: FeedContract) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                f.name,
                _DAGSTER_TYPES[f.type],
                description=", ".join(
                    filter(
                        None,
                        [
                            "required" if f.required else None,
                            f"one of {', '.join(f.allowed)}" if f.allowed else None,
                            f"privacy: {f.privacy}" if f.privacy else None,
                        ],
                    )
                )
                or None,
                constraints=dg.TableColumnConstraints(nullable=not f.required),
            )
            for f in contract.fields
        ]
    )


@dg.multi_observable_source_asset(
    specs=[
        dg.AssetSpec(
            landing_key(feed),
            group_name="sources",
            kinds={"files"},
            description=f"Landing folder `landing/{feed}/`: {contract.description}",
            metadata={"dagster/column_schema": _contract_schema(contract)},
        )
        for feed, contract in FEEDS.items()
    ],
    can_subset=True,
    name="landing_files",
)
def landing_sources(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    """Pending files and bytes per feed; the data version changes whenever the folder does."""
    for feed in FEEDS:
        if landing_key(feed) not in context.selected_asset_keys:
            continue
        sizes = {f.relative: f.path.stat().st_size for f in discover(lakehouse.landing, feed)}
        signature = hashlib.sha256("".join(f"{name}:{size}" for name, size in sizes.items()).encode())
        yield dg.ObserveResult(
            asset_key=landing_key(feed),
            data_version=dg.DataVersion(signature.hexdigest()[:16]),
            metadata={
                "pending_files": len(sizes),
                "pending_bytes": sum(sizes.values()),
                "path": dg.MetadataValue.path(str(lakehouse.landing / feed)),
            },
        )


_bronze_specs = [
    dg.AssetSpec(
        bronze_key(feed),
        deps=[landing_key(feed)],
        group_name="bronze",
        description=f"{c.description} Raw, append-only, contract-checked, privacy-filtered; partitioned by event_date.",
        metadata={"contract_schema": _contract_schema(c)},
    )
    for feed, c in FEEDS.items()
]
_quarantine_spec = dg.AssetSpec(
    QUARANTINE_KEY,
    deps=[landing_key(f) for f in FEEDS],
    group_name="bronze",
    description="Every landing record that broke its feed's contract: feed, file, line, reason and the "
    "raw record with PII masked. Nothing is dropped silently.",
)
_balance_checks = [
    dg.AssetCheckSpec(
        "counts_balance",
        asset=bronze_key(feed),
        blocking=True,
        description="what landed in this run equals what the bronze table and the quarantine hold from this "
        "run's batch (read back from Delta by batch id)",
    )
    for feed in FEEDS
]


def _feed_metadata(report: FeedReport, stats: dict) -> dict:
    return {
        "dagster/row_count": stats["rows"],
        "new_rows": report.accepted,
        "landed": report.landed,
        "quarantined": report.quarantined,
        "files": report.files,
        "files_already_ingested": report.files_already_ingested,
        "files_quarantined": report.files_quarantined,
        "quarantine_reasons": dict(report.reasons),
        "delta_version": stats["version"],
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in stats["schema"]]),
    }


def _quarantine_metadata(lake, quarantined: dict[str, int], purged: int) -> dict:
    stats = lake.stats(QUARANTINE_TABLE)
    return {
        "dagster/row_count": stats["rows"],
        "new_rows": sum(quarantined.values()),
        "new_rows_by_feed": quarantined,
        "archived_files_purged": purged,
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in stats["schema"]]),
    }


@dg.multi_asset(
    specs=[*_bronze_specs, _quarantine_spec],
    check_specs=_balance_checks,
    can_subset=True,
    name="bronze_ingest",
    pool=BRONZE_POOL,
    description="Landing files -> bronze Delta tables + quarantine. Materialising only bronze_quarantine "
    "ingests nothing; a feed whose ingest fails is reported and fails the step after the other feeds.",
)
def bronze_ingest(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    lakehouse.ensure_layout()
    lake = lakehouse.delta()
    selected = [feed for feed in FEEDS if bronze_key(feed) in context.selected_asset_keys]
    quarantined, failed = {}, {}
    for report in ingest_landing(lakehouse, selected, batch_id=context.run_id[:12], in_child_process=True):
        if report.error:
            failed[report.feed] = report.error
            context.log.error(f"{report.feed}: ingest failed, nothing committed: {report.error}")
            continue
        key = bronze_key(report.feed)
        context.log.info(f"{report.feed}: {report}")
        quarantined[report.feed] = report.quarantined
        yield dg.MaterializeResult(asset_key=key, metadata=_feed_metadata(report, lake.stats(key.path[-1])))
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name="counts_balance",
            passed=report.balanced,
            metadata={
                "landed": report.landed,
                "committed": report.committed,
                "accepted": report.accepted,
                "quarantined": report.quarantined,
            },
        )
    # Raw landing files (archived, or quarantined whole) are kept only for the retention period.
    purged = sum(
        purge_archive(folder, lakehouse.retention_days) for folder in (lakehouse.archive, lakehouse.quarantine)
    )
    if QUARANTINE_KEY in context.selected_asset_keys:
        yield dg.MaterializeResult(asset_key=QUARANTINE_KEY, metadata=_quarantine_metadata(lake, quarantined, purged))
    elif any(quarantined.values()):  # the feeds' rejected rows are in it: the quarantine changed too
        context.log_event(
            dg.AssetMaterialization(QUARANTINE_KEY, metadata=_quarantine_metadata(lake, quarantined, purged))
        )
    if failed:
        raise dg.Failure(
            description=f"ingest failed for {', '.join(sorted(failed))} (the other feeds committed)",
            metadata={"failed_feeds": failed},
        )


defs = dg.Definitions(assets=[landing_sources, bronze_ingest])
