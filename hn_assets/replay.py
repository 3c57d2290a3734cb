"""`hn replay`: live traffic for a running scoring service, as the store backend would send it.

The store in `$HN_HOME` was simulated for some days (`hn simulate`, which records its settings in
`simulator_truth/store.json`). A replay continues that world for `days` more days under a scenario:
the simulator is run again with the same seed over the old days plus the new ones (it is
deterministic, so the old days come out as they were and the new days continue them: the same
customers, stock, exchange rates), and only what is new is used:

- every session of the new days is driven through the service: each event is posted to
  `POST /events` in time order on an accelerated clock (`speed` simulated seconds per wall-clock
  second; 0: as fast as the service answers), and `POST /score` is called at each moment the model
  is meant to score, the training set's snapshot rule: after each event strictly before the
  session's first `begin_checkout` (or purchase), at most `max_snapshots_per_session` per session,
  with `as_of` = the event's time. A visitor's events are sent one at a time in order (the service
  numbers sessions by the 30-minute rule), different visitors concurrently;
- the same sessions also land as the simulator's batch landing files (every feed: clickstream with
  its usual dirt, orders and order items, customers, catalogue, stock, prices, exchange rates,
  calendar), each export day once the replay clock has passed it, so bronze and gold describe the
  world the service saw; purchases reach the platform through the normal order feeds. Files are
  named `<feed>_<day>.replay-<tag>.<ext>` so they never overwrite a file already landed or
  archived; lines the store already holds (late records of the old days, re-flushed) are left out.
  Events posted to `/events` that the service also lands are the same events (same `event_id`):
  silver keeps one copy;
- the ground truth of the new sessions is appended to `simulator_truth/sessions.csv`, and
  `store.json` records the longer store and its scenario.

The scenario's drift starts on the first replayed day (a drifted store continues its own drift).
"""

from __future__ import annotations

import asyncio
import csv
import json
import random
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hn_assets.simulator import SimulationConfig
from hn_assets.simulator.store import StoreSimulation
from hn_assets.simulator.writer import LandingWriter

STORE_RECORD = "store.json"  # under simulator_truth/, beside the ground truth
PRE_CHECKOUT_END = ("begin_checkout", "purchase")


# ---- the store's own record ----------------------------------------------------------------------
def record_store(cfg: SimulationConfig, out_dir: Path) -> Path:
    """Write the settings a store was simulated with (what a replay needs to continue it)."""
    path = Path(out_dir) / "simulator_truth" / STORE_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(cfg).items()}
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def recorded_store(home: Path) -> SimulationConfig | None:
    path = Path(home) / "simulator_truth" / STORE_RECORD
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    data["start_date"] = date.fromisoformat(data["start_date"])
    known = SimulationConfig.__dataclass_fields__
    return SimulationConfig(**{k: v for k, v in data.items() if k in known})


def continued(previous: SimulationConfig, days: int, scenario: str) -> SimulationConfig:
    """The store simulated for `days` more days under `scenario`, drifting from the first new day
    (or continuing the drift it already follows)."""
    if days < 1:
        raise ValueError("days must be >= 1")
    if previous.scenario not in ("baseline", scenario):
        raise ValueError(
            f"the store already follows scenario {previous.scenario!r} (from day {previous.drift_start_day}); "
            f"a replay continues it (--scenario {previous.scenario}) rather than rewriting its past"
        )
    drift = previous.drift_start_day if previous.scenario == scenario else previous.days
    return replace(previous, days=previous.days + days, scenario=scenario, drift_start_day=drift)


