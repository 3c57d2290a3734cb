"""The scoring service against a real running `bentoml serve` (2 workers) on one built store.

One small simulated store is built once (simulate + the `end_to_end` job in process; the
champion alias is set on the newest version if the gate rejected it: promotion is not under test
here), the champion is imported into the BentoML store, and two servers are started as
subprocesses on free ports: the main one, and one with the API key on and no model (401, the
model-missing fallback, /readyz 503). Servers are stopped by their PID.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hn_assets.simulator import SimulationConfig, simulate
from tests.conftest import environment

REPO = Path(__file__).resolve().parents[2]
# Small on purpose (CI budget): enough sessions for a champion, a last day to replay and known customers.
STORE = SimulationConfig(seed=5, days=9, users=300, products=20, sessions_per_day=150, dirty_rate=0.0)
# Only what serving needs: the data layers (online features, gold, the training set) and the
# challenger with its uplift model; no evaluation, report, Bento build or smoke check.
SERVING_ASSETS = ("purchase_intent_model", "discount_uplift_model")
SERVICE = "bentos.purchase_intent.service:PurchaseIntent"
API_KEY = "test-key-123"
READY_TIMEOUT = 420


# ---- the store and the servers ---------------------------------------------------------------
@pytest.fixture(scope="session")
def serving_home(tmp_path_factory):
    import dagster as dg

    # HN_TEST_SERVING_HOME: reuse a store this fixture built before (local iteration only).
    reuse = os.environ.get("HN_TEST_SERVING_HOME")
    home = Path(reuse) if reuse else tmp_path_factory.mktemp("serving") / "hn"
    env = {"HN_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), "BENTOML_HOME": str(home / "bentoml")}
    with environment(**env, HN_PSEUDONYM_KEY=None):
        from hn_assets.definitions import defs
        from hn_assets.defs.automation import DATA_LAYERS
        from hn_assets.defs.resources import ModelRegistryResource
        from hn_assets.serving.bento import import_champion

        started = time.monotonic()
        if reuse and (home / "bentoml" / "models").exists():
            yield home, import_champion()
            return
        simulate(STORE, home)
        job = dg.define_asset_job("serving_store", selection=DATA_LAYERS | dg.AssetSelection.assets(*SERVING_ASSETS))
        with dg.instance_for_test() as instance:
            result = (
                dg.Definitions.merge(defs(), dg.Definitions(jobs=[job]))
                .resolve_job_def("serving_store")
                .execute_in_process(instance=instance, raise_on_error=False)
            )
        assert result.success, [e.message for e in result.all_events if e.is_failure][:3]
        registry = ModelRegistryResource().registry()
        versions = registry.client().search_model_versions(f"name='{registry.name}'")
        assert versions, "no model was registered"
        registry.set_alias("champion", str(max(int(v.version) for v in versions)))  # promotion is not under test
        tag = import_champion()
        print(f"store built in {time.monotonic() - started:.0f} s")
        yield home, tag


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, home: Path, port: int, **env):
        self.port, self.home = port, home
        full = {
            **os.environ,
            "HN_HOME": str(home),
            "BENTOML_HOME": str(home / "bentoml"),
            "BENTOML_DO_NOT_TRACK": "True",
            "HN_SERVING_WORKERS": "2",
            **env,
        }
        # Background processes start with SIGINT ignored (STACK_NOTES): restore it before exec.
        wrapper = (
            "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
        )
        self.log = open(home.parent / f"serve-{port}.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                wrapper,
                str(Path(sys.executable).parent / "bentoml"),
                "serve",
                SERVICE,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=REPO,
            env=full,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.started = time.monotonic()
        self.ready_after = None

    def wait(self, path: str = "/livez", status: int = 200) -> float:
        deadline = self.started + READY_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.home.parent / f"serve-{self.port}.log").read_text()[-3000:]
            try:
                if request(self.port, "GET", path)[0] == status:
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{path} not {status} after {READY_TIMEOUT} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()


def request(port: int, method: str, path: str, body=None, headers=None) -> tuple[int, dict | str]:
    """One request on a new connection (so either worker may answer)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
        conn.request(method, path, data, {"content-type": "application/json", **(headers or {})})
        response = conn.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode(errors="replace")
    finally:
        conn.close()


