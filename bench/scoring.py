"""Live scoring, speed and memory: the real Bento against BentoML's own ceiling and the classic design.

    .venv/bin/python bench/scoring.py                       # builds a demo-size store in a temp HN_HOME
    .venv/bin/python bench/scoring.py --home /tmp/my-hn     # reuses a store with a champion (and a Bento)
    .venv/bin/python bench/scoring.py --home ... --write-readme   # also writes the figures into bench/README.md

In one run, on the same cores, over loopback:
- the real Bento (`bentoml serve <tag>` of the champion's Bento, real online store, real model),
  request bodies from the store's own visitors: known (logged in, consented), anonymous (no login,
  some without analytics consent) and new visitors; events are posted first so known visitors have
  live sessions;
- the ceiling: the trivial constant handler (bench/_trivial.py) mounted with `@bentoml.asgi_app` in
  the same BentoML configuration (bench/ceiling_service.py);
- the reference: the classic design (bench/reference_service.py: FastAPI + Feast `to_df` + pandas
  `predict_proba`, same model and store) under uvicorn with 1 and 2 workers.
Saturation with `wrk -t2 -c32`; latency at a fixed rate with the evenly spaced open-loop client of
bench/_loadgen.py (measured from each request's intended send time). Each phase also reports how
much CPU other processes on the machine used meanwhile (`other load`, cores): on a shared machine a
slow phase says why.

The service never writes into the store it reads: it runs against a sandbox HN_HOME
(hn_assets/serving/smoke.py) that links the store's features, gold and key, and keeps its own
landing, live sessions and inference log, so `--home` may point at a real store.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench._common import table  # noqa: E402
from bench._loadgen import (  # noqa: E402
    PYTHON,
    CpuMeter,
    Server,
    Stream,
    free_port,
    open_loop,
    write_bodies,
    wrk_saturate,
)
from hn_assets.contracts import CHANNELS, DEVICES  # noqa: E402

BIN = Path(PYTHON).parent
README = HERE / "README.md"
BEGIN, END = "<!-- scoring:begin -->", "<!-- scoring:end -->"
# The BentoML settings the real service runs with (bentos/purchase_intent/service.py) and that the
# ceiling copies: see bench/README.md, "Scoring", for what each was measured to do.
CEILING_GC = "service"  # the real service settles its heap the same way (settle_heap)
# /score saturation, /score at 1,000 req/s, the mixed /score + /events phase, the ceiling, the reference.
PHASES = ("saturation", "latency", "mixed", "ceiling", "reference")


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# ---- the store ------------------------------------------------------------------------------------
def build_store(home: Path, args) -> None:
    """A demo-size store (the `make demo` defaults) with a champion and its Bento: `hn simulate` +
    the `end_to_end` job, exactly what `make demo` runs."""
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HN_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    env.pop("HN_PSEUDONYM_KEY", None)
    subprocess.run([str(BIN / "hn"), "env"], env=env, check=True, stdout=subprocess.DEVNULL)
    sim = [str(BIN / "hn"), "simulate", "--quiet", *args.simulate]
    log(f"building a demo-size store in {home}: {' '.join(sim[1:])} + end_to_end (several minutes)")
    subprocess.run(sim, env=env, check=True)
    job = [str(BIN / "dagster"), "job", "execute", "-m", "hn_assets.definitions", "-j", "end_to_end"]
    with open(home / "end_to_end.log", "wb") as out:
        subprocess.run(job, env=env, check=True, stdout=out, stderr=subprocess.STDOUT, cwd=HERE.parent)


def champion_bento(home: Path) -> str:
    """The Bento of the store's champion, tagged as the `purchase_intent_bento` asset tags it
    (`purchase_intent:v<model version>-<serving code fingerprint>`); built here if missing."""
    from hn_assets.models.registry import ModelRegistry
    from hn_assets.serving import bento, smoke
    from hn_assets.settings import get_settings

    registry = ModelRegistry(get_settings().mlflow_tracking_uri)
    champion = registry.version_for_alias("champion")
    if champion is None:
        raise SystemExit(f"no purchase_intent@champion in {home}: run `make demo` (or the end_to_end job) first")
    version = smoke.bento_version(str(champion.version), smoke.source_fingerprint())
    tag, bentoml_home = f"{bento.MODEL_NAME}:{version}", smoke.bentoml_home(home)
    if not smoke.bento_exists(tag, bentoml_home):
        log(f"building {tag} (champion v{champion.version}) into {bentoml_home}")
        model_tag = bento.import_champion(registry.tracking_uri, bentoml_home_dir=bentoml_home)
        tag = bento.build_bento(model_tag, bentoml_home_dir=bentoml_home, version=version)
    return tag


def service_config() -> dict:
    """The real service's BentoML configuration (its `@bentoml.service` arguments), for the ceiling."""
    from bentos.purchase_intent.service import PurchaseIntent

    keep = ("workers", "traffic", "logging", "http", "metrics", "tracing")
    return {k: v for k, v in PurchaseIntent.config.items() if k in keep}