# ---- generating the new days ---------------------------------------------------------------------
class _CapturingWriter(LandingWriter):
    """The simulator's writer, also keeping a clean copy of each clickstream record of the new days
    (before any dirt is applied) with the visitor's personalisation consent."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.capture = False
        self.personalisation = False
        self.events: list[dict] = []

    def add_json(self, feed: str, day: date, record: dict, dirty: bool = False) -> None:
        if self.capture and feed == "clickstream_events":
            self.events.append({**record, "_personalisation": self.personalisation})
        super().add_json(feed, day, record, dirty)


class _ContinuedSimulation(StoreSimulation):
    def __init__(self, cfg: SimulationConfig, out_dir: Path, first_new_day: int):
        super().__init__(cfg, out_dir)
        self.first_new_day = first_new_day
        self.writer = _CapturingWriter(out_dir / "landing", cfg.dirty_rate, random.Random(f"hn-{cfg.seed}-dirt"))
        self.new_truth_from: int | None = None

    def run_day(self, d: int) -> None:
        if d == self.first_new_day:
            self.writer.capture = True
            self.new_truth_from = len(self.truth_rows)
        super().run_day(d)

    def _session(self, ctx, day, v, rng) -> None:
        self.writer.personalisation = bool(v.customer is not None and v.customer.consent_personalization)
        super()._session(ctx, day, v, rng)


@dataclass
class Generated:
    cfg: SimulationConfig
    first_day: date  # the first new day (local dates of the store's visitors start here)
    sessions: dict[str, list[dict]]  # client_session_id -> clean events in time order
    truth_rows: list[tuple]
    scratch: Path  # the re-simulated store (landing files of old and new days)
    summary: object


def generate(previous: SimulationConfig, days: int, scenario: str, scratch: Path) -> Generated:
    cfg = continued(previous, days, scenario)
    sim = _ContinuedSimulation(cfg, scratch, first_new_day=previous.days)
    summary = sim.run()
    sessions: dict[str, list[dict]] = defaultdict(list)
    for event in sim.writer.events:
        sessions[event["client_session_id"]].append(event)
    for events in sessions.values():
        events.sort(key=lambda e: (e["event_timestamp"], e["event_id"]))
    first_day = cfg.start_date + timedelta(days=previous.days)
    truth = sim.truth_rows[sim.new_truth_from :] if sim.new_truth_from is not None else []
    return Generated(cfg, first_day, dict(sessions), truth, scratch, summary)


# ---- landing the batch files -------------------------------------------------------------------
def _export_day(path: Path) -> date | None:
    name = path.parent.name
    return date.fromisoformat(name[3:]) if name.startswith("dt=") else None


def _known_lines(home: Path, relative: Path) -> set[bytes]:
    """Lines the store already holds for this export file (in landing or, once ingested, archive)."""
    lines: set[bytes] = set()
    for root in (home / "landing", home / "archive"):
        folder = (root / relative).parent
        if folder.exists():
            for existing in folder.glob(f"{relative.stem}*{relative.suffix}"):
                lines.update(existing.read_bytes().splitlines())
    return lines


@dataclass
class Lander:
    """Moves the re-simulated store's new lines into `$HN_HOME/landing`, export day by export day."""

    home: Path
    scratch: Path
    first_day: date
    tag: str
    landed: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pending: dict[date, list[Path]] = defaultdict(list)
        for path in sorted((self.scratch / "landing").rglob("*.*")):
            day = _export_day(path)
            if day is not None:
                self.pending[day].append(path)
        # Exports of the old days hold only what the store already has (plus, rarely, a line the
        # longer run adds, e.g. the calendar's new dates): land those lines with the first new day.
        for day in [d for d in self.pending if d < self.first_day]:
            self.pending[self.first_day].extend(self.pending.pop(day))

    def days(self) -> list[date]:
        return sorted(self.pending)

    def land(self, up_to: date | None = None) -> int:
        """Land every export day <= up_to (None: all); returns the number of files written."""
        written = 0
        for day in [d for d in self.days() if up_to is None or d <= up_to]:
            for path in self.pending.pop(day):
                written += self._land(path)
        return written

    def _land(self, path: Path) -> int:
        relative = path.relative_to(self.scratch / "landing")
        lines = path.read_bytes().splitlines()
        known = _known_lines(self.home, relative)
        if path.suffix == ".csv":
            header, rows = lines[:1], [line for line in lines[1:] if line not in known]
            lines = header + rows if rows else []
        else:
            lines = [line for line in lines if line not in known]
        if not lines:
            return 0
        target = self.home / "landing" / relative.parent / f"{relative.stem}.replay-{self.tag}{relative.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name("." + target.name + ".tmp")  # hidden until complete: ingest skips dotfiles
        tmp.write_bytes(b"\n".join(lines) + b"\n")
        tmp.rename(target)
        self.landed.append(target)
        return 1


