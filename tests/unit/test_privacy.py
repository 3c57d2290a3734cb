import polars as pl

from hn_assets.contracts import FEEDS
from hn_assets.ingest.privacy import Pseudonymiser, mask_raw, scrub_text


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
    assert '"schema_version":1' in masked


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