# ---- request bodies -------------------------------------------------------------------------------
def store_visitors(home: Path, limit: int = 3000) -> list[dict]:
    """Raw visitors of the store's clickstream (landing or archive) with their latest attributes and
    their customer's consent: the ids the shop's backend would send."""
    import orjson
    import polars as pl

    files = sorted(
        p
        for root in (home / "archive" / "clickstream_events", home / "landing" / "clickstream_events")
        for p in root.rglob("*.jsonl")
    )
    if not files:
        raise SystemExit(f"no clickstream JSON lines under {home}/archive or landing: not a simulated store")
    cols = ["visitor_id", "user_id", "analytics_consent", "device", "channel", "timezone", "event_timestamp"]
    records = []
    for file in files[-14:]:  # the last two weeks
        for line in file.read_bytes().splitlines():
            try:
                r = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # the simulator's dirt: the contract check quarantines it
            if (
                isinstance(r, dict)
                and all(isinstance(r.get(c), str) for c in ("visitor_id", "timezone", "event_timestamp"))
                and isinstance(r.get("analytics_consent"), bool)
                and isinstance(r.get("user_id"), str | None)
                and r.get("device") in DEVICES
                and r.get("channel") in CHANNELS
            ):
                records.append({c: r.get(c) for c in cols})
    events = pl.DataFrame(records, schema_overrides={c: pl.String for c in cols if c != "analytics_consent"})
    latest = events.sort("event_timestamp").group_by("visitor_id").last()
    customers = []
    for file in sorted((home / "archive" / "customers").rglob("*.jsonl")):
        for line in file.read_bytes().splitlines():
            try:
                r = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if (
                isinstance(r, dict)
                and isinstance(r.get("customer_id"), str)
                and isinstance(r.get("consent_personalization"), bool)
                and isinstance(r.get("updated_at"), str)
            ):
                customers.append({k: r.get(k) for k in ("customer_id", "consent_personalization", "updated_at")})
    consent = (
        pl.DataFrame(customers, schema_overrides={"customer_id": pl.String, "updated_at": pl.String})
        .sort("updated_at")
        .group_by("customer_id")
        .last()
        .rename({"customer_id": "user_id"})
    )
    rows = latest.join(consent.drop("updated_at"), on="user_id", how="left").head(limit * 4).to_dicts()
    random.Random(7).shuffle(rows)
    return rows[:limit]


def score_body(v: dict, kind: str) -> dict:
    logged_in = kind == "known"
    analytics = bool(v["analytics_consent"]) if kind != "new" else True
    return {
        "visitor_id": v["visitor_id"],
        **({"user_id": v["user_id"]} if logged_in else {}),
        "consent": {
            "analytics": analytics,
            "personalisation": bool(v.get("consent_personalization")) if logged_in else False,
        },
        "context": {"device": v["device"], "channel": v["channel"], "timezone": v["timezone"]},
    }


