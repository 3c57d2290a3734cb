"""`hn erase`: one customer removed from every store (the `erase_customer` job, run in process).

The small simulated store goes through ingest, dbt, Feast (registry, online store, a training set)
and MLflow (a model logged with an input example of training rows). One customer with orders and
sessions is erased; then every store is searched for their token, the tokens of their visitors
(stable and day-salted) and, in raw form, their customer id, visitor ids and order ids: in landing
and archive files, every bronze table's every string column in every Delta version and every data
and log file on disk, the warehouse, the gold exports, the online store's database file, training
sets and MLflow artifacts. A late landing file with their records is then ingested: it adds
nothing. Another customer's data is unchanged.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import polars as pl
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from hn_assets import cli
from hn_assets.defs.resources import FeatureStoreResource, LakehouseResource, WarehouseResource
from hn_assets.features.sources import GOLD_SOURCES
from hn_assets.settings import get_settings
from tests.dbt_helpers import dbt, ingest_everything

pytestmark = pytest.mark.integration
FEATURE_SERVICE = "purchase_intent_v1"


@dataclass
class Person:
    raw_id: str
    visitors: set[str]  # raw visitor ids
    orders: set[str]  # raw order ids
    days: set[str]
    tokens: list[str]  # their pseudonyms: customer, visitors (stable and day-salted)

    @property
    def token(self) -> str:
        return self.tokens[0]

    @property
    def raw(self) -> list[str]:
        return [self.raw_id, *sorted(self.visitors), *sorted(self.orders)]

    @property
    def needles(self) -> list[str]:
        return [*self.tokens, *self.raw]


def _records(landing: Path, feed: str) -> list[dict]:
    records = []
    for path in sorted((landing / feed).rglob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                records.append(orjson.loads(line))
    return records


def _people(landing: Path, pseudonymiser) -> tuple[Person, Person]:
    """Two customers with orders and sessions: the one with the most events without analytics
    consent (bronze holds them under day-salted visitor tokens only: the hardest to find), and the
    one with the most consented events."""
    orders: dict[str, set[str]] = {}
    for order in _records(landing, "orders"):
        if isinstance(order.get("customer_id"), str):
            orders.setdefault(order["customer_id"], set()).add(order["order_id"])
    events = [e for e in _records(landing, "clickstream_events") if isinstance(e.get("visitor_id"), str)]
    visitors: dict[str, set[str]] = {}
    for event in events:
        if event.get("user_id") in orders:
            visitors.setdefault(event["user_id"], set()).add(event["visitor_id"])

    def most(consent: bool) -> str:
        counts = {
            c: sum(e["visitor_id"] in v and e.get("analytics_consent") is consent for e in events)
            for c, v in visitors.items()
        }
        return max(counts, key=counts.get)

    people = []
    for customer in (most(False), most(True)):
        mine = [e for e in events if e["visitor_id"] in visitors[customer]]
        days = {str(e.get("event_timestamp"))[:10] for e in mine}
        days |= {(datetime.fromisoformat(d) + timedelta(days=k)).date().isoformat() for d in days for k in (-1, 1)}
        placed = orders[customer] | {e["order_id"] for e in mine if isinstance(e.get("order_id"), str)}
        tokens = [pseudonymiser.token(customer)]
        tokens += [pseudonymiser.token(v) for v in sorted(visitors[customer])]
        tokens += [pseudonymiser.token(f"{v}|{d}") for v in sorted(visitors[customer]) for d in sorted(days)]
        people.append(Person(customer, visitors[customer], placed, days, tokens))
    assert people[0].raw_id != people[1].raw_id, "the store needs customers with and without consent"
    return people[0], people[1]


def _add_bad_records(landing: Path, person: Person) -> None:
    """Two orders of the person that end in bronze_quarantine: one breaks the contract (negative
    total), one is a truncated line (its masked raw text keeps their token and the order id)."""
    bad = {
        "schema_version": 1,
        "order_id": "O99999991",
        "customer_id": person.raw_id,
        "order_timestamp": "2026-09-02T10:00:00Z",
        "order_channel": "web",
        "payment_type": "card",
        "currency": "EUR",
        "discount_amount": 0,
        "total_amount": -5,
        "source": "web",
    }
    truncated = orjson.dumps({**bad, "order_id": "O99999992", "total_amount": 5})[:80]
    path = sorted((landing / "orders").rglob("*.jsonl"))[0]
    path.write_bytes(path.read_bytes() + orjson.dumps(bad) + b"\n" + truncated + b"\n")
    person.orders |= {"O99999991", "O99999992"}


# ---- building every store ---------------------------------------------------------------------
def _log_model_with_input_example(example: pl.DataFrame, session_keys: list[str]) -> None:
    import mlflow
    import mlflow.pyfunc

    from hn_assets.models.registry import EXPERIMENT, ensure_experiment

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return [0.5] * len(model_input)

    settings = get_settings()
    previous = mlflow.get_tracking_uri()
    ensure_experiment(settings.mlflow_tracking_uri, EXPERIMENT, settings.mlflow_dir / "artifacts")
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    try:
        mlflow.set_experiment(EXPERIMENT)
        with mlflow.start_run():
            mlflow.pyfunc.log_model(
                name="model", python_model=Echo(), input_example=example.to_pandas(), pip_requirements=[]
            )
            mlflow.log_dict({"scored": [{"session_key": k, "p": 0.5} for k in session_keys]}, "debug/scored.json")
    finally:
        mlflow.set_tracking_uri(previous)


def _build_every_store(tmp_path: Path, person: Person) -> tuple[pl.DataFrame, int]:
    """Bronze, silver/gold, the Feast online store, a training set and an MLflow model; returns
    the input example logged with the model and how many of its rows are the person's."""
    from hn_assets.features.store import apply
    from hn_assets.features.training_set import historical_features, save, spine

    ingest_everything()
    dbt("build", "--exclude-resource-type", "unit_test", target_path=tmp_path / "target")
    feature_store = FeatureStoreResource()
    store = feature_store.store()
    apply(store)
    for view in GOLD_SOURCES:
        store.materialize(start_date=datetime(2020, 1, 1, tzinfo=UTC), end_date=datetime.now(UTC), feature_views=[view])
    rows = spine(WarehouseResource().gold_files("fct_session_snapshots"))
    joined = historical_features(store, rows, FEATURE_SERVICE)
    features = [c for c in joined.columns if c not in rows.columns]
    save(joined, feature_store.training_sets("purchase_intent"), FEATURE_SERVICE, features)
    mine = pl.col("session_key").str.contains_any(person.tokens) | pl.col("user_id").is_in(person.tokens)
    theirs = joined.filter(mine.fill_null(False))
    others = joined.filter(~mine.fill_null(False)).head(2)
    example = pl.concat([theirs.head(3), others]).select(features)
    _log_model_with_input_example(example, theirs["session_key"].unique().to_list())
    return example, min(3, theirs.height)