@pytest.fixture(scope="session")
def servers(serving_home):
    home, _ = serving_home
    main = Server(home, _free_port(), HN_SERVING_MODEL_POLL_SECONDS="1")
    locked = Server(
        home,
        _free_port(),
        HN_SERVING_API_KEY=API_KEY,
        HN_SERVING_MODEL_TAG="purchase_intent:missing",
        HN_SERVING_WORKERS="1",
        HN_SERVING_SESSIONS_DB=str(home / "serving" / "locked-sessions.db"),
    )
    try:
        locked_readyz_before = None
        locked.wait("/livez")
        locked_readyz_before = request(locked.port, "GET", "/readyz")[0]
        main.ready_after = main.wait("/readyz")
        yield {"main": main, "locked": locked, "locked_readyz": locked_readyz_before}
    finally:
        main.stop()
        locked.stop()


def score_body(visitor: str, user: str | None = None, analytics=True, personalisation=True, **extra) -> dict:
    return {
        "visitor_id": visitor,
        "user_id": user,
        "consent": {"analytics": analytics, "personalisation": personalisation},
        "context": {"device": "mobile"},
        **extra,
    }


def event(visitor: str, kind: str, at: datetime, product: str | None = "P00001", **extra) -> dict:
    return {
        "event_id": uuid.uuid4().hex,
        "event_type": kind,
        "event_timestamp": at.isoformat().replace("+00:00", "Z"),
        "visitor_id": visitor,
        "analytics_consent": True,
        "product_id": product,
        "device": "mobile",
        "channel": "direct",
        "country": "DE",
        "timezone": "Europe/Berlin",
        "source": "web",
        **extra,
    }


def inference_records(home: Path) -> dict[str, dict]:
    folder = home / "landing" / "inference_log"
    out = {}
    for path in folder.glob("*"):
        if ".jsonl" in path.name:
            for line in path.read_bytes().splitlines():
                if line.strip():
                    record = json.loads(line)
                    out[record["request_id"]] = record
    return out


# ---- tests --------------------------------------------------------------------------------------
def test_readyz_and_a_valid_score(servers):
    port = servers["main"].port
    assert request(port, "GET", "/readyz")[0] == 200
    status, answer = request(port, "POST", "/score", score_body("V-readyz-1"))
    assert status == 200, answer
    assert answer["fallback"] is False and answer["model_version"]
    assert 0.0 <= answer["probability"] <= 1.0 and answer["new_session"] is True
    assert len(answer["reasons"]) == 3 and answer["decision"]["reason"].split(":")[0] in ("policy", "no uplift model")
    print(f"start-up to ready: {servers['main'].ready_after:.1f} s")


def test_score_reflects_events_posted_to_any_worker(servers):
    port = servers["main"].port
    visitor, now = f"V-cart-{uuid.uuid4().hex[:6]}", datetime.now(UTC) - timedelta(minutes=2)
    for i, kind in enumerate(("page_view", "product_view")):
        assert request(port, "POST", "/events", event(visitor, kind, now + timedelta(seconds=i)))[0] == 200
    before = {request(port, "POST", "/score", score_body(visitor))[1]["probability"] for _ in range(6)}
    assert len(before) <= 2  # request-time seconds_since_start may move it slightly
    status, result = request(port, "POST", "/events", [event(visitor, "add_to_cart", now + timedelta(seconds=5))])
    assert status == 200 and result["snapshots_pushed"] == 1
    # Every answer, over new connections spread over both workers, sees the cart add.
    ids = [uuid.uuid4().hex for _ in range(20)]
    answers = [request(port, "POST", "/score", score_body(visitor, request_id=r))[1] for r in ids]
    time.sleep(0.2)
    logged = inference_records(servers["main"].home)
    for r in ids:
        assert logged[r]["features"] and json.loads(logged[r]["features"])["cart_adds_so_far"] == 1
    assert all(a["session_key"] == answers[0]["session_key"] and not a["new_session"] for a in answers)
    assert all(a["probability"] not in before for a in answers)


