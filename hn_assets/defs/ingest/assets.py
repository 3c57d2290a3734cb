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
        description="landed = accepted + quarantined for this run's files",
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
        "quarantine_reasons": dict(report.reasons),
        "delta_version": stats["version"],
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in stats["schema"]]),
    }


@dg.multi_asset(
    specs=[*_bronze_specs, _quarantine_spec],
    check_specs=_balance_checks,
    can_subset=True,
    name="bronze_ingest",
    description="Landing files -> bronze Delta tables + quarantine.",
)
def bronze_ingest(context: dg.AssetExecutionContext, lakehouse: LakehouseResource):
    lakehouse.ensure_layout()
    lake = lakehouse.delta()
    selected = [feed for feed in FEEDS if bronze_key(feed) in context.selected_asset_keys]
    quarantined = {}
    for report in ingest_landing(lakehouse, selected, batch_id=context.run_id[:12], in_child_process=True):
        key = bronze_key(report.feed)
        context.log.info(f"{report.feed}: {report}")
        quarantined[report.feed] = report.quarantined
        yield dg.MaterializeResult(asset_key=key, metadata=_feed_metadata(report, lake.stats(key.path[-1])))
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name="counts_balance",
            passed=report.balanced,
            metadata={"landed": report.landed, "accepted": report.accepted, "quarantined": report.quarantined},
        )
    purged = purge_archive(lakehouse.archive, lakehouse.retention_days)
    if QUARANTINE_KEY in context.selected_asset_keys:
        stats = lake.stats(QUARANTINE_TABLE)
        yield dg.MaterializeResult(
            asset_key=QUARANTINE_KEY,
            metadata={
                "dagster/row_count": stats["rows"],
                "new_rows": sum(quarantined.values()),
                "new_rows_by_feed": quarantined,
                "archived_files_purged": purged,
                "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(n, t) for n, t in stats["schema"]]),
            },
        )


defs = dg.Definitions(assets=[landing_sources, bronze_ingest])