def request_bodies(home: Path, n: int = 2000) -> dict[str, list]:
    """/score bodies (60 % known visitors, 25 % anonymous, 15 % new), /events single events, and
    the warm-up events that give known visitors a live session."""
    import polars as pl

    rnd = random.Random(42)
    visitors = store_visitors(home)
    products = (
        pl.scan_parquet(str(home / "lake" / "gold" / "product_features" / "*.parquet"))
        .select("product_id")
        .unique()
        .collect()["product_id"]
        .sort()
        .to_list()
    )
    known = [v for v in visitors if v["user_id"]]
    anonymous = [v for v in visitors if not v["user_id"]]
    scores, mix = [], {"known": 0, "anonymous": 0, "new": 0}
    for i in range(n):
        r = rnd.random()
        if r < 0.60 and known:
            kind, v = "known", known[i % len(known)]
        elif r < 0.85 and anonymous:
            kind, v = "anonymous", anonymous[i % len(anonymous)]
        else:
            kind = "new"
            v = {**rnd.choice(visitors), "visitor_id": f"v-bench-new-{i:05d}", "user_id": None}
        mix[kind] += 1
        scores.append(score_body(v, kind))
    now = datetime.now(UTC)

    def event(v: dict, i: int, at: datetime, kind: str) -> dict:
        return {
            "event_id": f"bench-{kind}-{i:07d}",
            "event_type": rnd.choice(["page_view", "product_view", "product_view", "add_to_cart", "search"]),
            "event_timestamp": at.isoformat().replace("+00:00", "Z"),
            "visitor_id": v["visitor_id"],
            "user_id": v["user_id"],
            "analytics_consent": bool(v["analytics_consent"]),
            "product_id": rnd.choice(products),
            "device": v["device"],
            "channel": v["channel"],
            "timezone": v["timezone"],
        }

    warm = [
        event(known[i % len(known)], i, now + timedelta(milliseconds=i), "warm") for i in range(min(600, len(known)))
    ]
    live = [
        event(visitors[i % len(visitors)], i, now + timedelta(seconds=30, milliseconds=5 * i), "live")
        for i in range(8000)
    ]
    return {"score": scores, "events": live, "warm": warm, "mix": mix}


def reference_bodies(home: Path, n: int = 2000) -> list[dict]:
    """Entity keys for the reference (it reads the store directly): the latest snapshots' sessions,
    users and products from gold, i.e. the same store rows the real service reads."""
    import polars as pl

    snaps = (
        pl.scan_parquet(str(home / "lake" / "gold" / "fct_session_snapshots" / "*.parquet"))
        .select("session_key", "user_id", "last_product_id", "as_of")
        .sort("as_of", descending=True)
        .head(n)
        .collect()
    )
    return [{"session_key": s, "user_id": u, "product_id": p} for s, u, p, _ in snaps.iter_rows()]


