"""Who is erased, in pseudonyms only, and how a store's values are matched against them.

A customer is known to the stores by several keys: their customer token (`customer_id`, `user_id`),
the tokens of the visitors (devices) they used, stable or salted with the day when they had no
analytics consent, session keys `<visitor token>#<n>`, and their orders. Every key is held here as
a keyed-hash token (the ingest Pseudonymiser's), never as the raw id: a raw value found in a store
(a landing record, an order id that bronze keeps as it is) is matched by hashing it.

Three ways a value can match, by what the column holds:
- pseudonyms (every string column): one of the tokens appears as a whole id piece, so
  `3f..9a#2` (a session key) and `{"customer_id":"3f..9a"}` (a quarantined record) match;
- raw ids (`RAW_KEY_COLUMNS`): the value's token is listed;
- raw text (`RAW_TEXT_COLUMNS`, and landing lines that do not parse): some id piece of the text,
  or its token, is listed.
The raw-id rules hash values, so they are limited to the columns that can hold raw linking ids;
hashing every distinct string of every column (event ids, file names) would cost seconds per
million rows for nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import polars as pl

from hn_assets.ingest.privacy import Pseudonymiser

ID_CHARS = "A-Za-z0-9_\\-"  # what an id is made of; anything else separates two ids in text
ID_PIECE = f"[{ID_CHARS}]+"
# Ids that bronze, silver and gold keep as they are and that link rows to a customer (their orders).
RAW_KEY_COLUMNS = frozenset({"order_id"})
# Free text that holds whole records: the quarantine's masked raw record, a landing line.
RAW_TEXT_COLUMNS = frozenset({"raw_record", "_raw"})
TEXT_TYPES = (pl.String, pl.Categorical, pl.Enum)


@dataclass(frozen=True)
class Matcher:
    """Recognises a set of pseudonyms in a store's values (see the module docstring)."""

    tokens: frozenset[str]
    pseudonymiser: Pseudonymiser = field(repr=False, compare=False)

    @cached_property
    def pattern(self) -> str:
        """A regex (Rust and RE2 syntax: polars and DuckDB) matching any token as a whole id piece."""
        alternatives = "|".join(sorted(re.escape(t) for t in self.tokens)) or "(?!)"
        return f"(?:^|[^{ID_CHARS}])(?:{alternatives})(?:$|[^{ID_CHARS}])"

    def text(self, column: pl.Expr) -> pl.Expr:
        return column.cast(pl.String).str.contains(self.pattern).fill_null(False)

    def raw_values(self, values: pl.Series) -> pl.Series:
        """Which raw ids hash to a listed token (each distinct value hashed once)."""
        if not self.tokens or values.len() == 0:
            return pl.Series(values.name, [False] * values.len(), pl.Boolean)
        frame = self.pseudonymiser.replace(values.cast(pl.String).to_frame("value"), ["value"])
        return frame["value"].is_in(list(self.tokens)).fill_null(False).alias(values.name)

    def raw_text(self, texts: pl.Series) -> pl.Series:
        """Which texts hold an id piece that is, or hashes to, a listed token."""
        pieces = texts.cast(pl.String).str.extract_all(ID_PIECE)
        distinct = pieces.explode().drop_nulls().unique()
        listed = distinct.is_in(list(self.tokens)) | self.raw_values(distinct)
        hits = distinct.filter(listed)
        return pieces.list.eval(pl.element().is_in(hits.implode())).list.any().fill_null(False).alias(texts.name)

    def raw_keys(self, frame: pl.LazyFrame, column: str) -> list[str]:
        """The distinct values of a raw-id or raw-text column that match."""
        values = frame.select(pl.col(column).cast(pl.String).unique()).collect()[column].drop_nulls()
        test = self.raw_text if column in RAW_TEXT_COLUMNS else self.raw_values
        return values.filter(test(values) | values.str.contains(self.pattern)).to_list()

    def row_filter(self, frame: pl.LazyFrame) -> tuple[pl.Expr | None, dict[str, list[str]]]:
        """An expression true on the rows that hold a listed key, and for the raw columns the
        values that match (a delete predicate needs them). None: the frame has no text column."""
        schema = frame.collect_schema()
        parts, keys = [], {}
        for name, dtype in schema.items():
            if name in RAW_KEY_COLUMNS | RAW_TEXT_COLUMNS and isinstance(dtype, TEXT_TYPES):
                keys[name] = self.raw_keys(frame, name)
                parts.append(pl.col(name).cast(pl.String).is_in(keys[name]).fill_null(False))
            elif isinstance(dtype, TEXT_TYPES):
                parts.append(self.text(pl.col(name)))
        return (pl.any_horizontal(parts).fill_null(False) if parts else None), keys

    def rows(self, frame: pl.DataFrame) -> pl.Series:
        """A boolean mask of the frame's rows that hold a listed key."""
        expr, _ = self.row_filter(frame.lazy())
        if expr is None:
            return pl.Series("hit", [False] * frame.height, pl.Boolean)
        return frame.select(expr.alias("hit"))["hit"]


@dataclass(frozen=True)
class Subject:
    """One customer being erased: their token (what reports and logs show) and every pseudonym
    linked to them (`resolve.linked_tokens`, kept on the erasure list)."""

    token: str
    matcher: Matcher