# ---- searching every store ----------------------------------------------------------------------
def _frame_hits(frame: pl.DataFrame, needles: list[str]) -> int:
    text = [c for c, t in frame.schema.items() if t == pl.String]
    if not text or frame.is_empty():
        return 0
    hit = pl.any_horizontal(pl.col(c).str.contains_any(needles).fill_null(False) for c in text)
    return int(frame.select(hit.sum()).item())


def _file_hits(paths, needles: list[str]) -> int:
    """Lines (or, for binary files, files) holding a needle."""
    encoded = [n.encode() for n in needles]
    return sum(sum(any(n in line for n in encoded) for line in p.read_bytes().split(b"\n")) for p in paths)


def _files(root: Path, pattern: str = "*") -> list[Path]:
    return sorted(p for p in root.rglob(pattern) if p.is_file()) if root.exists() else []


def _delta_history_hits(table: Path, needles: list[str]) -> dict[str, int]:
    """Every version that can still be read, every data file and every log file on disk."""
    latest, readable, rows = DeltaTable(str(table)).version(), 0, 0
    for version in range(latest + 1):
        try:
            snapshot = pl.from_arrow(DeltaTable(str(table), version=version).to_pyarrow_table())
        except Exception:  # noqa: BLE001 - a version whose log or files were purged cannot be read: fine
            continue
        readable += 1
        rows += _frame_hits(snapshot, needles)
    data = [p for p in _files(table, "*.parquet") if "_delta_log" not in p.parts]
    log = _files(table / "_delta_log")
    checkpoints = sum(
        any(n in json.dumps(pq.read_table(p).to_pylist(), default=str) for n in needles)
        for p in log
        if p.suffix == ".parquet"
    )
    return {
        "versions_readable": readable,
        "version_rows": rows,
        "data_file_rows": sum(_frame_hits(pl.read_parquet(p), needles) for p in data),
        "log_lines": _file_hits([p for p in log if p.suffix == ".json"], needles) + checkpoints,
    }


