"""The privacy filter at bronze's door (docs/architecture.md, "Privacy"; docs/privacy.md).

- ids are pseudonymised with a keyed hash (BLAKE2b keyed with the platform secret), so the same
  person gets the same token in every feed and nobody without the key can reverse or recompute it;
  the key's fingerprint is recorded beside bronze, and another key is refused (`verify_key`);
- identifying fields are dropped, birth dates generalised to an age band;
- events without analytics consent keep no key that outlives their day: each field declares in
  the contract what happens to it then (`Field.without_consent`: salted with the day, or dropped);
- free text (search queries) is scrubbed of emails and phone numbers;
- a quarantined record is rebuilt from the contract's fields before it is stored (`quarantine_record`),
  whatever shape it arrived in, so no raw value the filter would not let into bronze is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlparse

import orjson
import polars as pl

from hn_assets.contracts import FeedContract, Field
from hn_assets.ingest.landing import FILE_COL, PARSE_ERROR_COL, RAW_COL

EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
# A phone number, international (+49 170 1234567) or national (0170 1234567, (030) 123-4567,
# 06 12 34 56 78): at least 7 digits, separated by at most two of space - . / ( ). The word boundary
# keeps ids such as e00000012 whole. Valid in both Python `re` and polars (Rust regex: no lookaround).
PHONE_PATTERN = r"(?:\+|\b)\d(?:[ \-./()]{0,2}\d){6,}"
# ISO dates (2026-09-01, also inside timestamps) have 8 digits too: they are set aside before phone
# numbers are scrubbed, so a reason such as "event_timestamp: before 2020-01-01" keeps its date.
DATE_PATTERN = r"\b((?:19|20)\d\d)-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_DATE_GUARD = "\x00"
AGE_BANDS = ((18, "<18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (55, "45-54"), (65, "55-64"))
FREE_TEXT_FIELDS = ("search_query",)
MASK = "***"
KEY_FINGERPRINT_FILE = "_pseudonym_key_fingerprint.json"
# How far a `shift` time of a record without consent moves: up to this either way, never 0.
SHIFT_WINDOW = timedelta(minutes=15)


class Pseudonymiser:
    def __init__(self, key: bytes):
        self._key = hashlib.sha256(key).digest()
        # Tokens already computed: ids recur across columns, batches and files.
        self._known = pl.DataFrame(schema={"value": pl.String, "token": pl.String})

    def token(self, value: str) -> str:
        return hashlib.blake2b(value.encode(), key=self._key, digest_size=12).hexdigest()

    def shift_ms(self, value: str, window_ms: int) -> int:
        """A secret offset in [-window, -1] or [1, window] ms, fixed per value (a day token): only
        the key holder can compute it, so a shifted time cannot be moved back to match another's."""
        digest = hashlib.blake2b(value.encode(), key=self._key, digest_size=8, person=b"hn-time-shift").digest()
        offset = int.from_bytes(digest, "big") % (2 * window_ms) - window_ms
        return offset if offset < 0 else offset + 1

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


# ---- the key -----------------------------------------------------------------------------------
class PseudonymKeyMismatch(RuntimeError):
    """The pseudonym key is not the one that made the lake's tokens."""


def key_fingerprint(key: bytes) -> str:
    """Names the key without revealing it: BLAKE2b-64 of a fixed label, keyed like the tokens.

    A MAC of a constant, not a hash of the key: it says nothing about the key that the tokens in
    bronze do not already say, and it is no token of any id (the label is no id)."""
    return hashlib.blake2b(b"hn pseudonym key fingerprint", key=hashlib.sha256(key).digest(), digest_size=8).hexdigest()


