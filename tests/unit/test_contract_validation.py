import polars as pl

from hn_assets.contracts import FEEDS
from hn_assets.ingest.landing import LINE_COL, PARSE_ERROR_COL, RAW_COL
from hn_assets.ingest.validate import REASON_COL, check

CONTRACT = FEEDS["exchange_rates"]


def _frame(rows: list[dict]) -> pl.DataFrame:
    cols = {n: [r.get(n) for r in rows] for n in CONTRACT.field_names}
    cols.update(
        {
            LINE_COL: list(range(1, len(rows) + 1)),
            RAW_COL: [None] * len(rows),
            PARSE_ERROR_COL: [r.get("_error") for r in rows],
        }
    )
    return pl.DataFrame(
        cols,
        schema={
            **{n: pl.String for n in CONTRACT.field_names},
            LINE_COL: pl.Int64,
            RAW_COL: pl.String,
            PARSE_ERROR_COL: pl.String,
        },
    )


def test_each_violation_gets_its_reason():
    good = {"schema_version": "1", "date": "2026-09-01", "currency": "USD", "rate_to_eur": "0.91"}
    rows = [
        good,
        {**good, "rate_to_eur": "12,5"},  # bad type
        {**good, "currency": "XXX"},  # not allowed
        {**good, "rate_to_eur": "-1"},  # below minimum
        {**good, "date": None},  # missing required
        {**good, "schema_version": "9"},  # from the future
        {**good, "_error": "malformed JSON: x"},  # unreadable line
    ]
    accepted, rejected = check(_frame(rows), CONTRACT)
    assert accepted.height == 1
    assert accepted.schema["rate_to_eur"] == pl.Float64 and accepted.schema["date"] == pl.Date
    reasons = rejected.sort(LINE_COL)[REASON_COL].to_list()
    assert reasons == [
        "rate_to_eur: not a valid float",
        "currency: 'XXX' not allowed",
        "rate_to_eur: below 0",
        "date: required",
        "schema_version newer than 1",
        "malformed JSON: x",
    ]


def test_timestamps_accept_iso_offsets_and_rees46_style():
    contract = FEEDS["clickstream_events"]
    from hn_assets.ingest.validate import typed

    frame = pl.DataFrame(
        {
            "event_timestamp": [
                "2026-09-01T12:00:00+02:00",
                "2019-10-01 00:00:00 UTC",
                "2026-09-01T10:00:00.250Z",
                "yesterday",
            ]
        }
    )
    field = contract.field("event_timestamp")
    canonical = frame.select(typed(field)).to_series().to_list()
    assert [v is not None for v in canonical] == [False, False, True, False]  # the fast path: canonical form
    values = frame.select(typed(field, lenient=True)).to_series().to_list()
    assert [v.isoformat() if v else None for v in values] == [
        "2026-09-01T10:00:00+00:00",
        "2019-10-01T00:00:00+00:00",
        "2026-09-01T10:00:00.250000+00:00",
        None,
    ]