def _warehouse_hits(needles: list[str]) -> int:
    with duckdb.connect(str(get_settings().warehouse_path), read_only=True) as con:
        relations = con.execute("select table_schema, table_name from information_schema.tables").fetchall()
        return sum(_frame_hits(con.sql(f'select * from "{s}"."{t}"').pl(), needles) for s, t in relations)


def _online(person: Person) -> dict:
    store = FeatureStoreResource().store()
    values = store.get_online_features(
        features=["user_history:lifetime_purchase_count", "user_history:sessions_last_30d"],
        entity_rows=[{"user_id": person.token}],
    ).to_dict()
    return {k: values[k] for k in ("lifetime_purchase_count", "sessions_last_30d")}


def _online_keys(tokens: list[str]) -> int:
    """Rows of the SQLite online store whose entity key holds one of the tokens."""
    import sqlite3

    from feast.infra.key_encoding_utils import deserialize_entity_key

    path = get_settings().feast_dir / "online_store.db"
    found = 0
    with contextlib.closing(sqlite3.connect(path)) as con:
        for (table,) in con.execute("select name from sqlite_master where type = 'table'").fetchall():
            for (blob,) in con.execute(f'select entity_key from "{table}"'):
                key = deserialize_entity_key(blob, entity_key_serialization_version=3)
                found += any(t in str(v) for v in key.entity_values for t in tokens)
    return found


def _census(person: Person) -> dict[str, int]:
    """What each store holds of the person (rows, lines or files holding one of their keys)."""
    settings, lake = get_settings(), LakehouseResource().delta()
    bronze = {t.name: _frame_hits(lake.read(t.name), person.needles) for t in _files_dirs(lake.root)}
    return {
        "landing": _file_hits(_files(settings.landing_dir), person.raw),
        "archive": _file_hits(_files(settings.archive_dir), person.raw),
        **{f"bronze/{t}": n for t, n in bronze.items()},
        "warehouse": _warehouse_hits(person.needles),
        "gold_exports": sum(_frame_hits(pl.read_parquet(p), person.needles) for p in _files(settings.gold_dir)),
        "online_store": _online_keys(person.tokens),
        "training_sets": sum(
            _frame_hits(pl.read_parquet(p), person.needles) for p in _files(settings.training_sets_dir, "*.parquet")
        ),
        "mlflow_artifacts": _file_hits(_files(settings.mlflow_dir / "artifacts"), person.needles),
    }


def _files_dirs(root: str) -> list[Path]:
    return sorted(p for p in Path(root).iterdir() if (p / "_delta_log").is_dir())


def _input_example_rows() -> list[list]:
    (path,) = [p for p in _files(get_settings().mlflow_dir / "artifacts", "input_example.json")]
    return json.loads(path.read_text())["data"]


