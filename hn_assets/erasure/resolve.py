"""The keys linked to a customer, found before anything is erased and kept on the erasure list.

From bronze: the visitor tokens of their logged-in events, their orders, the orders their visitors
placed. From the raw landing and archive files (while they exist): the visitor ids they used, whose
day-salted tokens (their events without analytics consent) nothing in bronze links to them. The
keys are returned as tokens; raw ids found on the way stay in this process's memory.

Rejected: resolving inside each store. A store erased first (bronze orders) would take the links a
later store needs (bronze order lines); resolved once and listed, the erasure can also resume.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time
from pathlib import Path

import polars as pl

from hn_assets.contracts import FEEDS
from hn_assets.erasure.subject import Matcher
from hn_assets.ingest.bronze import PARTITION_COLUMN, DeltaLake
from hn_assets.ingest.landing import discover, read_landing_batches
from hn_assets.ingest.privacy import Pseudonymiser, _salt_visitor

CLICKSTREAM, ORDERS = FEEDS["clickstream_events"], FEEDS["orders"]


def linked_tokens(
    token: str, lake: DeltaLake, raw_roots: Iterable[Path], pseudonymiser: Pseudonymiser
) -> dict[str, set[str]]:
    """kind -> tokens: `customer`, `visitor` (stable), `visitor_day` (salted), `order`."""
    customer = Matcher(frozenset({token}), pseudonymiser)
    raw_visitors, raw_orders = _raw_links(customer, list(raw_roots))
    events = _scan(lake, CLICKSTREAM.bronze_table)
    visitors = {pseudonymiser.token(v) for v in raw_visitors}
    salted: set[str] = set()
    orders = set(raw_orders)
    if events is not None:
        visitors |= _distinct(events.filter(pl.col("user_id") == token), "visitor_id")
        salted = _salted_tokens(raw_visitors, events, pseudonymiser)
        orders |= _distinct(events.filter(pl.col("visitor_id").is_in(list(visitors | salted))), "order_id")
    placed = _scan(lake, ORDERS.bronze_table)
    if placed is not None:
        orders |= _distinct(placed.filter(pl.col("customer_id") == token), "order_id")
    return {
        "customer": {token},
        "visitor": visitors,
        "visitor_day": salted,
        "order": {pseudonymiser.token(o) for o in orders},
    }


def _scan(lake: DeltaLake, table: str) -> pl.LazyFrame | None:
    if lake.table(table) is None:
        return None
    return pl.scan_delta(lake.uri(table), storage_options=lake.storage_options)


def _distinct(frame: pl.LazyFrame, column: str) -> set[str]:
    return set(frame.select(pl.col(column).drop_nulls().unique()).collect()[column].to_list())


def _raw_links(customer: Matcher, roots: list[Path]) -> tuple[set[str], set[str]]:
    """Raw visitor ids and order ids of the customer in landing-layout folders (landing, archive).
    A file that cannot be read is skipped here; the landing stores report it."""
    visitors, purchases, orders = set(), [], set()
    for file in (f for root in roots for f in discover(root, CLICKSTREAM.name)):
        for batch in _batches(file, CLICKSTREAM):
            visitors |= set(batch.filter(customer.raw_values(batch["user_id"]))["visitor_id"].drop_nulls().to_list())
            purchases.append(batch.select("visitor_id", "order_id").drop_nulls())
    for file in (f for root in roots for f in discover(root, ORDERS.name)):
        for batch in _batches(file, ORDERS):
            orders |= set(batch.filter(customer.raw_values(batch["customer_id"]))["order_id"].drop_nulls().to_list())
    if purchases:
        placed = pl.concat(purchases).filter(pl.col("visitor_id").is_in(list(visitors)))
        orders |= set(placed["order_id"].to_list())
    return visitors, orders


def _batches(file, contract) -> Iterable[pl.DataFrame]:
    try:
        yield from read_landing_batches(file, contract)
    except Exception:  # noqa: BLE001 - unreadable files are the landing stores' to report
        return


def _salted_tokens(raw_visitors: set[str], events: pl.LazyFrame, pseudonymiser: Pseudonymiser) -> set[str]:
    """The day-salted tokens of the visitors on every day bronze holds events for, that occur in
    bronze. The salt is privacy.py's own rule (`_salt_visitor`), so the two cannot drift apart."""
    if not raw_visitors:
        return set()
    days = sorted(_distinct(events, PARTITION_COLUMN))
    pairs = pl.DataFrame(
        {
            "visitor_id": [v for v in sorted(raw_visitors) for _ in days],
            "analytics_consent": False,
            CLICKSTREAM.date_field: [datetime.combine(d, time(12), UTC) for _ in raw_visitors for d in days],
        }
    )
    salted = pseudonymiser.replace(_salt_visitor(pairs, CLICKSTREAM), ["visitor_id"])["visitor_id"]
    present = events.filter(pl.col("visitor_id").is_in(salted.to_list()))
    return _distinct(present, "visitor_id")
