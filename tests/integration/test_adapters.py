"""Public event logs through the adapters, landing and bronze."""

import polars as pl
import pytest

from hn_assets.adapters import land_rees46, land_retailrocket
from hn_assets.defs.resources import LakehouseResource
from hn_assets.ingest.landing import discover
from hn_assets.ingest.pipeline import ingest_feed

pytestmark = pytest.mark.integration

RETAILROCKET = """timestamp,visitorid,event,itemid,transactionid
1433221332117,257597,view,355908,
1433224214164,992329,view,248676,
1433221999827,111016,addtocart,297662,
1433222276276,483717,transaction,253185,4000
1433221955914,951259,view,367447,
yesterday,1,view,5,
1433221955999,,view,6,
1433221955999,7,hover,8,
"""


def _ingest(lakehouse):
    return ingest_feed(
        "clickstream_events",
        discover(lakehouse.landing, "clickstream_events"),
        lakehouse.delta(),
        lakehouse.pseudonymiser(),
    )


def test_rees46_sample_lands_and_its_truncated_row_is_quarantined(hn_home, rees46_sample):
    lakehouse = LakehouseResource()
    result = land_rees46(rees46_sample, lakehouse.landing)
    assert result.rows == 17_435 and result.flagged == 1
    report = _ingest(lakehouse)
    assert (report.accepted, report.quarantined) == (17_434, 1)
    bronze = lakehouse.delta().read("bronze_clickstream_events")
    assert set(bronze["event_type"].unique()) == {"product_view", "add_to_cart", "purchase"}
    assert set(bronze["source"].unique()) == {"rees46"}
    quarantine = lakehouse.delta().read("bronze_quarantine")
    assert quarantine["reason"].item() == "source: rees46 row incomplete (missing user_session)"


def test_retailrocket_format_maps_and_quarantines_broken_rows(hn_home, tmp_path):
    source = tmp_path / "events.csv"
    source.write_text(RETAILROCKET)
    lakehouse = LakehouseResource()
    land_retailrocket(source, lakehouse.landing, timezone="Europe/Moscow")
    report = _ingest(lakehouse)
    assert (report.landed, report.accepted, report.quarantined) == (8, 5, 3)
    bronze = lakehouse.delta().read("bronze_clickstream_events").sort("event_timestamp")
    assert bronze["event_type"].to_list().count("add_to_cart") == 1
    purchase = bronze.filter(pl.col("event_type") == "purchase")
    assert purchase["order_id"].item() == "4000" and purchase["timezone"].item() == "Europe/Moscow"
    reasons = sorted(lakehouse.delta().read("bronze_quarantine")["reason"].to_list())
    assert reasons == [
        "event_timestamp: not a valid timestamp",
        "event_type: 'hover' not allowed",
        "visitor_id: required; source: retailrocket row incomplete (missing visitorid)",
    ]


def test_a_file_of_another_format_is_refused_clearly(hn_home, rees46_sample):
    lakehouse = LakehouseResource()
    with pytest.raises(ValueError, match="not a RetailRocket file"):
        land_retailrocket(rees46_sample, lakehouse.landing)
