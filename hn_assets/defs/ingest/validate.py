"""Contract enforcement, vectorised: typed columns for valid rows, a reason for every other row."""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

import polars as pl

from hn_assets.contracts import SCHEMA_VERSION, FeedContract, Field
from hn_assets.defs.ingest.landing import PARSE_ERROR_COL

REASON_COL = "_reason"
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%:z"


@cache
def _timezones() -> list[str]:
    return sorted(available_timezones())


def _timestamp(raw: pl.Expr) -> pl.Expr:
    """ISO 8601 with `Z`, an offset, or none (UTC), `T` or space, optional ` UTC` suffix -> UTC."""
    norm = (raw.str.strip_chars().str.replace(r" UTC$", "Z").str.replace(r"^(\d{4}-\d\d-\d\d) ", "${1}T")
            .str.replace(r"Z$", "+00:00"))
    norm = pl.when(norm.str.contains(r"[+-]\d\d:\d\d$")).then(norm).otherwise(norm + "+00:00")
    return norm.str.to_datetime(_TS_FORMAT, strict=False, time_unit="us").dt.convert_time_zone("UTC")


def typed(field: Field) -> pl.Expr:
    """The field cast to its contract type; null where the text does not parse."""
    raw = pl.col(field.name)
    text = pl.when(raw.str.strip_chars() != "").then(raw)
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
            expr = (pl.when(lowered.is_in(["true", "1"])).then(True)
                    .when(lowered.is_in(["false", "0"])).then(False).otherwise(None))
        case "timestamp":
            expr = _timestamp(text)
        case "date":
            expr = text.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
        case _:
            raise ValueError(f"unknown field type {field.type}")
    return expr.alias(field.name)


def _typed_name(field: Field) -> str:
    return f"__typed_{field.name}"


def _checks(field: Field) -> list[pl.Expr]:
    raw, value = pl.col(field.name), pl.col(_typed_name(field))
    present = raw.is_not_null() & (raw.str.strip_chars() != "")
    checks = [pl.when(present & value.is_null()).then(pl.lit(f"{field.name}: not a valid {field.type}"))]
    if field.required:
        checks.append(pl.when(~present).then(pl.lit(f"{field.name}: required")))
    if field.allowed:
        checks.append(pl.when(value.is_not_null() & ~value.is_in(list(field.allowed)))
                      .then(pl.format(f"{field.name}: '{{}}' not allowed", raw)))
    if field.minimum is not None:
        checks.append(pl.when(value < field.minimum).then(pl.lit(f"{field.name}: below {field.minimum}")))
    if field.name == "timezone":
        checks.append(pl.when(value.is_not_null() & ~value.is_in(_timezones()))
                      .then(pl.format("timezone: '{}' is not an IANA zone", raw)))
    if field.name == "schema_version":
        checks.append(pl.when(value > SCHEMA_VERSION)
                      .then(pl.lit(f"schema_version newer than {SCHEMA_VERSION}")))
    if field.name == "source_error":
        checks.append(pl.when(present).then(pl.format("source: {}", raw)))
    return checks


def validate(raw: pl.DataFrame, contract: FeedContract) -> pl.DataFrame:
    """Adds `_reason` (null when the row keeps its contract) and the typed value of every field."""
    checks = [pl.col(PARSE_ERROR_COL)] + [c for f in contract.fields for c in _checks(f)]
    reason = pl.concat_str(checks, separator="; ", ignore_nulls=True)
    return (raw.lazy()
            .with_columns([typed(f).alias(_typed_name(f)) for f in contract.fields])
            .with_columns(pl.when(reason != "").then(reason).alias(REASON_COL))
            .collect())


def split(checked: pl.DataFrame, contract: FeedContract) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accepted rows with typed contract fields, rejected rows still as text with their reason)."""
    ok = pl.col(REASON_COL).is_null()
    typed_cols = [_typed_name(f) for f in contract.fields]
    accepted = (checked.filter(ok).drop(contract.field_names)
                .rename({_typed_name(f): f.name for f in contract.fields}))
    rejected = checked.filter(~ok).drop(typed_cols)
    return accepted, rejected