def test_422_names_the_field(servers):
    port = servers["main"].port
    status, body = request(port, "POST", "/score", {"visitor_id": "V", "consent": {"analytics": "maybe"}})
    assert status == 422
    fields = {d["field"] for d in body["detail"]}
    assert {"consent.analytics", "consent.personalisation"} <= fields
    bad = event("V", "teleport", datetime.now(UTC))
    status, body = request(port, "POST", "/events", bad)
    assert status == 422 and body["detail"][0]["field"] == "events.0.event_type"
    assert request(port, "POST", "/score", b"{not json")[0] == 422


def test_413_for_a_large_body_or_batch(servers):
    port = servers["main"].port
    status, _ = request(port, "POST", "/score", b'{"visitor_id": "' + b"x" * 300_000 + b'"}')
    assert status == 413
    many = [event("V-many", "page_view", datetime.now(UTC)) for _ in range(501)]
    status, body = request(port, "POST", "/events", {"events": many})
    assert status == 413, body
    assert request(port, "GET", "/readyz")[0] == 200  # the workers are fine


def test_401_without_the_key_and_fallback_without_a_model(servers):
    port = servers["locked"].port
    assert servers["locked_readyz"] == 503  # not ready: no model
    assert request(port, "POST", "/score", score_body("V-key"))[0] == 401
    assert request(port, "POST", "/score", score_body("V-key"), {"X-API-Key": "wrong"})[0] == 401
    status, answer = request(port, "POST", "/score", score_body("V-key"), {"X-API-Key": API_KEY})
    assert status == 200 and answer["fallback"] is True and "model" in answer["fallback_reason"]
    assert 0 < answer["probability"] < 1 and answer["decision"]["offer_discount"] is False
    assert request(port, "GET", "/readyz")[0] == 503


def test_personalisation_consent_is_respected(servers, serving_home):
    home, _ = serving_home
    users = pl.read_parquet(home / "lake" / "gold" / "user_features" / "*.parquet")
    customer_token = users.filter(pl.col("lifetime_purchase_count") > 0)["user_id"][0]
    # The raw id of that token: the simulator's customers, hashed with the store's key.
    from hn_assets.ingest.privacy import Pseudonymiser
    from hn_assets.settings import get_settings

    key = get_settings().pseudonym_key
    p = Pseudonymiser(key)
    raw = [f"C{i:07d}" for i in range(1, 5000)]
    raw_id = next((r for r in raw if p.token(r) == customer_token), None)
    assert raw_id is not None, "customer id format changed"
    port = servers["main"].port
    rid_yes, rid_no = uuid.uuid4().hex, uuid.uuid4().hex
    yes = request(port, "POST", "/score", score_body("V-p1", raw_id, request_id=rid_yes))[1]
    no = request(port, "POST", "/score", score_body("V-p2", raw_id, personalisation=False, request_id=rid_no))[1]
    assert yes["personalised"] is True and "user_history" in yes["feature_groups"]
    assert no["personalised"] is False and "user_history" not in no["feature_groups"]
    time.sleep(0.2)
    logged = inference_records(home)
    assert json.loads(logged[rid_yes]["features"])["lifetime_purchase_count"] > 0
    assert json.loads(logged[rid_no]["features"])["lifetime_purchase_count"] is None