def verify_key(key: bytes, bronze_uri: str) -> None:
    """Records the key's fingerprint beside bronze on first use; afterwards refuses any other key.

    Beside bronze (`<bronze>/_pseudonym_key_fingerprint.json`, a file, so no bronze view or table
    scan sees it), not beside the key under HN_HOME/secrets: the fingerprint must travel with the
    tokens it vouches for. A lost secrets/ folder (a new key generated silently), a container whose
    HN_HOME is fresh on every run, or a second HN_HOME writing to the same HN_LAKE_URI all keep the
    lake and lose the secrets. Rejected: Delta commit metadata on each table, which needs every
    writer to stamp it and a read of each table's log to check it.
    """
    mine = key_fingerprint(key)
    recorded = _read_fingerprint(bronze_uri)
    if recorded is None:
        recorded = _record_fingerprint(bronze_uri, mine)
    if recorded != mine:
        raise PseudonymKeyMismatch(
            f"HN_PSEUDONYM_KEY (or $HN_HOME/secrets/pseudonym.key) is not the key that made the tokens in "
            f"{bronze_uri}: its fingerprint is {mine}, the lake's is {recorded} ({KEY_FINGERPRINT_FILE}). "
            "Tokens made with it could never be joined to the existing ones; restore the original key, or "
            "use a new lake (HN_HOME or HN_LAKE_URI) for a new key."
        )


def _fingerprint_path(bronze_uri: str) -> tuple[object | None, str]:
    """(pyarrow filesystem or None for a local path, path of the fingerprint file)."""
    if urlparse(bronze_uri).scheme in ("", "file"):
        return None, os.path.join(bronze_uri.removeprefix("file://"), KEY_FINGERPRINT_FILE)
    import pyarrow.fs as pafs

    filesystem, base = pafs.FileSystem.from_uri(bronze_uri)
    return filesystem, f"{base.rstrip('/')}/{KEY_FINGERPRINT_FILE}"


def _read_fingerprint(bronze_uri: str) -> str | None:
    filesystem, path = _fingerprint_path(bronze_uri)
    try:
        if filesystem is None:
            with open(path, "rb") as handle:
                return json.loads(handle.read())["fingerprint"]
        with filesystem.open_input_stream(path) as handle:
            return json.loads(handle.read())["fingerprint"]
    except FileNotFoundError:
        return None


def _record_fingerprint(bronze_uri: str, fingerprint: str) -> str:
    """Writes the fingerprint once and returns the one recorded: locally the first writer wins
    (exclusive create); an object store has no exclusive create, so there the last one does."""
    body = json.dumps({"fingerprint": fingerprint, "recorded_at": datetime.now(UTC).isoformat()}).encode()
    filesystem, path = _fingerprint_path(bronze_uri)
    if filesystem is not None:
        with filesystem.open_output_stream(path) as handle:
            handle.write(body)
        return fingerprint
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return _read_fingerprint(bronze_uri) or fingerprint
    with os.fdopen(fd, "wb") as handle:
        handle.write(body)
    return fingerprint


# ---- bronze rows ------------------------------------------------------------------------------
def scrub_text(expr: pl.Expr) -> pl.Expr:
    """Emails -> [email], phone numbers -> [number]; ISO dates are not phone numbers."""
    guarded = expr.str.replace_all(EMAIL_PATTERN, "[email]").str.replace_all(
        DATE_PATTERN, f"${{1}}{_DATE_GUARD}${{2}}{_DATE_GUARD}${{3}}"
    )
    return guarded.str.replace_all(PHONE_PATTERN, "[number]").str.replace_all(_DATE_GUARD, "-", literal=True)


def _age_band(birth: pl.Expr, at: pl.Expr) -> pl.Expr:
    years = (at.dt.year() - birth.dt.year()) - (
        (at.dt.month() < birth.dt.month()) | ((at.dt.month() == birth.dt.month()) & (at.dt.day() < birth.dt.day()))
    ).cast(pl.Int32)
    band = pl.when(birth.is_null()).then(None)
    for upper, label in AGE_BANDS:
        band = band.when(years < upper).then(pl.lit(label))
    return band.otherwise(pl.lit("65+"))


def tokenised_fields(contract: FeedContract) -> list[str]:
    """Fields that reach bronze as tokens: pseudonymised ones, and those salted without consent
    (a salted value is `value|day`, which must not reach bronze as text)."""
    return [f.name for f in contract.fields if f.privacy == "pseudonymise" or f.without_consent == "salt"]


