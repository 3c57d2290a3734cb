"""The privacy filter at bronze's door (docs/architecture.md, "Privacy").

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
        # Tokens already computed: ids recur across columns, batches and files.
        self._known = pl.DataFrame(schema={"value": pl.String, "token": pl.String})

    def token(self, value: str) -> str:
        return hashlib.blake2b(value.encode(), key=self._key, digest_size=12).hexdigest()

    def replace(self, df: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
        """Each named column replaced by its tokens. Known values are found with a join; only
        values never seen before are hashed (in Python, once each)."""
        if not columns:
            return df
        distinct = pl.concat([df[c] for c in columns]).drop_nulls().unique().to_frame("value")
        known = self._known.join(distinct, on="value", how="semi")
        unseen = distinct.join(known, on="value", how="anti")["value"]
        if unseen.len():
            new = pl.DataFrame(
                {"value": unseen, "token": [self.token(v) for v in unseen.to_list()]}, schema=self._known.schema
            )
            self._known = pl.concat([self._known, new], rechunk=False)
            known = pl.concat([known, new])
        return df.with_columns(
            pl.col(c).replace_strict(known["value"], known["token"], default=None, return_dtype=pl.String)
            for c in columns
        )


def scrub_text(expr: pl.Expr) -> pl.Expr:
    return expr.str.replace_all(EMAIL_PATTERN, "[email]").str.replace_all(PHONE_PATTERN, "[number]")


def _age_band(birth: pl.Expr, at: pl.Expr) -> pl.Expr:
    years = (at.dt.year() - birth.dt.year()) - (
        (at.dt.month() < birth.dt.month()) | ((at.dt.month() == birth.dt.month()) & (at.dt.day() < birth.dt.day()))
    ).cast(pl.Int32)
    band = pl.when(birth.is_null()).then(None)
    for upper, label in AGE_BANDS:
        band = band.when(years < upper).then(pl.lit(label))
    return band.otherwise(pl.lit("65+"))


def apply_privacy(df: pl.DataFrame, contract: FeedContract, pseudonymiser: Pseudonymiser) -> pl.DataFrame:
    """Typed, contract-valid rows -> rows fit for bronze (no raw PII, consent honoured)."""
    date_col = pl.col(contract.date_field)
    to_tokens = []
    for field in contract.fields:
        name = field.name
        if field.privacy in ("pseudonymise", "visitor"):
            to_tokens.append(name)
        elif field.privacy == "drop":
            df = df.drop(name)
        elif field.privacy == "age_band":
            df = df.with_columns(_age_band(pl.col(name), date_col).alias("age_band")).drop(name)
    visitor = any(field.privacy == "visitor" for field in contract.fields)
    if visitor:
        df = _salt_visitor(df, contract)
    df = pseudonymiser.replace(df, to_tokens)
    if visitor:
        df = _unlink_anonymous(df)
    for name in FREE_TEXT_FIELDS:
        if name in df.columns:
            df = df.with_columns(scrub_text(pl.col(name)))
    return df


def _salt_visitor(df: pl.DataFrame, contract: FeedContract) -> pl.DataFrame:
    """Without consent the visitor is salted with the day: one day's sessions stay linkable, no more."""
    day = pl.col(contract.date_field).dt.date().cast(pl.String)
    salted = (
        pl.when(pl.col("analytics_consent"))
        .then(pl.col("visitor_id"))
        .otherwise(pl.format("{}|{}", pl.col("visitor_id"), day))
    )
    return df.with_columns(salted.alias("visitor_id"))


def _unlink_anonymous(df: pl.DataFrame) -> pl.DataFrame:
    """Events without consent keep no user id or client session id."""
    anonymous = {
        c: pl.when(pl.col("analytics_consent")).then(pl.col(c))
        for c in ("user_id", "client_session_id")
        if c in df.columns
    }
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