def test_lean_online_read_equals_the_sdk_before_and_after_a_push(serving_home):
    home, _ = serving_home
    from hn_assets.defs.resources import FeatureStoreResource
    from hn_assets.features.store import PROJECT
    from hn_assets.serving.online import JOIN_KEYS, LeanOnlineReader, SdkOnlineReader, SessionPusher

    store = FeatureStoreResource().store()
    lean, sdk = LeanOnlineReader(home / "feast" / "online_store.db", PROJECT), SdkOnlineReader(store)
    gold = home / "lake" / "gold"
    keys = {
        "user_history": pl.read_parquet(gold / "user_features" / "*.parquet")["user_id"].unique().head(20).to_list(),
        "product_signals": pl.read_parquet(gold / "product_features" / "*.parquet")["product_id"].unique().to_list(),
        "session_activity": pl.read_parquet(gold / "fct_session_snapshots" / "*.parquet")["session_key"]
        .unique()
        .tail(20)
        .to_list()
        + ["nobody#1"],
    }
    for view, values in keys.items():
        for value in values:
            assert lean.read(view, value)[0] == sdk.read(view, value)[0], (view, value)
    snap = {
        "session_key": "pushed#1",
        "as_of": datetime.now(UTC),
        "events_so_far": 3,
        "cart_adds_so_far": 1,
        "seconds_since_start": 12.5,
        "is_weekend": False,
        "device": "tablet",
        "channel": "email",
        "local_hour": 4,
    }
    SessionPusher(store).push([snap])
    got = lean.read("session_activity", "pushed#1")[0]
    assert got == sdk.read("session_activity", "pushed#1")[0]
    assert got["cart_adds_so_far"] == 1 and got["device"] == "tablet" and JOIN_KEYS


def test_the_session_pusher_writes_what_feasts_push_writes(serving_home):
    """SessionPusher skips store.push's per-call registry and pandas work: the rows it leaves in
    the online store must be the ones store.push leaves for the same snapshot, byte for byte."""
    import sqlite3

    import pandas as pd
    from feast.data_source import PushMode

    from hn_assets.defs.resources import FeatureStoreResource
    from hn_assets.features.store import PROJECT
    from hn_assets.online.session import SNAPSHOT_FEATURES
    from hn_assets.serving.online import PUSH_SOURCE, LeanOnlineReader, SessionPusher

    home, _ = serving_home
    store = FeatureStoreResource().store()
    pusher = SessionPusher(store)
    at = datetime(2026, 11, 30, 12, 0, 5, 250000, tzinfo=UTC)
    snap = {"as_of": at, "device": "mobile", "channel": "social", "is_weekend": True, "seconds_since_start": 61.5}
    snap |= {name: 2 for name in SNAPSHOT_FEATURES if name not in snap}
    assert set(pusher.columns) <= set(snap), "a session feature the test does not fill"
    store.push(PUSH_SOURCE, pd.DataFrame([{**snap, "session_key": "by-feast#1"}]), to=PushMode.ONLINE)
    pusher.push([{**snap, "session_key": "by-pusher#1"}])

    lean = LeanOnlineReader(home / "feast" / "online_store.db", PROJECT)
    conn = sqlite3.connect(home / "feast" / "online_store.db")
    sql = f'SELECT feature_name, value, event_ts FROM "{PROJECT}_session_activity" WHERE entity_key = ? ORDER BY 1'
    feast_rows, pusher_rows = (
        conn.execute(sql, (lean.entity_key("session_activity", key),)).fetchall()
        for key in ("by-feast#1", "by-pusher#1")
    )
    assert len(feast_rows) == len(pusher.columns) and feast_rows == pusher_rows


def test_fast_champion_equals_the_registered_model(serving_home):
    home, tag = serving_home
    from hn_assets.models.training import to_pandas
    from hn_assets.serving.bento import model_path
    from hn_assets.serving.model import load_model_dir

    loaded = load_model_dir(model_path(tag))
    champion = loaded.champion
    assert champion.fast, champion.why_slow  # the load-time check passed: not the slow fallback
    data = sorted((home / "lake" / "training_sets" / "purchase_intent").glob("*/data.parquet"))[-1]
    rows = pl.read_parquet(data).head(3000)
    reference = champion.predict_frame(to_pandas(rows, champion.features))
    mine = np.array(
        [champion.predict(r, contributions=False).probability for r in rows.select(champion.features).to_dicts()]
    )
    assert np.array_equal(mine, reference)


def test_fallback_not_500_when_the_online_store_is_removed(servers, serving_home):
    home, _ = serving_home
    port = servers["main"].port
    db = home / "feast" / "online_store.db"
    aside = db.with_suffix(".aside")
    shutil.move(db, aside)
    try:
        answers = [request(port, "POST", "/score", score_body(f"V-gone-{i}"))[1] for i in range(6)]
        assert all(a["fallback"] is True and "online store" in a["fallback_reason"] for a in answers), answers[0]
    finally:
        shutil.move(aside, db)
    assert request(port, "POST", "/score", score_body("V-back"))[1]["fallback"] is False