def apply_privacy(df: pl.DataFrame, contract: FeedContract, pseudonymiser: Pseudonymiser) -> pl.DataFrame:
    """Typed, contract-valid rows -> rows fit for bronze (no raw PII, consent honoured)."""
    date_col = pl.col(contract.date_field)
    for field in contract.fields:
        if field.privacy == "drop":
            df = df.drop(field.name)
        elif field.privacy == "age_band":
            df = df.with_columns(_age_band(pl.col(field.name), date_col).alias("age_band")).drop(field.name)
    df = _drop_without_consent(_salt_visitor(df, contract), contract)
    df = pseudonymiser.replace(df, tokenised_fields(contract))
    df = _shift_without_consent(df, contract, pseudonymiser)
    for name in FREE_TEXT_FIELDS:
        if name in df.columns:
            df = df.with_columns(scrub_text(pl.col(name)))
    return df


def _consented(contract: FeedContract) -> pl.Expr:
    return pl.col(contract.consent_field).fill_null(False)


def _salt_visitor(df: pl.DataFrame, contract: FeedContract) -> pl.DataFrame:
    """Without consent, each `salt` field becomes `value|day` (tokenised next): one day's events
    still join (sessions exist), two days cannot. The erasure job finds day tokens with this rule."""
    salted = [f.name for f in contract.fields if f.without_consent == "salt" and f.name in df.columns]
    if contract.consent_field is None or not salted:
        return df
    day = pl.col(contract.date_field).dt.date().cast(pl.String)
    consented = _consented(contract)
    return df.with_columns(
        pl.when(consented).then(pl.col(n)).otherwise(pl.format("{}|{}", pl.col(n), day)).alias(n) for n in salted
    )


def _drop_without_consent(df: pl.DataFrame, contract: FeedContract) -> pl.DataFrame:
    """Without consent, each `drop` field is null (e.g. the user id, the order id)."""
    dropped = [f.name for f in contract.fields if f.without_consent == "drop" and f.name in df.columns]
    if contract.consent_field is None or not dropped:
        return df
    return df.with_columns(pl.when(_consented(contract)).then(pl.col(n)).alias(n) for n in dropped)


def _shift_without_consent(df: pl.DataFrame, contract: FeedContract, pseudonymiser: Pseudonymiser) -> pl.DataFrame:
    """Without consent, each `shift` time moves by the offset of the record's salted tokens (its
    day token), so a visitor-day's events keep their order and gaps (sessions are unchanged) but
    no longer share an instant with the order the purchase made. Rejected: rounding the time, which
    anyone can apply to the other side too, and the join holds again. What is left is a fuzzy match
    on time and basket, which no per-column rule removes (docs/privacy.md, "What is left")."""
    shifted = [f.name for f in contract.fields if f.without_consent == "shift" and f.name in df.columns]
    salted = [f.name for f in contract.fields if f.without_consent == "salt" and f.name in df.columns]
    if contract.consent_field is None or not shifted or df.is_empty():
        return df
    identity = pl.concat_str([pl.col(n).fill_null("") for n in salted] or [pl.lit("")], separator="|")
    identity = pl.concat_str([identity, pl.col(contract.date_field).dt.date().cast(pl.String)], separator="|")
    keys = df.select(identity.alias("key"), _consented(contract).alias("ok")).filter(~pl.col("ok"))["key"].unique()
    window = int(SHIFT_WINDOW.total_seconds() * 1000)
    offsets = pl.DataFrame(
        {"key": keys, "offset": [pseudonymiser.shift_ms(k, window) for k in keys.to_list()]},
        schema={"key": pl.String, "offset": pl.Int64},
    )
    offset = identity.replace_strict(offsets["key"], offsets["offset"], default=0, return_dtype=pl.Int64)
    moved = pl.when(_consented(contract)).then(pl.lit(0, pl.Int64)).otherwise(offset)
    return df.with_columns(pl.col(n) + pl.duration(milliseconds=moved) for n in shifted)


# ---- quarantined records ----------------------------------------------------------------------
# One JSON token at a position: a string, a number, a literal or punctuation.
_JSON_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null|[{}\[\]:,])')
_NESTED = object()
_ISO_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d{1,9})?)?)?(Z|[+-]\d\d:?\d\d| UTC)?")
_KEY_CHARS = 64


