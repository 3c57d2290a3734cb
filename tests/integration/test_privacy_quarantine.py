"""No PII reaches bronze, whatever shape the record that carries it arrives in.

Every PII value of a simulated customer file (names, emails, phones in international and national
form, birth dates, raw customer ids, and numeric ids) is pushed through each malformed path of
every feed: JSON with numeric ids, fields outside the contract, truncated lines and non-objects;
CSV rows with an extra field (at the end, or mid-row from an unquoted comma), short rows, broken
quoting and valid-shaped rows that fail the contract; Parquet with wrong column types. Then every
string column of every bronze table, the quarantine's reasons and raw records included, is scanned.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import orjson
import polars as pl
import pytest

from hn_assets.contracts import FEEDS, QUARANTINE_TABLE, FeedContract, Field
from hn_assets.defs.resources import LakehouseResource
from hn_assets.ingest.landing import discover
from hn_assets.ingest.pipeline import ingest_feed

pytestmark = pytest.mark.integration

WHEN = "2024-03-01T12:00:00.000Z"
DROPPED_AS = {  # which PII value a dropped or generalised field carries
    "first_name": "first",
    "last_name": "last",
    "email": "email",
    "shipping_email": "email",
    "phone": "phone",
    "shipping_address": "address",
    "birth_date": "birth",
}


@dataclass
class Person:
    customer_id: str
    first: str
    last: str
    email: str
    phone: str
    birth: str
    number: int  # a numeric id

    @property
    def national(self) -> str:
        """The phone in national form: trunk 0 instead of the country code (none for +1)."""
        code, rest = self.phone.split(" ", 1)
        return rest if code == "+1" else f"0{rest}"

    @property
    def address(self) -> str:
        return f"{self.first} {self.last}, {self.national}"

    def values(self) -> list[str]:
        return [
            self.customer_id,
            self.first,
            self.last,
            self.email,
            self.phone,
            self.national,
            self.national.replace(" ", ""),
            self.birth,
            f"{self.first} {self.last}",
            str(self.number),
        ]


def people(small_store: Path) -> list[Person]:
    """Every customer of the store's first customers file."""
    path = sorted((small_store / "landing" / "customers").rglob("*.jsonl"))[0]
    found = []
    for i, line in enumerate(path.read_bytes().splitlines()):
        try:
            r = orjson.loads(line)
            found.append(
                Person(
                    r["customer_id"],
                    r["first_name"],
                    r["last_name"],
                    r["email"],
                    r["phone"],
                    r["birth_date"],
                    9_870_000_000 + i,
                )
            )
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue  # the simulator's own dirt
    found = [p for p in found if all(isinstance(v, str) and v for v in p.values()[:8])]
    assert len(found) > 50
    return found


def _valid(field: Field) -> str:
    if field.allowed:
        return field.allowed[0]
    return {
        "int": "1",
        "float": "1.5",
        "bool": "true",
        "timestamp": WHEN,
        "date": WHEN[:10],
        "string": "Europe/Berlin" if field.name == "timezone" else f"{field.name}-1",
    }[field.type]


def carrier(contract: FeedContract, p: Person, numeric_ids: bool = False) -> dict:
    """A record of the feed carrying `p`'s PII in its PII fields and failing the contract (schema_version)."""
    record: dict = {}
    for f in contract.fields:
        if f.name == "source_error":
            continue
        if f.privacy == "pseudonymise":
            record[f.name] = p.number if numeric_ids else p.customer_id
        elif f.name in DROPPED_AS:
            record[f.name] = getattr(p, DROPPED_AS[f.name])
        elif f.name == "search_query":
            record[f.name] = f"laptop for {p.email} call {p.national}"
        else:
            record[f.name] = _valid(f)
    record["schema_version"] = "x"
    return record


def _extras(p: Person) -> dict:
    return {"note": f"{p.first} {p.last} {p.phone}", "contact": {"email": p.email, "tel": p.national}, p.email: 1}