def test_skew_replay_matches_the_training_set(servers, serving_home):
    """Sessions of the last day, replayed event by event through /events against the online store
    as the service had it that morning (user and product rows re-materialised up to the day's
    start): at each snapshot time the feature vector the service logged equals the training-set
    row for (session_key, as_of), and the score the offline one. Logged-in users whose only batch
    row that day is their replayed session's start are in: the service must count that session in
    the user's history as the batch does (request_time.user_history_in_session)."""
    home, tag = serving_home
    from hn_assets.ingest.privacy import Pseudonymiser
    from hn_assets.models.training import to_pandas
    from hn_assets.serving.bento import model_path
    from hn_assets.serving.model import load_model_dir
    from hn_assets.settings import get_settings

    champion = load_model_dir(model_path(tag)).champion
    data = sorted((home / "lake" / "training_sets" / "purchase_intent").glob("*/data.parquet"))[-1]
    train = pl.read_parquet(data)
    last_day = train["event_timestamp"].max().date()
    users = pl.read_parquet(home / "lake" / "gold" / "user_features" / "*.parquet")
    starts = pl.read_parquet(home / "lake" / "gold" / "fct_sessions" / "*.parquet").select(
        "session_key", "session_start"
    )
    day_rows = users.filter(pl.col("event_timestamp").dt.date() >= last_day).group_by("user_id").agg("event_timestamp")
    only_this_session = {  # users whose one change that day is a session's start (that session)
        (r["user_id"], r["event_timestamp"][0]) for r in day_rows.to_dicts() if len(r["event_timestamp"]) == 1
    }
    p = Pseudonymiser(get_settings().pseudonym_key)
    raw_events = pl.concat(
        [
            pl.read_ndjson(f, infer_schema_length=None)
            for f in sorted((home / "archive" / "clickstream_events").rglob("*.jsonl"))
        ],
        how="diagonal_relaxed",
    ).filter(pl.col("analytics_consent").cast(pl.String).str.to_lowercase() == "true")
    raw_events = raw_events.with_columns(
        pl.col("visitor_id").map_elements(p.token, return_dtype=pl.String).alias("_token")
    )
    day = train.filter(pl.col("event_timestamp").dt.date() == last_day).join(starts, on="session_key", how="left")
    replayable = [
        r["session_key"]
        for r in day.select("session_key", "user_id", "session_start").unique().to_dicts()
        if r["user_id"] is None or (r["user_id"], r["session_start"]) in only_this_session
    ]
    candidates = (
        day.filter(pl.col("session_key").is_in(replayable))
        # consented visitors only: a day-salted token has no raw id that replays to it
        .filter(pl.col("session_key").str.split("#").list.first().is_in(raw_events["_token"].unique().to_list()))
        .group_by("session_key")
        .agg(pl.len().alias("n"), pl.col("user_id").first().is_not_null().alias("logged_in"))
        .filter(pl.col("n") >= 3)
        .sort("logged_in", "session_key", descending=[True, False])
        .head(5)
    )
    assert candidates.height >= 2, "too few sessions to replay"
    assert candidates["logged_in"].sum() >= 1, "no logged-in session to replay: the user history goes untested"
    # The product rows valid on the last day into the online store (the store's newest rows are
    # the next day's: computed at the end of the last day), as the service would have read them then.
    from hn_assets.defs.resources import FeatureStoreResource

    day_start = datetime(last_day.year, last_day.month, last_day.day, tzinfo=UTC)
    FeatureStoreResource().store().materialize(
        start_date=day_start - timedelta(days=400),
        end_date=day_start + timedelta(seconds=1),
        feature_views=["product_signals", "user_history"],
    )
    port, checked, with_history = servers["main"].port, 0, 0
    for session_key in candidates["session_key"]:
        token = session_key.split("#")[0]
        rows = train.filter(pl.col("session_key") == session_key).sort("event_timestamp")
        start, end = rows["event_timestamp"].min(), rows["event_timestamp"].max()
        events = (
            raw_events.filter(pl.col("_token") == token)
            .with_columns(pl.col("event_timestamp").str.to_datetime(time_zone="UTC").alias("_t"))
            .filter((pl.col("_t") >= start) & (pl.col("_t") <= end))
            .sort("_t", "event_id")
        )
        for ev in events.drop("_token", "_t").to_dicts():
            body = {k: v for k, v in ev.items() if v is not None and k not in ("schema_version",)}
            body["analytics_consent"] = True
            for k in ("price",):
                if k in body:
                    body[k] = float(body[k])
            status, result = request(port, "POST", "/events", body)
            assert status == 200, result
            assert result["sessions"] == [session_key]
            at = datetime.fromisoformat(ev["event_timestamp"].replace("Z", "+00:00"))
            expected = rows.filter(pl.col("event_timestamp") == at)
            if expected.is_empty():
                continue
            rid = uuid.uuid4().hex
            raw_user = ev.get("user_id")
            status, answer = request(
                port,
                "POST",
                "/score",
                score_body(ev["visitor_id"], raw_user, request_id=rid, as_of=ev["event_timestamp"]),
            )
            assert status == 200 and answer["session_key"] == session_key and not answer["fallback"], answer
            time.sleep(0.05)
            served = json.loads(inference_records(home)[rid]["features"])
            row = expected.select(champion.features).to_dicts()[0]
            for name in champion.features:
                a, b = served.get(name), row[name]
                if isinstance(b, float) and b != b:
                    b = None
                assert (
                    (a is None and b is None)
                    or a == b
                    or (isinstance(a, int | float) and isinstance(b, int | float) and abs(a - b) < 1e-9)
                ), (session_key, str(at), name, a, b)
            offline = champion.predict_frame(to_pandas(expected, champion.features))[0]
            assert abs(answer["probability"] - offline) < 1e-12, (session_key, str(at))
            checked += 1
            with_history += served.get("sessions_last_30d") is not None
    assert checked >= 5 and with_history >= 1, (checked, with_history)