def quarantine_record(
    fields: dict[str, str | None],
    raw: str | None,
    parse_error: str | None,
    contract: FeedContract,
    pseudonymiser: Pseudonymiser,
    source_file: str | None = None,
) -> str:
    """A rejected record as stored in `bronze_quarantine.raw_record`: JSON of the contract's fields,
    each as the privacy filter would let it into bronze, and unknown fields' names with `***`.

    The record is rebuilt before anything is masked, so the shape it came in cannot hide a value:
    the raw text of a JSON line is parsed (its longest parsable prefix, when truncated) and only its
    top-level pairs are kept. Where a value's field is not certain, only what no person can be is
    kept (a value of the field's closed vocabulary, a boolean): a CSV row that did not split into
    the header's fields, and any CSV row polars read, since polars pads a short row with nulls
    without a word (a name may then sit where the order id should be). Rejected: masking the raw
    text with patterns, which missed numeric ids, fields outside the contract, CSV rows and national
    phone numbers.
    """
    trust = _trust(raw, parse_error, source_file)
    if trust == "none":
        return _unaligned_row(raw or "", contract)
    record = _json_pairs(raw) if trust == "keys" else fields
    by_name = {f.name: f for f in contract.fields}
    consent = str(record.get(contract.consent_field or "", "")).strip().lower() in ("true", "1")
    consented, day = consent and trust != "names", _day(_text(record.get(contract.date_field)))
    out = {}
    for name, value in record.items():
        field = by_name.get(name)
        if field is None:
            out[scrub_str(str(name))[:_KEY_CHARS]] = MASK
        elif value is _NESTED or isinstance(value, dict | list):
            out[name] = MASK
        else:
            value = _quarantined_value(field, _text(value), consented, day, pseudonymiser)
            out[name] = value if trust != "names" or _closed(field, value) else MASK
    return orjson.dumps(out).decode()


def quarantine_reason(reason: str, raw: str | None, parse_error: str | None, source_file: str | None = None) -> str:
    """The reason scrubbed of emails and phones; where fields are not certain, the values it quotes
    (`device: '...' not allowed`) are masked too: the value may belong to another field."""
    if _trust(raw, parse_error, source_file) in ("names", "none"):
        reason = re.sub(r"'[^']*'", f"'{MASK}'", reason)
    return scrub_str(reason)


def _trust(raw: str | None, parse_error: str | None, source_file: str | None) -> str:
    """How certain the record's field of each value is: "keys" (a JSON object's own keys),
    "fields" (read by name, or a CSV row of the header's width), "names" (the fields are known, their
    values' positions are not), "none" (a CSV row of another width, a JSON value that is no object)."""
    if raw is not None and raw.lstrip()[:1] in ("{", "["):
        return "keys"
    if raw is not None:
        return "none" if parse_error is not None else "fields"
    return "names" if source_file is not None and source_file.endswith(".csv") else "fields"


def _closed(field: Field, value: str | None) -> bool:
    """A value no person can be: null, masked, a token, a closed-vocabulary value or a boolean."""
    if value is None or value == MASK or field.privacy == "pseudonymise" or field.without_consent == "salt":
        return True
    return (field.allowed is not None and value in field.allowed) or (field.type == "bool" and _parses(field, value))


def mask_raw(raw: str, contract: FeedContract, pseudonymiser: Pseudonymiser) -> str:
    """One raw landing text (a JSON line, even malformed) as its quarantined record."""
    return quarantine_record({}, raw, None, contract, pseudonymiser)