def _truncations(line: str, p: Person) -> list[str]:
    """The line cut inside each PII value, right after it, and without its closing brace."""
    cuts = [line[:-1]]
    for value in p.values():
        at = line.find(value)
        if at >= 0:
            cuts += [line[: at + len(value) // 2], line[: at + len(value) + 1]]
    return cuts


def _csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _unclosed_quote(text: str) -> str:
    """A quote opened in the first row's second field and never closed."""
    head, first, rest = text.split("\n", 2)
    return "\n".join([head, first.replace(",", ',"', 1), rest])


def land_poison(landing: Path, contract: FeedContract, persons: list[Person]) -> list[str]:
    """One landing file per malformed path for the feed; returns their names."""
    folder = landing / contract.name / "poison"
    folder.mkdir(parents=True)
    dump = lambda r: orjson.dumps(r).decode()
    carriers = [carrier(contract, p) for p in persons]
    header = [n for n in contract.field_names if n != "source_error"]
    rows = [[str(c[n]) for n in header] for c in carriers]
    files = {
        "numeric_ids.jsonl": [dump(carrier(contract, p, numeric_ids=True)) for p in persons],
        "extra_fields.jsonl": [dump({**c, **_extras(p)}) for c, p in zip(carriers, persons)],
        "truncated.jsonl": [cut for c, p in zip(carriers, persons) for cut in _truncations(dump(c), p)],
        "not_objects.jsonl": [dump([c]) for c in carriers] + [dump(p.email) for p in persons],
        "extra_field_at_end.csv": _csv(header, [r + [p.email] for r, p in zip(rows, persons)]),
        "extra_field_mid_row.csv": _csv(header, [[f"{p.last}, {p.first}", *r] for r, p in zip(rows, persons)]).replace(
            '"', ""
        ),
        "short_row.csv": _csv(header, [r[1:] for r in rows]),
        "broken_quoting.csv": _unclosed_quote(_csv(header, rows)),
        "invalid_values.csv": _csv(header, rows),
    }
    for name, lines in files.items():
        (folder / name).write_text(lines if isinstance(lines, str) else "\n".join(lines) + "\n")
    wrong = pl.DataFrame(carriers, infer_schema_length=None).with_columns(
        pl.Series("note", [f"{p.first} {p.last} {p.email}" for p in persons]),
        *(pl.Series(f.name, [p.number for p in persons]) for f in contract.fields if f.privacy == "pseudonymise"),
        *(
            pl.Series(f.name, [p.birth for p in persons]).str.to_date()
            for f in contract.fields
            if f.type == "date" and f.privacy
        ),
    )
    wrong.write_parquet(folder / "wrong_types.parquet")
    return [*files, "wrong_types.parquet"]


def _leaks(frame: pl.DataFrame, secrets: list[str]) -> dict[str, list[str]]:
    long = [s for s in secrets if len(s) >= 5]
    short = re.compile("|".join(rf"\b{re.escape(s)}\b" for s in secrets if len(s) < 5) or "(?!)")
    found = {}
    for column, dtype in frame.schema.items():
        if dtype != pl.String:
            continue
        values = frame[column].drop_nulls()
        hits = values.filter(values.str.contains_any(long)).to_list() if long else []
        hits += [v for v in values.to_list() if short.search(v)]
        if hits:
            found[column] = hits[:3]
    return found


def test_no_pii_value_survives_any_malformed_path_of_any_feed(small_store, hn_home):
    persons = people(small_store)
    lakehouse = LakehouseResource()
    landed = {feed: land_poison(lakehouse.landing, contract, persons) for feed, contract in FEEDS.items()}
    free_text = FEEDS["clickstream_events"]  # an accepted event whose search query holds an email and phones
    event = {**carrier(free_text, persons[0]), "schema_version": "1", "analytics_consent": "true"}
    event["search_query"] = f"mail {persons[0].email} or call {persons[0].national} / {persons[0].phone}"
    (lakehouse.landing / free_text.name / "poison" / "accepted.jsonl").write_bytes(orjson.dumps(event))

    lake = lakehouse.delta()
    for feed in FEEDS:
        ingest_feed(feed, discover(lakehouse.landing, feed), lake, lakehouse.pseudonymiser())

    quarantine = lake.read(QUARANTINE_TABLE)
    for feed, files in landed.items():
        seen = {Path(f).name for f in quarantine.filter(pl.col("feed") == feed)["source_file"].to_list()}
        assert set(files) <= seen, f"{feed}: paths never quarantined: {set(files) - seen}"
    assert lake.read("bronze_clickstream_events").height == 1, "the free-text event is accepted"
    secrets = sorted({v for p in persons for v in p.values()})
    tables = [*(c.bronze_table for c in FEEDS.values()), QUARANTINE_TABLE]
    leaks = {table: found for table in tables if (found := _leaks(lake.read(table), secrets))}
    assert not leaks, f"PII in bronze: {leaks}"


def test_quarantined_records_keep_the_contract_fields_and_unknown_names(small_store, hn_home):
    """Masking must not destroy what the quarantine is for: which field failed and how."""
    persons = people(small_store)[:3]
    lakehouse = LakehouseResource()
    land_poison(lakehouse.landing, FEEDS["customers"], persons)
    ingest_feed("customers", discover(lakehouse.landing, "customers"), lakehouse.delta(), lakehouse.pseudonymiser())
    quarantine = lakehouse.delta().read(QUARANTINE_TABLE)
    extra = quarantine.filter(pl.col("source_file").str.ends_with("extra_fields.jsonl"))
    record = orjson.loads(extra["raw_record"][0])
    assert record["country"] == "country-1" and record["signup_date"] == "2024-03-01"
    assert record["schema_version"] == "***", "a value that is not of its type could be anything: masked"
    assert record["note"] == record["contact"] == "***"
    assert record["first_name"] == "***" and len(record["customer_id"]) == 24
    assert "[email]" in record, "an unknown field named by an email keeps its name, scrubbed"
    assert extra["reason"][0] == "schema_version: not a valid int"
