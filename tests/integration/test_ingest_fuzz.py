"""Fuzzing the ingest: valid records of every feed, mutated at random, in every landing format.

After ingest, for every feed: landed = committed (read back from Delta by batch id), every record
written is accounted for (in bronze, in the quarantine row by row, or inside a file quarantined
whole), no exception escaped, and no PII value planted in a record appears anywhere in bronze.
The seed is random per run (HN_FUZZ_SEED repeats one) and printed with every failure.
"""

import csv
import io
import os
import random
import shutil

import orjson
import polars as pl
import pytest

from hn_assets.contracts import FEEDS, PLATFORM_FEEDS, QUARANTINE_TABLE
from hn_assets.defs.resources import LakehouseResource
from hn_assets.ingest.pipeline import ingest_landing
from hn_assets.serving.inference_log import encode, example_record

pytestmark = pytest.mark.integration
SEED = int(os.environ.get("HN_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
RECORDS_PER_FILE = 340  # 11 feeds x 3 formats x 340 = 11,220 records per run
FORMATS = ("jsonl", "csv", "parquet")
JUNK = ("NaN", "1e999", "abc", "-1", "", " ", "null", "true", "2026-02-30", "💥", "Robert'); DROP TABLE x;--")


def _seed_records(store) -> dict[str, list[dict]]:
    """The simulator's records of every feed (some already dirty: the mutations come on top)."""
    records: dict[str, list[dict]] = {feed: [] for feed in FEEDS}
    for path in sorted((store / "landing").rglob("*.*")):
        feed = path.relative_to(store / "landing").parts[0]
        if path.suffix == ".jsonl":
            records[feed] += [r for r in map(_object, path.read_bytes().splitlines()) if r is not None]
        elif path.suffix == ".csv":
            records[feed] += list(csv.DictReader(io.StringIO(path.read_text())))
    for feed in PLATFORM_FEEDS:  # the simulator lands none: the service's records, as it lands them
        assert feed == "inference_log", f"seed records for {feed}"
        records[feed] = [
            orjson.loads(encode(example_record(request_id=f"r{i}", visitor_id=f"v{i % 9}"))) for i in range(50)
        ]
    return records


def _object(line: bytes) -> dict | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:  # the simulator's own dirt: truncated lines
        return None
    return record if isinstance(record, dict) else None


def _pii(records: dict[str, list[dict]]) -> list[str]:
    """Real PII of the simulated customers: names, emails, phones, addresses, birth dates."""
    fields = ("first_name", "last_name", "email", "phone", "birth_date", "shipping_email", "shipping_address")
    values = {str(r[f]) for rs in records.values() for r in rs for f in fields if r.get(f) and len(str(r[f])) >= 6}
    return sorted(values)


def _mutate(record: dict, feed: str, rng: random.Random, pii: list[str], seen_ids: list) -> dict:
    contract, out = FEEDS[feed], dict(record)
    names = list(contract.field_names)
    for _ in range(rng.randint(0, 3)):
        kind, name = (
            rng.choice(
                ("type", "missing", "unknown", "huge", "control", "time", "currency", "dup", "pii_field", "pii_text")
            ),
            rng.choice(names),
        )
        if kind == "type":
            out[name] = rng.choice([*JUNK, 12345, 1.5, True, [1, 2], {"nested": 1}])
        elif kind == "missing":
            out.pop(name, None)
        elif kind == "unknown":
            out[f"extra_{rng.randint(0, 9)}"] = rng.choice(pii)
        elif kind == "huge" and rng.random() < 0.05:
            out[name] = "x" * 20_000
        elif kind == "control":
            out[name] = f"{out.get(name, '')}\x07\t\r\n\x1b[31m"
        elif kind == "time":
            field = next((f.name for f in contract.fields if f.type in ("timestamp", "date")), name)
            out[field] = rng.choice(
                (
                    "2026-13-45T99:00:00Z",
                    "yesterday",
                    "2099-01-01T00:00:00Z",
                    "1970-01-01",
                    "2026-09-01 10:00:00+05:00",
                    "1e10",
                )
            )
        elif kind == "currency" and "currency" in names:
            out["currency"] = rng.choice(("XXX", "eur", "€", "US$"))
        elif kind == "dup" and seen_ids:
            out[names[1]] = rng.choice(seen_ids)
        elif kind == "pii_field":
            pii_fields = [f.name for f in contract.fields if f.privacy in ("drop", "pseudonymise")]
            if pii_fields:
                out[rng.choice(pii_fields)] = rng.choice([*pii, 42, ["a"]])
        elif kind == "pii_text" and "search_query" in names:  # free text is scrubbed of emails and phones
            out["search_query"] = f"laptop for {rng.choice([v for v in pii if '@' in v or v[:1] in '+0('])} please"
    seen_ids.append(out.get(names[1]))
    return out


def _text(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _write(folder, name: str, fmt: str, records: list[dict]) -> None:
    columns = sorted({k for r in records for k in r})
    path = folder / f"{name}.{fmt}"
    if fmt == "jsonl":
        path.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n")
    elif fmt == "csv":
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows({k: _text(v) for k, v in r.items()} for r in records)
    else:  # Parquet: every column as text, as the adapters land it
        pl.DataFrame(
            [{c: _text(r.get(c)) for c in columns} for r in records], schema={c: pl.String for c in columns}
        ).write_parquet(path)


def _bronze_text(lakehouse: LakehouseResource) -> list[pl.Series]:
    lake = lakehouse.delta()
    frames = [lake.read(t) for t in [*(c.bronze_table for c in FEEDS.values()), QUARANTINE_TABLE] if lake.table(t)]
    return [s for f in frames for s in f.iter_columns() if s.dtype == pl.String]


def test_fuzzed_records_in_every_format_are_all_accounted_for_and_leak_no_pii(small_store, hn_home):
    rng = random.Random(SEED)
    note = f"(HN_FUZZ_SEED={SEED})"
    print(f"fuzz seed {SEED}")
    seeds = _seed_records(small_store)
    pii = _pii(seeds)
    lakehouse, written = LakehouseResource(), {}
    for feed, records in seeds.items():
        folder = lakehouse.landing / feed
        folder.mkdir(parents=True, exist_ok=True)
        seen: list = []
        for fmt in FORMATS:
            batch = [_mutate(rng.choice(records), feed, rng, pii, seen) for _ in range(RECORDS_PER_FILE)]
            _write(folder, f"fuzz_{fmt}", fmt, batch)
            written[(feed, f"{feed}/fuzz_{fmt}.{fmt}")] = len(batch)
    assert sum(written.values()) >= 10_000

    reports = {r.feed: r for r in ingest_landing(lakehouse)}

    lake = lakehouse.delta()
    quarantine = lake.read(QUARANTINE_TABLE)
    for feed, report in reports.items():
        assert report.error is None, f"{feed}: {report.error} {note}"
        assert report.landed == report.committed, (
            f"{feed}: landed {report.landed} != committed {report.committed} {note}"
        )
        whole = sum(n for (f, file), n in written.items() if f == feed and file in report.files_quarantined)
        rows = quarantine.filter((pl.col("feed") == feed) & pl.col("line_number").is_not_null()).height
        bronze = lake.stats(FEEDS[feed].bronze_table)["rows"]
        expected = sum(n for (f, _), n in written.items() if f == feed)
        assert bronze + rows + whole == expected, f"{feed}: {bronze} + {rows} + {whole} != {expected} {note}"
    suspects = [s for s in _bronze_text(lakehouse) if s.str.contains_any(pii).any()]
    leaked = [v for series in suspects for v in pii if series.str.contains(v, literal=True).any()]
    assert not leaked, f"PII in bronze: {leaked[:5]} {note}"
    total_quarantined = quarantine.height
    print(
        f"fuzz: {sum(written.values())} records, {sum(lake.stats(FEEDS[f].bronze_table)['rows'] for f in FEEDS)} "
        f"committed to bronze, {total_quarantined} quarantine rows, "
        f"{sum(len(r.files_quarantined) for r in reports.values())} files quarantined whole {note}"
    )
    shutil.rmtree(lakehouse.landing, ignore_errors=True)