def append_truth(home: Path, rows: list[tuple]) -> None:
    path = home / "simulator_truth" / "sessions.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        if new:
            out.writerow(
                (
                    "client_session_id",
                    "visitor_id",
                    "session_start",
                    "is_bot",
                    "offered",
                    "p_no_offer",
                    "p_offer",
                    "purchased",
                )
            )
        out.writerows(rows)


# ---- driving the service ---------------------------------------------------------------------------
def live_event(record: dict) -> dict:
    """A clean simulator record as the LiveEvent the service accepts (serving.schemas.LiveEvent)."""
    from hn_assets.serving.schemas import LiveEvent

    fields = LiveEvent.model_fields
    event = {k: v for k, v in record.items() if k in fields and v is not None}
    return LiveEvent.model_validate(event).model_dump(mode="json", exclude_none=True)


def score_request(record: dict) -> dict:
    """The ScoreRequest at the moment of `record` (as_of = its time), as the store backend sends it."""
    from hn_assets.serving.schemas import ScoreRequest

    request = {
        "visitor_id": record["visitor_id"],
        "user_id": record.get("user_id"),
        "client_session_id": record.get("client_session_id"),
        "consent": {"analytics": bool(record["analytics_consent"]), "personalisation": record["_personalisation"]},
        "context": {k: record[k] for k in ("device", "channel", "timezone") if record.get(k) is not None},
        "as_of": record["event_timestamp"],
    }
    return ScoreRequest.model_validate(request).model_dump(mode="json", exclude_none=True)


@dataclass
class Step:
    at: float  # epoch seconds of the simulated clock
    event: dict
    score: dict | None  # the ScoreRequest to send right after the event, if it is a scoring moment


def plan_steps(sessions: dict[str, list[dict]], max_snapshots: int) -> dict[str, list[Step]]:
    """visitor -> that visitor's steps in time order (events, and the score after each pre-checkout
    event, at most `max_snapshots` per session)."""
    visitors: dict[str, list[Step]] = defaultdict(list)
    for events in sessions.values():
        checkout = next((i for i, e in enumerate(events) if e["event_type"] in PRE_CHECKOUT_END), len(events))
        for i, record in enumerate(events):
            at = datetime.fromisoformat(record["event_timestamp"].replace("Z", "+00:00")).timestamp()
            score = score_request(record) if i < min(checkout, max_snapshots) else None
            visitors[record["visitor_id"]].append(Step(at, live_event(record), score))
    for steps in visitors.values():
        steps.sort(key=lambda s: (s.at, s.event["event_id"]))
    return dict(visitors)


@dataclass
class ReplayResult:
    days: int
    scenario: str
    first_day: str
    sessions: int = 0
    events_posted: int = 0
    events_accepted: int = 0
    scores: int = 0
    fallbacks: int = 0
    model_versions: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)  # "<endpoint> <status>" -> count
    first_errors: list = field(default_factory=list)
    landing_files: list = field(default_factory=list)
    truth_rows: int = 0
    wall_seconds: float = 0.0


