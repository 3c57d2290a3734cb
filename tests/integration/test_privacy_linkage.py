"""Visitors without analytics consent cannot be linked across days through any column of any table.

The check is generic: it names no column. Every value of every bronze Delta table (the
quarantine's JSON records opened up into fields) and of every silver/gold table and view, as text,
is a cell of its row, except booleans and floating-point numbers (`MEASURES`): a key is text, a
whole number, a date or a time; two sessions lasting 354.407 s, or two equal prices, are a
coincidence of measurement, not a join (fuzzy matching on measures is what docs/privacy.md, "What
is left", states). A link is what an analyst's join finds:

    a row holding a visitor token ─(a key: any value of that row found only with this visitor)─▶
    any row of any table holding that key ─▶ a value of that row

A value so reached from two different tokens of one visitor, at least one a day token of a visitor
without consent, and from no other visitor, links those days: the customer token of an order
reached through the purchase event's order id (or its timestamp), a user id beside a day token.
A value found with two visitors is shared (a product, a price, a date): it is not followed, and it
links nobody. Who is who comes from the landing files (event id -> raw visitor id), which the
platform never stores. Two joins are followed, enough for a key to reach the record of a person
(an order, a profile, a feature row); a key found with one visitor is what makes any longer chain.

Rejected: checking named columns (`order_id`, `user_id`): the order-id hole was exactly a column
nobody had named. Rejected: following joins to a fixpoint: one shared value reached from one
visitor before the other marks people's own keys as shared, and the check then misses links.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import orjson
import polars as pl
import pytest

from hn_assets.contracts import BRONZE_TABLES, QUARANTINE_TABLE
from hn_assets.defs.resources import LakehouseResource
from hn_assets.settings import get_settings
from hn_assets.simulator import SimulationConfig, simulate
from tests.dbt_helpers import dbt, ingest_everything

pytestmark = pytest.mark.integration

MEASURES = ("BOOLEAN", "DOUBLE", "FLOAT", "REAL", "DECIMAL")  # column types whose equal values join nothing
# Few customers and many sessions: customers buy on several days (here two without consent do).
REPEAT_BUYERS = SimulationConfig(seed=11, days=6, users=30, products=20, sessions_per_day=160, dirty_rate=0.0)


@dataclass
class Links:
    values: pl.DataFrame  # value, tokens, day_tokens, visitor: each value that links days of one visitor
    places: pl.DataFrame  # place (table.column), values: where those values are
    day_tokens: int  # distinct day tokens of visitors without consent linked to another token of theirs
    visitors: int  # visitors so linked

    @property
    def count(self) -> int:
        return self.values.height

    def describe(self) -> str:
        top = self.values.sort("tokens", descending=True).head(3).rows()
        return (
            f"{self.count} linking values ({self.day_tokens} day tokens of {self.visitors} visitors), "
            f"in {self.places.head(12).rows()}; e.g. {top}"
        )


def visitor_truth(landing: Path) -> pl.DataFrame:
    """event_id -> the raw visitor id, from the clickstream landing files (JSON lines)."""
    pairs = {}
    for path in (landing / "clickstream_events").rglob("*.jsonl"):
        for line in path.read_bytes().splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("event_id"), str) and record.get("visitor_id"):
                pairs[record["event_id"]] = str(record["visitor_id"])
    return pl.DataFrame({"event_id": list(pairs), "person": list(pairs.values())})


def _bronze_frames() -> dict[str, pl.DataFrame]:
    lake = LakehouseResource().delta()
    frames = {t: lake.read(t) for t in (*BRONZE_TABLES, QUARANTINE_TABLE) if lake.table(t) is not None}
    quarantine = frames.get(QUARANTINE_TABLE)
    if quarantine is not None and quarantine.height:  # the raw records' fields, as columns of their own
        frames["bronze_quarantine.raw_record"] = _opened_json(quarantine["raw_record"])
    return frames


def _opened_json(records: pl.Series) -> pl.DataFrame:
    rows = []
    for text in records.to_list():
        try:
            record = orjson.loads(text) if text else {}
        except orjson.JSONDecodeError:
            record = {}
        rows.append({k: str(v) for k, v in record.items()} if isinstance(record, dict) else {})
    return pl.DataFrame(rows, infer_schema_length=None)


def _run(con: duckdb.DuckDBPyConnection, sql: str) -> list:
    return con.execute(sql).fetchall()


def _relations(con: duckdb.DuckDBPyConnection, frames: dict[str, pl.DataFrame], warehouse: Path) -> list:
    """(name, relation) of every bronze frame and every silver/gold table and view."""
    relations = []
    for name, frame in frames.items():
        con.register(f"frame_{len(relations)}", frame)
        relations.append((name, f"frame_{len(relations)}"))
    if warehouse.exists():
        _run(con, f"attach '{warehouse}' as wh (read_only)")
        for schema, table in _run(
            con,
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = 'wh' and table_schema in ('silver', 'gold') order by all",
        ):
            relations.append((f"{schema}.{table}", f"wh.{schema}.{table}"))
    return relations


def _load_cells(con: duckdb.DuckDBPyConnection, relations: list) -> None:
    """cells(r, place, v): every non-null value of every relation that can be a key, as text, by row."""
    _run(con, "create table cells (r bigint, place varchar, v varchar)")
    offset = 0
    for name, relation in relations:
        described = _run(con, f"select column_name, column_type from (describe {relation})")
        columns = [c for c, t in described if t.split("(")[0] not in MEASURES]
        if not columns:
            continue
        unpivot = " union all ".join(
            f"select {offset} + rid as r, '{name}.{c}' as place, cast(\"{c}\" as varchar) as v "
            f'from numbered where "{c}" is not null'
            for c in columns
        )
        _run(
            con, f"insert into cells with numbered as (select row_number() over () as rid, * from {relation}) {unpivot}"
        )
        offset += _run(con, f"select count(*) from {relation}")[0][0] + 1


def find_links(landing: Path) -> Links:
    """Every value that joins two different tokens of one visitor, one of them a day token."""
    frames = _bronze_frames()
    seeds = (
        frames["bronze_clickstream_events"]
        .select("event_id", pl.col("visitor_id").alias("tok"), pl.col("analytics_consent").alias("consented"))
        .join(visitor_truth(landing), on="event_id")
        .group_by("tok")
        .agg(pl.col("person").first(), pl.col("consented").all())
    )
    con = duckdb.connect(config={"threads": 2, "memory_limit": "3GB"})
    _run(con, "set TimeZone = 'UTC'")
    _load_cells(con, _relations(con, frames, get_settings().warehouse_path))
    con.register("seed_frame", seeds)
    for sql in _LINK_STEPS:
        _run(con, sql)
    values = con.sql("select * from links").pl()
    places = con.sql("""
        select place, count(distinct v) as values from cells semi join links on cells.v = links.value
        group by place order by values desc, place
    """).pl()
    linked = con.sql("""
        select count(distinct tok), count(distinct person) from reached join seeds using (tok)
        where not consented and v in (select value from links)
    """).fetchall()[0]
    con.close()
    return Links(values, places, int(linked[0]), int(linked[1]))


_LINK_STEPS = (
    "create table seeds as select * from seed_frame",
    # rows holding a token, and the keys among their values: values found with one visitor only
    "create table token_rows as select distinct c.r, s.tok from cells c join seeds s on c.v = s.tok",
    """create table keys as
       select c.v, t.tok from cells c join token_rows t using (r)
       where c.v in (
           select c.v from cells c join token_rows t using (r) join seeds s using (tok)
           group by c.v having count(distinct s.person) = 1
       )
       group by all""",
    # every row holding a key, and every value of those rows, with the tokens that reached it
    "create table key_rows as select distinct c.r, k.tok from cells c join keys k using (v)",
    "create table reached as select distinct c.v, k.tok from cells c join key_rows k using (r)",
    """create table links as
       select r.v as value, count(distinct r.tok) as tokens,
              count(distinct r.tok) filter (where not s.consented) as day_tokens, any_value(s.person) as visitor
       from reached r join seeds s using (tok)
       group by r.v
       having count(distinct s.person) = 1 and count(distinct r.tok) >= 2 and bool_or(not s.consented)""",
)


@pytest.fixture(scope="module")
def repeat_buyers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store whose customers buy on several days, some without analytics consent (the small
    store's 4 days have no such customer: the order-id hole would not show)."""
    out = tmp_path_factory.mktemp("repeat_buyers")
    simulate(REPEAT_BUYERS, out)
    return out


def test_no_column_links_two_days_of_a_visitor_without_consent(repeat_buyers, hn_home, tmp_path):
    shutil.copytree(repeat_buyers / "landing", hn_home / "landing")
    ingest_everything()
    dbt("build", "--exclude-resource-type", "unit_test", target_path=tmp_path / "target")
    links = find_links(repeat_buyers / "landing")
    assert links.count == 0, links.describe()
