"""Contract enforcement, vectorised: typed columns for valid rows, a reason for every other row.

Hot path first: every row gets its typed values and one boolean verdict; the reason text is built
only for the (few) rows that fail. Timestamps are parsed in the canonical landing form
(`YYYY-MM-DDTHH:MM:SS[.fff]Z`) and only the rows that miss it take the slower parser that
accepts offsets, a space separator or a ` UTC` suffix.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from zoneinfo import available_timezones

import polars as pl

from hn_assets.contracts import SCHEMA_VERSION, FeedContract, Field
from hn_assets.ingest.landing import PARSE_ERROR_COL

REASON_COL = "_reason"


@dataclass(frozen=True)
class Plausible:
    """The window a timestamp must fall in: from the store's opening to a margin after ingestion.
    One event dated 2099 would otherwise make daily features run to 2099 and move the temporal
    split; it is quarantined with its reason instead."""

    earliest: datetime
    latest: datetime


_CANONICAL_TS = "%Y-%m-%dT%H:%M:%S%.fZ"
_OFFSET_TS = "%Y-%m-%dT%H:%M:%S%.f%:z"


@cache
def _timezones() -> list[str]:
    return sorted(available_timezones())


def _typed_name(field: Field) -> str:
    return f"__typed_{field.name}"


def _lenient_timestamp(raw: pl.Expr) -> pl.Expr:
    """ISO 8601 with `Z`, an offset, or none (UTC), `T` or space, optional ` UTC` suffix -> UTC."""
    norm = (
        raw.str.strip_chars()
        .str.replace(r" UTC$", "Z")
        .str.replace(r"^(\d{4}-\d\d-\d\d) ", "${1}T")
        .str.replace(r"Z$", "+00:00")
    )
    norm = pl.when(norm.str.contains(r"[+-]\d\d:\d\d$")).then(norm).otherwise(norm + "+00:00")
    return norm.str.to_datetime(_OFFSET_TS, strict=False, time_unit="us").dt.convert_time_zone("UTC")


def typed(field: Field, lenient: bool = False) -> pl.Expr:
    """The field cast to its contract type; null where the text does not parse."""
    raw = pl.col(field.name)
    text = pl.when(raw != "").then(raw)
    match field.type:
        case "string":
            expr = text
        case "int":
            expr = text.str.strip_chars().cast(pl.Int64, strict=False)
        case "float":
            number = text.str.strip_chars().cast(pl.Float64, strict=False)
            expr = pl.when(number.is_finite()).then(number)
        case "bool":
            lowered = text.str.strip_chars().str.to_lowercase()
            expr = (
                pl.when(lowered.is_in(["true", "1"]))
                .then(True)
                .when(lowered.is_in(["false", "0"]))
                .then(False)
                .otherwise(None)
            )
        case "timestamp":
            expr = (
                _lenient_timestamp(text)
                if lenient
                else text.str.to_datetime(_CANONICAL_TS, strict=False, time_unit="us").dt.replace_time_zone("UTC")
            )
        case "date":
            expr = text.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
        case _:
            raise ValueError(f"unknown field type {field.type}")
    return expr.alias(field.name)


def _rules(field: Field, plausible: Plausible | None = None) -> list[tuple[pl.Expr, pl.Expr]]:
    """(violated?, reason) pairs for one field, on the raw text and its typed value."""
    raw, value = pl.col(field.name), pl.col(_typed_name(field))
    present = raw.is_not_null() & (raw != "")
    rules = [(present & value.is_null(), pl.lit(f"{field.name}: not a valid {field.type}"))]
    if field.required:
        rules.append((~present, pl.lit(f"{field.name}: required")))
    if field.allowed:
        rules.append(
            (
                value.is_not_null() & ~value.is_in(list(field.allowed)),
                pl.format(f"{field.name}: '{{}}' not allowed", raw),
            )
        )
    if field.minimum is not None:
        rules.append((value < field.minimum, pl.lit(f"{field.name}: below {field.minimum}")))
    if field.name == "timezone":
        rules.append(
            (value.is_not_null() & ~value.is_in(_timezones()), pl.format("timezone: '{}' is not an IANA zone", raw))
        )
    if field.name == "schema_version":
        rules.append((value > SCHEMA_VERSION, pl.lit(f"schema_version newer than {SCHEMA_VERSION}")))
    if field.type == "timestamp" and plausible is not None:
        rules.append((value < plausible.earliest, pl.lit(f"{field.name}: before {plausible.earliest:%Y-%m-%d}")))
        rules.append((value > plausible.latest, pl.lit(f"{field.name}: after {plausible.latest:%Y-%m-%dT%H:%MZ}")))
    if field.name == "source_error":
        rules.append((present, pl.format("source: {}", raw)))
    return rules


def check(
    raw: pl.DataFrame, contract: FeedContract, plausible: Plausible | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accepted rows with typed contract fields, rejected rows still as text with a `_reason`).
    With `plausible`, timestamps outside its window are rejected too."""
    df = raw.with_columns([typed(f).alias(_typed_name(f)) for f in contract.fields])
    for f in contract.fields:  # second chance for timestamps in other ISO forms, only where needed
        if f.type == "timestamp":
            missed = pl.col(_typed_name(f)).is_null() & pl.col(f.name).is_not_null()
            if df.select(missed.any()).item():
                df = df.with_columns(
                    pl.when(missed).then(typed(f, lenient=True)).otherwise(pl.col(_typed_name(f))).alias(_typed_name(f))
                )
    rules = [(pl.col(PARSE_ERROR_COL).is_not_null(), pl.col(PARSE_ERROR_COL))]
    rules += [rule for f in contract.fields for rule in _rules(f, plausible)]
    violated = pl.any_horizontal([cond.fill_null(False) for cond, _ in rules])
    df = df.with_columns(violated.alias("__violated"))

    accepted = (
        df.filter(~pl.col("__violated"))
        .drop([*contract.field_names, "__violated"])
        .rename({_typed_name(f): f.name for f in contract.fields})
    )
    rejected = df.filter(pl.col("__violated"))
    reasons = [pl.when(cond.fill_null(False)).then(text) for cond, text in rules]
    rejected = rejected.with_columns(pl.concat_str(reasons, separator="; ", ignore_nulls=True).alias(REASON_COL))
    return accepted, rejected.drop([_typed_name(f) for f in contract.fields] + ["__violated"])
