import orjson
import polars as pl

from hn_assets.contracts import FEEDS
from hn_assets.ingest.privacy import Pseudonymiser, apply_privacy, mask_raw, scrub_text


def test_tokens_are_keyed_and_stable():
    a, b = Pseudonymiser(b"key-a"), Pseudonymiser(b"key-b")
    assert a.token("C0000001") == a.token("C0000001") != b.token("C0000001")
    assert "C0000001" not in a.token("C0000001")


def test_quarantined_raw_records_lose_their_pii_even_when_malformed():
    raw = (
        '{"schema_version":1,"customer_id":"C0000042","first_name":"Anna","last_name":"Müller",'
        '"email":"anna.mueller@example.com","phone":"+49 170 1234567","birth_da'
    )
    masked = mask_raw(raw, FEEDS["customers"], Pseudonymiser(b"k"))
    for secret in ("C0000042", "Anna", "Müller", "anna.mueller", "+49 170"):
        assert secret not in masked
    assert '"schema_version":"1"' in masked  # kept, as text (landing fields are text)


def test_free_text_is_scrubbed():
    out = pl.select(scrub_text(pl.lit("call +44 20 7946 0958 or mail me@x.org about rtx 4070"))).item()
    assert out == "call [number] or mail [email] about rtx 4070"


def test_columns_are_replaced_by_tokens_hashing_each_id_once_across_columns_and_batches():
    class Counting(Pseudonymiser):
        hashed: list[str] = []

        def token(self, value: str) -> str:
            self.hashed.append(value)
            return super().token(value)

    p = Counting(b"k")
    first = p.replace(
        pl.DataFrame({"user_id": ["u1", None, "u2"], "visitor_id": ["u1", "v9", "u2"]}), ["user_id", "visitor_id"]
    )
    second = p.replace(pl.DataFrame({"user_id": ["u2", "u3"], "visitor_id": ["v9", "u3"]}), ["user_id", "visitor_id"])
    assert first["user_id"].to_list() == [p.token("u1"), None, p.token("u2")]
    assert first["visitor_id"].to_list() == [p.token("u1"), p.token("v9"), p.token("u2")]
    assert second.rows() == [(p.token("u2"), p.token("v9")), (p.token("u3"), p.token("u3"))]
    assert sorted(p.hashed[:4]) == ["u1", "u2", "u3", "v9"]  # before the assertions' own calls


def test_every_id_and_time_of_a_feed_with_consent_declares_what_happens_without_it():
    """The unlinking is driven by the contract: a new id-like field nobody thought about fails here."""
    for contract in FEEDS.values():
        if contract.consent_field is None:
            continue
        undeclared = [
            f.name
            for f in contract.fields
            if (f.name.endswith("_id") or f.type in ("timestamp", "date")) and f.without_consent is None
        ]
        assert not undeclared, f"{contract.name}: say what happens to {undeclared} without consent"


def _events(**columns) -> pl.DataFrame:
    contract = FEEDS["clickstream_events"]
    dtypes = {"string": pl.String, "int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean, "date": pl.Date}
    n = len(next(iter(columns.values())))
    frame = pl.DataFrame(
        {f.name: [None] * n for f in contract.fields},
        schema={f.name: dtypes.get(f.type, pl.Datetime("us", "UTC")) for f in contract.fields},
    )
    return frame.with_columns(pl.Series(k, v, frame.schema[k]) for k, v in columns.items())


def test_without_consent_days_keep_their_gaps_and_lose_every_key():
    from datetime import UTC, datetime, timedelta

    at = [datetime(2026, 9, 1, 10, tzinfo=UTC) + timedelta(minutes=m) for m in (0, 7, 60 * 24, 0)]
    events = _events(
        visitor_id=["v1", "v1", "v1", "v2"],
        analytics_consent=[False, False, False, True],
        event_timestamp=at,
        user_id=["c1", "c1", "c1", "c2"],
        client_session_id=["s1", "s1", "s2", "s3"],
        order_id=["o1", None, "o2", "o3"],
        event_id=["e1", "e2", "e3", "e4"],
    )
    p = Pseudonymiser(b"k")
    out = apply_privacy(events, FEEDS["clickstream_events"], p)
    anonymous, consented = out.head(3), out.tail(1)
    assert anonymous["visitor_id"].n_unique() == 2, "one token per day"
    assert anonymous.select("user_id", "client_session_id", "order_id").null_count().row(0) == (3, 3, 3)
    moved = anonymous["event_timestamp"] - pl.Series(at[:3])
    assert moved[0] == moved[1] and timedelta(0) < abs(moved[0]) <= timedelta(minutes=15), "a day moves as one"
    assert moved[2] != moved[0], "another day moves by another offset"
    assert consented["event_timestamp"][0] == at[3] and consented["order_id"][0] == "o3"
    assert consented["user_id"][0] == p.token("c2") and consented["visitor_id"][0] == p.token("v2")
    assert out["event_id"].to_list() == ["e1", "e2", "e3", "e4"]


def test_national_phone_numbers_are_scrubbed_and_ids_and_times_are_not():
    texts = ["ruf 0170 1234567 an", "(030) 123-4567", "06 12 34 56 78", "e00000012345 at 2026-09-01T10:00:00Z"]
    scrubbed = pl.DataFrame({"t": texts}).select(scrub_text(pl.col("t")))["t"].to_list()
    assert scrubbed == ["ruf [number] an", "([number]", "[number]", texts[3]]
    reason = "event_timestamp: before 2020-01-01; phone 0170-12-34-567"
    assert pl.select(scrub_text(pl.lit(reason))).item() == "event_timestamp: before 2020-01-01; phone [number]"


def test_a_quarantined_record_of_a_visitor_without_consent_keeps_no_stable_key():
    p = Pseudonymiser(b"k")
    raw = (
        '{"event_id":"e1","event_timestamp":"2026-09-01T10:00:00Z","visitor_id":"v-1","user_id":"C1",'
        '"analytics_consent":false,"order_id":"O1","client_session_id":"cs-1","event_type":"hover"}'
    )
    record = orjson.loads(mask_raw(raw, FEEDS["clickstream_events"], p))
    assert record["visitor_id"] == p.token("v-1|2026-09-01") != p.token("v-1"), "the bronze day token"
    assert record["user_id"] == record["order_id"] == record["client_session_id"] == "***"
    assert record["event_timestamp"] == "***" and record["event_type"] == "***"