def test_the_service_follows_a_new_champion(servers, serving_home):
    """Issue #13: a new model under `purchase_intent:latest` (as importing a new champion makes
    it) is loaded by the running workers in the background and swapped in: the answers then carry
    its version, and no request fails during the switch. Runs last: it moves the main server's model."""
    import bentoml

    from hn_assets.serving.bento import _model_store, model_path, point_latest

    home, tag = serving_home
    source = model_path(tag)
    meta = json.loads((source / "meta.json").read_text())
    new_version = f"{meta['mlflow_version']}.1"
    port = servers["main"].port
    assert request(port, "POST", "/score", score_body("V-follow-0"))[1]["model_version"] == meta["mlflow_version"]
    store = _model_store(home / "bentoml")
    new_tag = f"purchase_intent:vfollow-{uuid.uuid4().hex[:6]}"
    with bentoml.models.create(new_tag, metadata={**meta, "mlflow_version": new_version}, _model_store=store) as m:
        for item in source.iterdir():
            if item.is_dir():
                shutil.copytree(item, Path(m.path) / item.name)
            elif item.name not in ("model.yaml", "meta.json"):
                shutil.copy(item, Path(m.path) / item.name)
        (Path(m.path) / "meta.json").write_text(json.dumps({**meta, "mlflow_version": new_version}))
    try:
        statuses, streak, deadline = [], 0, time.monotonic() + 180
        while streak < 12 and time.monotonic() < deadline:  # new connections: both workers answer
            status, answer = request(port, "POST", "/score", score_body(f"V-follow-{len(statuses)}"))
            statuses.append(status)
            streak = streak + 1 if status == 200 and answer["model_version"] == new_version else 0
            assert status != 200 or answer["fallback"] is False, answer
        assert set(statuses) == {200}, sorted(set(statuses))
        assert streak >= 12, f"still not serving {new_version} after {len(statuses)} requests"
        print(f"switched to {new_version} after {len(statuses)} requests")
    finally:
        point_latest(home / "bentoml", tag)  # back to the champion for anything after this test
