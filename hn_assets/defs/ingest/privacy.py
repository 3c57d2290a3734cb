"""The privacy filter at bronze's door (ARCHITECTURE.md §5).

- ids are pseudonymised with a keyed hash (BLAKE2b keyed with the platform secret), so the same
  person gets the same token in every feed and nobody without the key can reverse or recompute it;
- identifying fields are dropped, birth dates generalised to an age band;
- events of visitors without analytics consent get a visitor token salted with the day, so their
  sessions still exist but cannot be linked across days, and lose their user id;
- free text (search queries) and quarantined raw records are scrubbed of emails and phone numbers.
"""

from __future__ import annotations

import hashlib
import re

import polars as pl

from hn_assets.contracts import FeedContract

EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
PHONE_PATTERN = r"\+\d{1,3}[ \-]?\(?\d[\d \-()]{5,}\d"  # international form
AGE_BANDS = ((18, "<18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (55, "45-54"), (65, "55-64"))
FREE_TEXT_FIELDS = ("search_query",)
MASK = "***"


class Pseudonymiser:
    def __init__(self, key: bytes):
        self._key = hashlib.sha256(key).digest()
        self._tokens: dict[str, str] = {}  # the same id recurs across columns and batches

    def token(self, value: str) -> str:
        return hashlib.blake2b(value.encode(), key=self._key, digest_size=12).hexdigest()

    def series(self, values: pl.Series) -> pl.Series:
        """Token per value, hashed once per distinct value."""
        distinct = values.drop_nulls().unique()
        tokens = self._tokens
        mapped = [tokens.get(v) or tokens.setdefault(v, self.token(v)) for v in distinct.to_list()]
        return values.replace_strict(distinct, pl.Series(mapped, dtype=pl.String), default=None,
                                     return_dtype=pl.String)


def scrub_text(expr: pl.Expr) -> pl.Expr:
    return expr.str.replace_all(EMAIL_PATTERN, "[email]").str.replace_all(PHONE_PATTERN, "[number]")


def _age_band(birth: pl.Expr, at: pl.Expr) -> pl.Expr:
    years = (at.dt.year() - birth.dt.year()) - (
        (at.dt.month() < birth.dt.month())
        | ((at.dt.month() == birth.dt.month()) & (at.dt.day() < birth.dt.day()))).cast(pl.Int32)
    band = pl.when(birth.is_null()).then(None)
    for upper, label in AGE_BANDS:
        band = band.when(years < upper).then(pl.lit(label))
    return band.otherwise(pl.lit("65+"))


def apply_privacy(df: pl.DataFrame, contract: FeedContract, pseudonymiser: Pseudonymiser) -> pl.DataFrame:
    """Typed, contract-valid rows -> rows fit for bronze (no raw PII, consent honoured)."""
    date_col = pl.col(contract.date_field)
    for field in contract.fields:
        name = field.name
        if field.privacy == "pseudonymise":
            df = df.with_columns(pseudonymiser.series(df[name]).alias(name))
        elif field.privacy == "drop":
            df = df.drop(name)
        elif field.privacy == "age_band":
            df = df.with_columns(_age_band(pl.col(name), date_col).alias("age_band")).drop(name)
        elif field.privacy == "visitor":
            df = _visitor(df, contract, pseudonymiser)
    for name in FREE_TEXT_FIELDS:
        if name in df.columns:
            df = df.with_columns(scrub_text(pl.col(name)))
    return df


def _visitor(df: pl.DataFrame, contract: FeedContract, pseudonymiser: Pseudonymiser) -> pl.DataFrame:
    consented = pl.col("analytics_consent")
    day = pl.col(contract.date_field).dt.date().cast(pl.String)
    # Without consent the token is salted with the day: one day's sessions stay linkable, no more.
    salted = pl.when(consented).then(pl.col("visitor_id")).otherwise(pl.format("{}|{}", pl.col("visitor_id"), day))
    df = df.with_columns(salted.alias("visitor_id"))
    df = df.with_columns(pseudonymiser.series(df["visitor_id"]).alias("visitor_id"))
    anonymous = {c: pl.when(consented).then(pl.col(c)) for c in ("user_id", "client_session_id") if c in df.columns}
    return df.with_columns(**anonymous)


def mask_raw(raw: str, contract: FeedContract, pseudonymiser: Pseudonymiser) -> str:
    """A quarantined record's raw text with PII masked and ids pseudonymised (even if malformed)."""
    for field in contract.fields:
        if field.privacy is None:
            continue
        pattern = re.compile(rf'("{field.name}"\s*:\s*")((?:[^"\\]|\\.)*)("?)')
        if field.privacy == "pseudonymise":
            raw = pattern.sub(lambda m: m.group(1) + pseudonymiser.token(m.group(2)) + m.group(3), raw)
        else:
            raw = pattern.sub(lambda m: m.group(1) + MASK + m.group(3), raw)
    return re.sub(PHONE_PATTERN, MASK, re.sub(EMAIL_PATTERN, MASK, raw))