def quarantine_records(
    rejected: pl.DataFrame, contract: FeedContract, pseudonymiser: Pseudonymiser, reason_col: str
) -> pl.DataFrame:
    """`raw_record` and `reason` for every rejected row of a landing frame (fields as text, raw text,
    parse error, source file, reason)."""
    names = list(contract.field_names)
    frame = rejected.select(*names, RAW_COL, PARSE_ERROR_COL, FILE_COL, reason_col)
    records, reasons = [], []
    for row in frame.iter_rows():
        raw, error, source, reason = row[-4:]
        records.append(quarantine_record(dict(zip(names, row)), raw, error, contract, pseudonymiser, source))
        reasons.append(quarantine_reason(reason, raw, error, source) if reason is not None else None)
    return pl.DataFrame(
        {"raw_record": records, "reason": reasons}, schema={"raw_record": pl.String, "reason": pl.String}
    )


def _quarantined_value(
    field: Field, text: str | None, consented: bool, day: str | None, pseudonymiser: Pseudonymiser
) -> str | None:
    """A field's value as bronze would hold it, or `***` where bronze would hold nothing of it."""
    if text is None:
        return None
    if field.without_consent in ("salt", "drop", "shift") and not consented:
        return pseudonymiser.token(f"{text}|{day}") if field.without_consent == "salt" and day else MASK
    if field.privacy == "pseudonymise":
        return pseudonymiser.token(text)
    if field.privacy is not None:  # dropped, or generalised (an age band needs a valid date: masked)
        return MASK
    if field.allowed is not None:
        return text if text in field.allowed else MASK
    if field.type == "string":
        return scrub_str(text)
    return text if _parses(field, text) else MASK


def _json_pairs(raw: str) -> dict:
    """The top-level pairs of a JSON object, or of the longest prefix that tokenises when the line
    is truncated or broken: everything after the first unreadable character is dropped, never
    guessed at. Nested values are marked, not kept."""
    try:
        record = orjson.loads(raw)
        return record if isinstance(record, dict) else {}
    except orjson.JSONDecodeError:
        pass
    pairs: dict = {}
    depth, key, expect_value, pos = 0, None, False, 0
    while (match := _JSON_TOKEN.match(raw, pos)) is not None:
        token, pos = match.group(1), match.end()
        if token in ("{", "["):
            if depth == 1 and expect_value and key is not None:
                pairs[key] = _NESTED
            depth, expect_value = depth + 1, False
        elif token in ("}", "]"):
            depth -= 1
            if depth <= 0:
                break
        elif token == ":":
            expect_value = True
        elif token == ",":
            key, expect_value = None, False
        elif depth == 1:
            try:
                value = orjson.loads(token)
            except orjson.JSONDecodeError:
                break
            if expect_value and key is not None:
                pairs[key], key, expect_value = value, None, False
            elif isinstance(value, str):
                key = value
    return pairs


def _unaligned_row(raw: str, contract: FeedContract) -> str:
    vocabulary = {v for f in contract.fields if f.allowed for v in f.allowed}
    values = [v if v in vocabulary else MASK for v in raw.split(",")]
    return orjson.dumps({"_unaligned_values": values}).decode()


def _text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _day(text: str | None) -> str | None:
    """The UTC date of a timestamp or date text (the day a salted token is salted with)."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip().replace(" UTC", "Z"))
    except ValueError:
        return None
    return (parsed.astimezone(UTC) if parsed.tzinfo else parsed).date().isoformat()


def _parses(field: Field, text: str) -> bool:
    """Whether the text is a value of the field's (non-string) type, e.g. a timestamp or a count."""
    value = text.strip()
    match field.type:
        case "int":
            return re.fullmatch(r"[+-]?\d{1,18}", value) is not None
        case "float":
            try:
                return float(value) == float(value) and abs(float(value)) != float("inf")
            except ValueError:
                return False
        case "bool":
            return value.lower() in ("true", "false", "1", "0")
        case "date":
            try:
                return date.fromisoformat(value).isoformat() == value
            except ValueError:
                return False
        case _:
            return _ISO_TIMESTAMP.fullmatch(value) is not None


def scrub_str(text: str) -> str:
    """`scrub_text` for one Python string."""
    guarded = re.sub(DATE_PATTERN, rf"\1{_DATE_GUARD}\2{_DATE_GUARD}\3", re.sub(EMAIL_PATTERN, "[email]", text))
    return re.sub(PHONE_PATTERN, "[number]", guarded).replace(_DATE_GUARD, "-")