# ---- servers ---------------------------------------------------------------------------------------
def bento_server(tag: str, sandbox: Path, bentoml_home: Path, logs: Path) -> Server:
    port = free_port()
    env = {"HN_HOME": str(sandbox), "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "true"}
    cmd = [str(BIN / "bentoml"), "serve", tag, "--host", "127.0.0.1", "--port", str(port)]
    return Server("bento", cmd, f"http://127.0.0.1:{port}/readyz", env=env, timeout=180, log_path=logs / "bento.log")


def source_server(tag: str, sandbox: Path, bentoml_home: Path, logs: Path) -> Server:
    """The service of the working tree (`bentos.purchase_intent.service`), not a built Bento: for
    measuring a change before it is built (`--source`). Same configuration, same model (the store's
    `purchase_intent:latest`)."""
    port = free_port()
    env = {"HN_HOME": str(sandbox), "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "true"}
    service = "bentos.purchase_intent.service:PurchaseIntent"
    cmd = [str(BIN / "bentoml"), "serve", service, "--host", "127.0.0.1", "--port", str(port)]
    return Server("bento", cmd, f"http://127.0.0.1:{port}/readyz", env=env, timeout=180, log_path=logs / "bento.log")


def ceiling_server(config: dict, gc_mode: str, bentoml_home: Path, logs: Path) -> Server:
    port = free_port()
    env = {
        "HN_CEILING_CONFIG": json.dumps(config),
        "HN_CEILING_GC": gc_mode,
        "BENTOML_HOME": str(bentoml_home),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    cmd = [str(BIN / "bentoml"), "serve", "bench.ceiling_service:Ceiling", "--host", "127.0.0.1", "--port", str(port)]
    return Server("ceiling", cmd, f"http://127.0.0.1:{port}/readyz", env=env, log_path=logs / "ceiling.log")


def reference_server(home: Path, workers: int, logs: Path) -> Server:
    port = free_port()
    cmd = [
        str(BIN / "uvicorn"),
        "bench.reference_service:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return Server(
        f"reference-{workers}w",
        cmd,
        f"http://127.0.0.1:{port}/readyz",
        env={"HN_HOME": str(home)},
        timeout=180,
        log_path=logs / f"reference-{workers}.log",
    )


def base_url(server: Server) -> str:
    return server.ready_url.rsplit("/", 1)[0]


def post_all(url: str, bodies: list[dict]) -> int:
    """POST each body once, sequentially; the number of 2xx answers."""
    import urllib.request

    ok = 0
    for body in bodies:
        req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                ok += 200 <= r.status < 300
        except Exception as exc:  # noqa: BLE001
            log(f"warm-up POST failed: {exc}")
    return ok


# ---- phases -----------------------------------------------------------------------------------------
def saturate(name: str, server: Server, path: str, bodies: Path, seconds: float) -> dict:
    url = base_url(server) + path
    wrk_saturate(url, bodies, duration=2)  # warm-up: connections, caches, lazy imports
    with CpuMeter(server) as cpu:
        r = wrk_saturate(url, bodies, duration=seconds)
    log(
        f"{name}: {r.rps:,.0f} req/s, non-2xx {r.non_2xx}, socket errors {r.socket_errors}, "
        f"other load {cpu.other_cores:.2f}"
    )
    return {
        "rps": r.rps,
        "non_2xx": r.non_2xx,
        "socket_errors": r.socket_errors,
        "p50_ms": r.latency_p50_ms,
        "p99_ms": r.latency_p99_ms,
        "other_cores": cpu.other_cores,
    }


def fixed_rate(server: Server, streams: list[Stream], seconds: float) -> dict:
    with CpuMeter(server) as cpu:
        out = open_loop(streams, duration=seconds)
    for name, r in out.items():
        r["other_cores"], r["server_cores"] = cpu.other_cores, cpu.server_cores
        log(
            f"{name} at {r['rate']:.0f} req/s: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms, "
            f"non-2xx {r['non_2xx']}, errors {r['errors']}, other load {cpu.other_cores:.2f}, "
            f"server {cpu.server_cores:.2f} cores"
        )
    return out


def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="hn-bench-scoring-"))
    try:
        return _run(args, work)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _run(args, work: Path) -> dict:
    logs = work / "logs"
    logs.mkdir()
    home = Path(args.home).resolve() if args.home else work / "hn"
    if not args.home:
        build_store(home, args)
    os.environ["HN_HOME"] = str(home)
    os.environ["BENTOML_HOME"] = str(home / "bentoml")
    from hn_assets.serving import smoke

    tag = "source (working tree)" if args.source else (args.bento or champion_bento(home))
    bentoml_home = smoke.bentoml_home(home)
    bodies = request_bodies(home)
    files = {k: write_bodies(v, work / f"{k}.jsonl") for k, v in bodies.items() if k != "mix"}
    files["reference"] = write_bodies(reference_bodies(home), work / "reference.jsonl")
    results: dict = {
        "bento_tag": tag,
        "mix": bodies["mix"],
        "seconds": args.seconds,
        "when": datetime.now(UTC).isoformat(),
    }

    phases = set(args.phases)
    if phases & {"saturation", "latency", "mixed"}:
        _service_phases(args, home, work, bodies, files, results)
    if "ceiling" in phases:  # 2. The ceiling, in the same BentoML configuration.
        config = service_config()
        with ceiling_server(config, CEILING_GC, bentoml_home, logs) as ceiling:
            results["ceiling"] = saturate("ceiling saturation", ceiling, "/score", files["score"], args.seconds)
            results["ceiling_1000"] = fixed_rate(
                ceiling, [Stream("score", base_url(ceiling) + "/score", str(files["score"]), 1000, 6)], args.seconds
            )["score"]
            results["ceiling_worker_rss_mb"] = ceiling.worker_rss_mb()
        results["ceiling_config"] = {**config, "gc": CEILING_GC}
    if "reference" in phases:  # 3. The classic reference, 1 and 2 workers.
        for workers in (1, 2):
            with reference_server(home, workers, logs) as ref:
                results[f"reference_{workers}w"] = saturate(
                    f"reference {workers} worker(s)", ref, "/score", files["reference"], args.seconds
                )
    return results


def _service_phases(args, home: Path, work: Path, bodies: dict, files: dict, results: dict) -> None:
    """1. The real service: the phases of `args.phases` that measure it."""
    from hn_assets.serving import smoke

    logs, phases = work / "logs", set(args.phases)
    tag, bentoml_home = results["bento_tag"], smoke.bentoml_home(home)
    if args.source:
        bentoml_home = _models_copy(bentoml_home, work / "bentoml")
    server = (source_server if args.source else bento_server)(tag, work / "sandbox", bentoml_home, logs)
    with smoke.sandbox(home, work / "sandbox"), server as bento:
        results["startup_s"] = bento.startup_s
        log(f"bento {tag} ready in {bento.startup_s:.1f} s")
        warmed = post_all(base_url(bento) + "/events", bodies["warm"])
        log(f"warm-up: {warmed}/{len(bodies['warm'])} events accepted")
        url = base_url(bento)
        if "saturation" in phases:
            results["score"] = saturate("/score saturation", bento, "/score", files["score"], args.seconds)
        if "latency" in phases:
            results["score_1000"] = fixed_rate(
                bento, [Stream("score", url + "/score", str(files["score"]), 1000, 6)], args.seconds
            )["score"]
        if "mixed" in phases:
            with profiling(bento, args.profile, "mixed", args.seconds + 2):
                mixed = fixed_rate(
                    bento,
                    [
                        Stream("score", url + "/score", str(files["score"]), 500, 4),
                        Stream("events", url + "/events", str(files["events"]), 200, 2),
                    ],
                    args.seconds,
                )
            results["score_500_with_events"], results["events_200"] = mixed["score"], mixed["events"]
        results["rss_mb"] = bento.rss_mb()
        results["worker_rss_mb"] = bento.worker_rss_mb()
    # What the service itself warned about (e.g. a model it cannot take its fast path for).
    warnings = [line for line in (logs / "bento.log").read_text(errors="replace").splitlines() if "[WARNING]" in line]
    results["service_warnings"] = sorted({w.split("] ", 2)[-1][:200] for w in warnings})


def worker_pids(server: Server) -> list[int]:
    """The service's worker processes (psutil children of the server we started; never by name)."""
    import psutil

    children = psutil.Process(server.proc.pid).children(recursive=True)
    workers = [c.pid for c in children if "_bentoml_impl.worker" in " ".join(c.cmdline())]
    return workers or [c.pid for c in children if "python" in c.name()]


@contextlib.contextmanager
def profiling(server: Server, folder: str | None, phase: str, seconds: float):
    """py-spy `record -f raw` of each worker during a phase, into `folder` (nothing when None).
    `--nonblocking`: the sampler does not stop the worker, so the profile does not add the
    latency it is meant to explain."""
    if not folder:
        yield
        return
    spy = shutil.which("py-spy") or os.environ.get("PY_SPY", "py-spy")
    Path(folder).mkdir(parents=True, exist_ok=True)
    procs = [
        subprocess.Popen(
            [spy, "record", "-p", str(pid), "-f", "raw", "-d", str(int(seconds)), "--nonblocking", "-r", "200"]
            + ["-o", str(Path(folder) / f"{phase}-{pid}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in worker_pids(server)
    ]
    try:
        yield
    finally:
        for proc in procs:
            proc.wait(timeout=seconds + 60)


def _models_copy(bentoml_home: Path, target: Path) -> Path:
    """A BENTOML_HOME holding a copy of the store's models only: serving from source writes nothing
    into the store's own BentoML home."""
    shutil.copytree(bentoml_home / "models", target / "models", symlinks=True)
    return target


# ---- BentoML settings, measured on the ceiling ---------------------------------------------------------
def _merge(base: dict, extra: dict) -> dict:
    out = json.loads(json.dumps(base))
    for key, value in extra.items():
        out[key] = {**out.get(key, {}), **value} if isinstance(value, dict) else value
    return out


def sweep_variants(config: dict) -> list[tuple[str, dict, str]]:
    """(label, @bentoml.service config, GC treatment): the real service's configuration, then one
    change at a time, then the changes together."""
    quiet = {"tracing": {"excluded_urls": "score,events"}}
    no_metrics = {"metrics": {"enabled": False}}
    no_traffic = {"traffic": {"max_concurrency": None}}  # the timeout cannot be switched off (must be > 0)
    return [
        ("service config, default GC", config, "default"),
        ("service config + settle_heap (as served)", config, CEILING_GC),
        ("+ GC off", config, "off"),
        ("+ metrics off", _merge(config, no_metrics), CEILING_GC),
        ("+ tracing excluded for /score,/events", _merge(config, quiet), CEILING_GC),
        ("+ no max_concurrency", _merge(config, no_traffic), CEILING_GC),
        ("+ all three", _merge(_merge(_merge(config, no_metrics), quiet), no_traffic), CEILING_GC),
        ("+ 3 workers", _merge(config, {"workers": 3}), CEILING_GC),
    ]


def sweep(args) -> str:
    work = Path(tempfile.mkdtemp(prefix="hn-bench-sweep-"))
    try:
        return _sweep(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _sweep(args, work: Path) -> str:
    bentoml_home = work / "bentoml"
    os.environ["BENTOML_HOME"] = str(bentoml_home)
    bodies = write_bodies([score_body(v, "known") for v in _synthetic_visitors(500)], work / "score.jsonl")
    config = service_config()
    rows = []
    for label, variant, gc_mode in sweep_variants(config):
        with ceiling_server(variant, gc_mode, bentoml_home, work) as server:
            sat = saturate(label, server, "/score", bodies, args.seconds)
            stream = Stream("c", base_url(server) + "/score", str(bodies), 1000, 6)
            lat = fixed_rate(server, [stream], args.seconds)["c"]
        load = f"{max(sat['other_cores'], lat['other_cores']):.2f}"
        rows.append((label, f"{sat['rps']:,.0f}", sat["non_2xx"], lat["p50_ms"], lat["p99_ms"], lat["max_ms"], load))
    header = ("BentoML setting (constant handler)", "req/s", "non-2xx", "p50 ms", "p99 ms", "max ms", "other load")
    return (
        f"Ceiling sweep, {datetime.now(UTC).isoformat()[:16]} UTC, {args.seconds:.0f} s per phase, "
        f"base `{json.dumps(config)}`:\n\n" + table(rows, header)
    )


def _synthetic_visitors(n: int) -> list[dict]:
    return [
        {
            "visitor_id": f"v-sweep-{i}",
            "user_id": f"C{i:07d}",
            "analytics_consent": True,
            "consent_personalization": True,
            "device": "mobile",
            "channel": "direct",
            "timezone": "Europe/Berlin",
        }
        for i in range(n)
    ]


# ---- report ------------------------------------------------------------------------------------------
def _clean(x: dict) -> bool:
    """Every scheduled request sent and answered 2xx (a p99 over the answered few means nothing)."""
    return x["non_2xx"] == 0 and x["errors"] == 0 and x["ok"] > 0


def _latency(x: dict) -> str:
    text = f"p99 {x['p99_ms']} ms at {x['rate']:.0f} req/s"
    return text if _clean(x) else text + f" ({x['errors']} errors/unsent, {x['non_2xx']} non-2xx)"


def verdicts(r: dict) -> list[tuple]:
    """The requirements the phases that ran can decide (`--phases` may leave some out)."""
    checks = []
    if {"score", "ceiling", "reference_1w"} <= r.keys():
        checks += _throughput_checks(r)
    if "score_1000" in r:
        checks.append(
            (
                "/score p99 <= 10 ms at 1,000 req/s (aim 5)",
                _latency(r["score_1000"]),
                _clean(r["score_1000"]) and r["score_1000"]["p99_ms"] <= 10,
            )
        )
    if "events_200" in r:
        checks.append(
            (
                "/events p99 <= 20 ms at 200 req/s, /score at 500",
                _latency(r["events_200"]) + f"; /score {_latency(r['score_500_with_events'])}",
                _clean(r["events_200"]) and _clean(r["score_500_with_events"]) and r["events_200"]["p99_ms"] <= 20,
            )
        )
    return [(name, value, "pass" if ok else "FAIL") for name, value, ok in checks]


def _throughput_checks(r: dict) -> list[tuple]:
    score, ceiling, ref = r["score"]["rps"], r["ceiling"]["rps"], r["reference_2w"]["rps"]
    best_ref = max(r["reference_1w"]["rps"], ref)
    return [
        (
            "/score saturation >= 60 % of the ceiling",
            f"{score / ceiling:.0%} ({score:,.0f} / {ceiling:,.0f})",
            score >= 0.6 * ceiling,
        ),
        ("/score saturation >= 2,000 req/s (aim 2,500)", f"{score:,.0f}", score >= 2000),
        (
            "/score zero non-2xx (saturation)",
            f"{r['score']['non_2xx']} non-2xx, {r['score']['socket_errors']} socket errors",
            r["score"]["non_2xx"] == 0 and r["score"]["socket_errors"] == 0,
        ),
        (
            "/score >= 10x the reference",
            f"{score / best_ref:.1f}x (reference best {best_ref:,.0f})",
            score >= 10 * best_ref,
        ),
    ]


def figures(r: dict) -> str:
    def load(x: dict) -> str:
        return f"{x['other_cores']:.2f}"

    sat = [
        (name, f"{r[key]['rps']:,.0f}", r[key]["non_2xx"], r[key]["p99_ms"], load(r[key]))
        for name, key in (
            ("/score (real Bento)", "score"),
            ("ceiling: constant handler, same BentoML config", "ceiling"),
            ("reference, 1 worker", "reference_1w"),
            ("reference, 2 workers", "reference_2w"),
        )
        if key in r
    ]
    lat = [
        (name, x["rate"], x["p50_ms"], x["p90_ms"], x["p99_ms"], x["max_ms"], x["non_2xx"] + x["errors"], load(x))
        for name, key in (
            ("/score at 1,000 req/s", "score_1000"),
            ("ceiling at 1,000 req/s", "ceiling_1000"),
            ("/score at 500 req/s, with /events", "score_500_with_events"),
            ("/events at 200 req/s (single events), with /score", "events_200"),
        )
        if (x := r.get(key)) is not None
    ]
    lines = [
        f"Run {r['when'][:16]} UTC, Bento `{r['bento_tag']}`, {r['seconds']:.0f} s per phase, bodies: "
        + ", ".join(f"{k} {v}" for k, v in r["mix"].items()),
    ]
    if sat:
        lines += [
            "",
            "Saturation (`wrk -t2 -c32`; `other load` = cores used by other processes meanwhile):",
            "",
            table(
                [tuple("-" if v is None else v for v in row) for row in sat],
                ("service", "req/s", "non-2xx", "wrk p99 ms", "other load"),
            ),
        ]
    if lat:
        lines += [
            "",
            "Fixed rate (open loop, from each request's intended send time):",
            "",
            table(lat, ("stream", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "other load")),
        ]
    lines += ["", table(verdicts(r), ("requirement", "measured", "")), ""]
    if "startup_s" in r:
        rss = ", ".join(f"{x:.0f}" for x in r["worker_rss_mb"])
        lines.append(f"Start-up to ready: {r['startup_s']:.1f} s. RSS per worker: {rss} MB.")
    if "ceiling_config" in r:
        ceiling_rss = ", ".join(f"{x:.0f}" for x in r["ceiling_worker_rss_mb"])
        lines.append(f"Ceiling workers {ceiling_rss} MB. Ceiling config: `{json.dumps(r['ceiling_config'])}`.")
    if r.get("service_warnings"):
        lines += ["", "The service warned: " + "; ".join(f"`{w}`" for w in r["service_warnings"])]
    return "\n".join(lines)


def write_readme(text: str) -> None:
    readme = README.read_text()
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in readme:
        start, end = readme.index(BEGIN), readme.index(END) + len(END)
        readme = readme[:start] + block + readme[end:]
    else:
        readme = readme.rstrip() + "\n\n" + block + "\n"
    README.write_text(readme)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", help="an existing HN_HOME with a champion (default: build a demo-size store)")
    parser.add_argument("--seconds", type=float, default=15, help="seconds per measured phase")
    parser.add_argument("--simulate", nargs="*", default=[], help="extra `hn simulate` arguments for the built store")
    parser.add_argument("--write-readme", action="store_true", help="write the figures into bench/README.md")
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, bodies)")
    parser.add_argument("--sweep", action="store_true", help="only measure BentoML settings on the ceiling (no store)")
    parser.add_argument(
        "--phases",
        nargs="+",
        choices=PHASES,
        default=list(PHASES),
        help="run only these phases (e.g. `--phases mixed`); the report shows what ran",
    )
    parser.add_argument("--profile", help="py-spy the workers (PATH or $PY_SPY) in the mixed phase into this folder")
    parser.add_argument("--bento", help="serve this Bento tag of the store as it is (e.g. an earlier build)")
    parser.add_argument(
        "--source",
        action="store_true",
        help="serve the working tree's service (bentos/purchase_intent/service.py) instead of building a Bento",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("skipped: missing wrk (expected on PATH; `bash .ci/system-packages.sh wrk`)")
        return
    if args.sweep:
        print(sweep(args))
        return
    results = run(args)
    text = figures(results)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    if args.write_readme:
        write_readme(text)


if __name__ == "__main__":
    main()
