"""A run with another pseudonym key than the one that made the lake's tokens fails before writing."""

import shutil

import pytest

from hn_assets.contracts import BRONZE_TABLES
from hn_assets.defs.resources import LakehouseResource
from hn_assets.settings import get_settings
from tests.dbt_helpers import ingest_everything

pytestmark = pytest.mark.integration


def _rows() -> dict[str, int]:
    lake = LakehouseResource().delta()
    return {t: lake.stats(t)["rows"] for t in BRONZE_TABLES}


def _land(small_store, hn_home, day: str) -> None:
    for path in (small_store / "landing").rglob(f"dt={day}/*"):
        target = hn_home / "landing" / path.relative_to(small_store / "landing")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)


def test_another_key_fails_with_one_clear_message_and_writes_nothing(small_store, hn_home, monkeypatch):
    days = sorted({p.parent.name.removeprefix("dt=") for p in (small_store / "landing").rglob("dt=*/*")})
    monkeypatch.setenv("HN_PSEUDONYM_KEY", "the-key-that-made-the-tokens")
    _land(small_store, hn_home, days[0])
    ingest_everything()
    before = _rows()
    assert before["bronze_clickstream_events"] > 0

    _land(small_store, hn_home, days[1])
    monkeypatch.setenv("HN_PSEUDONYM_KEY", "a-rotated-key")
    with pytest.raises(RuntimeError) as failure:
        ingest_everything()
    message = str(failure.value)
    assert "HN_PSEUDONYM_KEY" in message and "fingerprint" in message and "\n" not in message
    assert "a-rotated-key" not in message and "the-key-that-made-the-tokens" not in message
    assert _rows() == before, "nothing may be written with the other key"
    assert list((hn_home / "landing").rglob(f"dt={days[1]}/*")), "the files stay in landing for the right key"

    monkeypatch.setenv("HN_PSEUDONYM_KEY", "the-key-that-made-the-tokens")
    ingest_everything()
    assert _rows()["bronze_clickstream_events"] > before["bronze_clickstream_events"]


def test_a_lost_generated_key_is_not_silently_replaced(landed_store):
    """The fingerprint lives beside bronze, not beside the key: losing secrets/ must not go unnoticed."""
    ingest_everything()
    shutil.rmtree(landed_store / "secrets")
    with pytest.raises(RuntimeError, match="fingerprint"):
        _ = get_settings().pseudonym_key


def test_the_fingerprint_names_the_key_without_revealing_it(hn_home, monkeypatch):
    from hn_assets.ingest.privacy import Pseudonymiser, key_fingerprint

    monkeypatch.setenv("HN_PSEUDONYM_KEY", "k1")
    key = get_settings().pseudonym_key
    recorded = "".join(p.read_text() for p in (hn_home / "lake" / "bronze").glob("*fingerprint*"))
    assert key_fingerprint(key) in recorded and "k1" not in recorded
    assert key_fingerprint(b"k1") != key_fingerprint(b"k2")
    assert key_fingerprint(b"k1") not in Pseudonymiser(b"k1").token("")  # not a token of any id
