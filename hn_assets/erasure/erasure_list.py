"""The erasure list and the filter ingest applies with it.

The list holds pseudonyms only (the customer's token and the tokens of the keys linked to it,
`resolve.linked_tokens`), never a raw id. It is a small Delta table beside bronze
(`<lake>/privacy/erasure_list`), so every ingest of the lake sees it wherever it runs (a child
process, another machine on object storage), appends are atomic, and it is outside the bronze root
that dbt turns into views. Rejected: a file under HN_HOME (not shared by an object-store lake, and
a concurrent append could tear it) and a table inside the bronze root (dbt would expose it as
`bronze.erasure_list`).

`drop_erased` is the one call in `ingest.pipeline.ingest_feed`: it removes an erased customer's
records from each landing batch before the contract check, so they are never counted, committed or
quarantined, and a late or re-landed file cannot bring them back.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from hn_assets.contracts import FeedContract
from hn_assets.erasure.subject import RAW_KEY_COLUMNS, Matcher
from hn_assets.ingest.bronze import DeltaLake
from hn_assets.ingest.landing import PARSE_ERROR_COL, RAW_COL
from hn_assets.ingest.privacy import Pseudonymiser

SCHEMA = {
    "subject": pl.String,  # the customer's token: groups the keys of one erasure
    "kind": pl.String,  # customer | visitor | visitor_day | order
    "token": pl.String,
    "listed_at": pl.Datetime("us", "UTC"),
    "request": pl.String,  # the run that listed it
}


def list_uri(bronze_root: str) -> str:
    """`<lake>/privacy/erasure_list` for a bronze root `<lake>/bronze` (local or object storage)."""
    return f"{bronze_root.rstrip('/').rsplit('/', 1)[0]}/privacy/erasure_list"


@dataclass(frozen=True)
class ErasureList:
    uri: str
    storage_options: dict[str, str] | None = None

    @classmethod
    def of(cls, lake: DeltaLake) -> ErasureList:
        return cls(list_uri(lake.root), lake.storage_options)

    def entries(self) -> pl.DataFrame:
        try:
            table = DeltaTable(self.uri, storage_options=self.storage_options)
        except TableNotFoundError:
            return pl.DataFrame(schema=SCHEMA)
        return pl.from_arrow(table.to_pyarrow_table()).cast(SCHEMA)

    def tokens(self, subject: str | None = None) -> frozenset[str]:
        """Every listed token, or those of one customer (their token included)."""
        entries = self.entries()
        if subject is not None:
            entries = entries.filter(pl.col("subject") == subject)
        return frozenset(entries["token"].to_list()) | ({subject} if subject else set())

    def add(self, subject: str, tokens: dict[str, set[str]], request: str) -> int:
        """List the tokens (kind -> tokens) of one customer; returns how many were new."""
        known = set(self.entries().filter(pl.col("subject") == subject)["token"].to_list())
        rows = [(kind, t) for kind, values in tokens.items() for t in sorted(values) if t not in known]
        if not rows:
            return 0
        now = datetime.now(UTC)
        frame = pl.DataFrame(
            {
                "subject": [subject] * len(rows),
                "kind": [k for k, _ in rows],
                "token": [t for _, t in rows],
                "listed_at": [now] * len(rows),
                "request": [request] * len(rows),
            },
            schema=SCHEMA,
        )
        frame.write_delta(self.uri, mode="append", storage_options=self.storage_options)
        return len(rows)


def erased_tokens(lake: DeltaLake) -> frozenset[str]:
    """Every pseudonym on the lake's erasure list (empty when nobody was erased)."""
    return ErasureList.of(lake).tokens()


def id_fields(contract: FeedContract) -> list[str]:
    """The landing fields that hold raw ids of a person or their orders."""
    names = [f.name for f in contract.fields if f.privacy in ("pseudonymise", "visitor")]
    return names + [n for n in contract.field_names if n in RAW_KEY_COLUMNS and n not in names]


def landing_hits(frame: pl.DataFrame, contract: FeedContract, matcher: Matcher) -> pl.Series:
    """Which records of a landing frame (all fields as text, `landing.read_landing_batches`) belong
    to a listed person: an id field hashes to a listed token, or, for a line that did not parse,
    some id in its raw text does."""
    hit = pl.Series("hit", [False] * frame.height, pl.Boolean)
    for name in (n for n in id_fields(contract) if n in frame.columns):
        hit = hit | matcher.raw_values(frame[name])
    if RAW_COL in frame.columns and PARSE_ERROR_COL in frame.columns:
        broken = frame.select(pl.when(pl.col(PARSE_ERROR_COL).is_not_null()).then(pl.col(RAW_COL)))[RAW_COL]
        if broken.null_count() < broken.len():
            hit = hit | matcher.raw_text(broken)
    return hit


def drop_erased(
    batches: Iterator[pl.DataFrame], contract: FeedContract, lake: DeltaLake, pseudonymiser: Pseudonymiser
) -> Iterator[pl.DataFrame]:
    """The landing batches without the records of anyone on the erasure list.

    The list is read when the first batch arrives (so an erasure listed while this ingest waited
    for the lake is applied) and once per file; with an empty list the batches pass untouched.
    Filtering raw records before the contract check, rather than bronze rows after it, covers the
    quarantine too, and keeps `landed = committed` for the counts-balance check.
    """
    matcher = None
    for batch in batches:
        if matcher is None:
            matcher = Matcher(erased_tokens(lake), pseudonymiser)
        yield batch.filter(~landing_hits(batch, contract, matcher)) if matcher.tokens else batch