class Driver:
    def __init__(self, url: str, api_key: str | None, speed: float, concurrency: int, progress: bool):
        self.url = url.rstrip("/")
        self.headers = {"content-type": "application/json", **({"X-API-Key": api_key} if api_key else {})}
        self.speed = speed
        self.concurrency = concurrency
        self.progress = progress

    async def run(self, visitors: dict[str, list[Step]], lander: Lander, result: ReplayResult) -> None:
        import httpx
        from tqdm import tqdm

        steps = [s for v in visitors.values() for s in v]
        if not steps:
            return
        t0 = min(s.at for s in steps)
        wall0 = time.monotonic()
        bar = tqdm(total=len(steps), desc="replaying events", unit="event", disable=not self.progress, smoothing=0.05)
        versions: Counter = Counter()
        errors: Counter = Counter()
        limit = asyncio.Semaphore(self.concurrency)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)

        def wall_of(at: float) -> float:
            return wall0 + (at - t0) / self.speed

        async def wait_until(at: float) -> None:
            if self.speed > 0:
                delay = wall_of(at) - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)

        async def post(client, path: str, body: dict) -> dict | None:
            async with limit:
                try:
                    response = await client.post(path, json=body)
                except httpx.HTTPError as exc:
                    errors[f"{path} {type(exc).__name__}"] += 1
                    if len(result.first_errors) < 5:
                        result.first_errors.append(f"{path}: {exc!r}")
                    return None
            if response.status_code // 100 != 2:
                errors[f"{path} {response.status_code}"] += 1
                if len(result.first_errors) < 5:
                    result.first_errors.append(f"{path} {response.status_code}: {response.text[:300]}")
                return None
            return response.json()

        async def visitor(client, own: list[Step]) -> None:
            for step in own:
                await wait_until(step.at)
                answer = await post(client, "/events", {"events": [step.event]})
                result.events_posted += 1
                if answer is not None:
                    result.events_accepted += int(answer.get("accepted", 0))
                if step.score is not None:
                    scored = await post(client, "/score", step.score)
                    if scored is not None:
                        result.scores += 1
                        result.fallbacks += bool(scored.get("fallback"))
                        versions[str(scored.get("model_version"))] += 1
                bar.update(1)
                bar.set_postfix(scores=result.scores, errors=sum(errors.values()), refresh=False)

        async def land_as_the_clock_passes() -> None:
            # An export day is complete once its last session can have ended (day end + one timeout).
            for day in lander.days():
                end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1, minutes=30)
                await wait_until(end.timestamp())
                lander.land(up_to=day)

        async with httpx.AsyncClient(base_url=self.url, headers=self.headers, limits=limits, timeout=30.0) as client:
            tasks = [asyncio.create_task(visitor(client, own)) for own in visitors.values()]
            landing = asyncio.create_task(land_as_the_clock_passes()) if self.speed > 0 else None
            await asyncio.gather(*tasks)
            if landing is not None:
                landing.cancel()
        bar.close()
        lander.land()  # whatever the clock has not passed yet
        result.model_versions = dict(versions)
        result.errors = dict(errors)


def check_service(url: str, api_key: str | None, timeout: float = 5.0) -> None:
    """Raise ConnectionError with a readable reason when no ready service answers at `url`."""
    import httpx

    headers = {"X-API-Key": api_key} if api_key else {}
    try:
        response = httpx.get(url.rstrip("/") + "/readyz", headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        reason = f"no scoring service answers at {url} ({type(exc).__name__}); start it (make serve)"
        raise ConnectionError(reason) from None
    if response.status_code != 200:
        raise ConnectionError(f"the scoring service at {url} is not ready (/readyz: {response.status_code})")


def replay(
    home: Path,
    url: str,
    days: int,
    scenario: str,
    speed: float = 1440.0,
    api_key: str | None = None,
    concurrency: int = 16,
    progress: bool = True,
    fallback_store: SimulationConfig | None = None,
) -> ReplayResult:
    """Continue the store in `home` by `days` days under `scenario`, driving the service at `url`."""
    from hn_assets.contracts import session_rules

    home = Path(home)
    previous = recorded_store(home) or fallback_store
    if previous is None:
        raise FileNotFoundError(
            f"no simulated store in {home} (simulator_truth/{STORE_RECORD} is missing): run `hn simulate` first"
        )
    if speed < 0:
        raise ValueError("speed must be >= 0 (0: as fast as the service answers)")
    check_service(url, api_key)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=".replay-", dir=home) as scratch:
        generated = generate(previous, days, scenario, Path(scratch))
        tag = f"{generated.first_day.isoformat()}-{previous.days}-{days}"
        lander = Lander(home, Path(scratch), generated.first_day, tag)
        visitors = plan_steps(generated.sessions, session_rules().max_snapshots)
        result = ReplayResult(days, scenario, generated.first_day.isoformat(), sessions=len(generated.sessions))
        asyncio.run(Driver(url, api_key, speed, concurrency, progress).run(visitors, lander, result))
        append_truth(home, generated.truth_rows)
        record_store(generated.cfg, home)
        result.landing_files = [str(p.relative_to(home)) for p in lander.landed]
        result.truth_rows = len(generated.truth_rows)
    result.wall_seconds = time.monotonic() - started
    return result