# ---- the test -----------------------------------------------------------------------------------
def test_an_erased_customer_is_nowhere_and_stays_erased(landed_store, small_store, tmp_path, capsys):
    home, lakehouse = landed_store, LakehouseResource()
    erased, other = _people(small_store / "landing", lakehouse.pseudonymiser())
    _add_bad_records(home / "landing", erased)
    example, theirs_in_example = _build_every_store(tmp_path, erased)
    assert theirs_in_example > 0
    before, other_before = _census(erased), _census(other)
    for store in ("archive", "bronze/bronze_orders", "bronze/bronze_clickstream_events", "warehouse", "gold_exports"):
        assert before[store] > 0 and other_before[store] > 0, store
    for store in ("bronze/bronze_quarantine", "online_store", "training_sets", "mlflow_artifacts"):
        assert before[store] > 0, store
    other_online = _online(other)
    assert other_online["lifetime_purchase_count"] != [None]
    totals = {t.name: _rows(t) for t in _files_dirs(lakehouse.delta().root)}

    reason = "request 42 from jane.doe@example.com, +49 170 1234567, about " + erased.raw_id
    status = cli.main(["erase", erased.raw_id, "--reason", reason])
    out, err = capsys.readouterr()
    print(out, err)

    # Nothing of them anywhere: current data, history, files on disk.
    after = _census(erased)
    assert after == dict.fromkeys(after, 0), after
    for table in _files_dirs(lakehouse.delta().root):
        history = _delta_history_hits(table, erased.needles)
        assert history["version_rows"] == history["data_file_rows"] == history["log_lines"] == 0, (table.name, history)
        assert DeltaTable(str(table)).protocol().min_reader_version == 1, table.name  # still plain for delta_source
    assert _online(erased) == {"lifetime_purchase_count": [None], "sessions_last_30d": [None]}
    assert _file_hits(_files(get_settings().feast_dir), erased.tokens) == 0  # not even in free pages
    assert len(_input_example_rows()) == example.height - theirs_in_example
    # Their raw ids were never written anywhere under HN_HOME (not by the job, its logs or Dagster).
    assert _file_hits(_files(home), erased.raw) == 0
    assert status == 0 and f"erased customer {erased.token}" in out, err  # the job's own verification agrees

    # Everyone else's data is as it was; bronze lost exactly their rows.
    assert _census(other) == other_before
    assert _online(other) == other_online
    for table, rows in totals.items():
        assert _rows(Path(lakehouse.delta().uri(table))) == rows - before.get(f"bronze/{table}", 0), table

    # The report: per store, the token only, the reason scrubbed.
    (report_dir,) = list((home / "reports" / "erasure").iterdir())
    report = json.loads((report_dir / "erasure.json").read_text())
    assert report["complete"] and report["customer_token"] == erased.token
    text = (report_dir / "erasure.json").read_text() + (report_dir / "erasure.md").read_text()
    assert erased.raw_id not in text and "jane.doe@example.com" not in text and "1234567" not in text
    removed = {s["store"]: s["removed"] for s in report["stores"]}
    print("removed per store:", removed)
    assert removed["bronze"] == sum(v for k, v in before.items() if k.startswith("bronze/"))
    assert all(removed[s] > 0 for s in ("archive", "bronze", "gold_exports", "online_store", "training_sets"))

    # Their files land again (the same files, and a late file with only their records): still nothing.
    _reland(small_store / "landing", home / "landing", erased)
    ingest_everything()
    assert not _files(home / "landing", "*.jsonl")
    lake = lakehouse.delta()
    for table in _files_dirs(lake.root):
        assert _frame_hits(lake.read(table.name), erased.needles) == 0, table.name
        assert _rows(table) == totals.get(table.name, 0) - before.get(f"bronze/{table.name}", 0), table.name


def _rows(table: Path) -> int:
    return pl.read_delta(str(table)).height


def _reland(original: Path, landing: Path, person: Person) -> None:
    """The original files that held the person, and a late file of each feed with their lines."""
    raw = [r.encode() for r in person.raw]
    for path in _files(original):
        lines = [line for line in path.read_bytes().split(b"\n") if any(r in line for r in raw)]
        if not lines:
            continue
        target = landing / path.relative_to(original)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        if path.suffix == ".jsonl":
            (target.parent / f"late_{path.name}").write_bytes(b"\n".join(lines) + b"\n")
