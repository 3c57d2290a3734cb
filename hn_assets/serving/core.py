"""The scoring service's logic, without HTTP or BentoML: `/score` and `/events` as functions.

`ServingCore.score(request)` pseudonymises the ids (privacy.LiveIds: bronze's rules and key),
resolves the session (sessions.LiveSessions: the 30-minute rule, shared state), reads the online
features (online.LeanOnlineReader), computes the request-time features at the scoring time
(features.request_time, the one definition both sides use), scores with the champion's own fitted
parts (model.Champion), decides the discount (models.policy with the uplift model's p0, p1) and
appends the answer to the inference log. Anything unavailable (no model, an unreadable online
store) gives the documented fallback: the segment prior of the training data for the visitor's
device (else overall), `fallback: true`, no reasons, `no_discount`. It never raises for a valid
request.

`ServingCore.events(batch)` places each event in its session, advances the in-session features
with `online.session.SessionFeatures` (held equal to dbt's fct_session_snapshots), pushes the
snapshots through Feast's push path and appends the raw events to `landing/clickstream_events/`
(hidden `.part` files published atomically, as the inference log does), so the batch layer ingests
exactly what the service saw.
"""

from __future__ import annotations

import fcntl
import itertools
import math
import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from hn_assets.features.request_time import request_time_features, user_history_in_session
from hn_assets.models.policy import expected_gain
from hn_assets.online.session import SNAPSHOT_COUNTS, SNAPSHOT_FEATURES
from hn_assets.serving.online import PRODUCT_VIEW, SESSION_VIEW, USER_VIEW, OnlineStoreUnavailable

_DEPTH = {True: "policy: offer to no one", False: "policy: offer to everyone"}  # an infinite cutoff
DEFAULT_PRIOR = 0.03  # only when not even the training data's prior is known (no model folder at all)


class LandingAppender:
    """Raw events to `<landing>/clickstream_events/` as JSON lines: a hidden `.part` per worker,
    published (renamed to `.jsonl`) every `max_age_seconds` and at close, never seen half-written.
    The open `.part` is held with an flock, as the inference log's: at start a worker publishes
    only the parts of its name no live process holds (a killed predecessor's), never those of
    another server's worker of the same name on the same HN_HOME."""

    def __init__(self, landing_dir: Path, worker: str, max_age_seconds: float = 60.0):
        from hn_assets.serving.inference_log import publish_unheld

        self.folder = Path(landing_dir) / "clickstream_events"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.worker, self.max_age = worker, max_age_seconds
        self._lock, self._fd, self._seq = threading.Lock(), None, 0
        publish_unheld(self.folder, f".live-{worker}-*.jsonl.part")
        # Publishing also on a timer: after the last event of a burst the batch would otherwise
        # not see it until the next event arrives (or the worker stops).
        self._closed = threading.Event()
        threading.Thread(target=self._publish_when_due, name="live-events-publisher", daemon=True).start()

    def _publish_when_due(self) -> None:
        while not self._closed.wait(min(self.max_age, 1.0)):
            with self._lock:
                if self._fd is not None and time.monotonic() >= self._deadline:
                    self._publish_locked()

    def _publish_path(self, part: Path) -> None:
        if part.stat().st_size == 0:
            part.unlink(missing_ok=True)
        else:
            os.rename(part, part.with_name(part.name.removeprefix(".").removesuffix(".part")))

    def append(self, records: list[dict]) -> None:
        data = b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z) for r in records)
        with self._lock:
            now = time.monotonic()
            if self._fd is not None and now >= self._deadline:
                self._publish_locked()
            if self._fd is None:
                self._seq += 1
                name = f".live-{self.worker}-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{os.getpid()}-{self._seq}.jsonl.part"
                self._part = self.folder / name
                self._fd = os.open(self._part, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._deadline = now + self.max_age
            os.write(self._fd, data)

    def _publish_locked(self) -> None:
        if self._fd is None:
            return
        try:
            self._publish_path(self._part)  # renamed while still held: no other worker takes it meanwhile
        finally:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self._publish_locked()


class ServingCore:
    def __init__(
        self,
        ids,
        sessions,
        reader,
        pusher=None,
        model=None,
        log=None,
        landing=None,
        model_error: str | None = None,
    ):
        self.ids, self.sessions, self.reader, self.pusher = ids, sessions, reader, pusher
        self.log, self.landing = log, landing
        self.model_error = model_error
        self.model = model
        self._id_prefix, self._ids = uuid.uuid4().hex[:24], itertools.count(1)

    @property
    def model(self):
        """The loaded model (LoadedModel) or None. Replaced whole by `swap_model` (one reference
        assignment: atomic under the GIL); a request reads it once and uses that one throughout."""
        return self._model

    @model.setter
    def model(self, model) -> None:
        self._model = model
        self.features = list(model.champion.features) if model else []

    def _request_id(self) -> str:
        """A unique id without a syscall: this process's random prefix and a counter (uuid4 reads
        the OS's random source for each id)."""
        return f"{self._id_prefix}{next(self._ids):08x}"

    def swap_model(self, model) -> None:
        """Serve `model` from the next request on (the old one finishes the requests it began)."""
        self.model = model
        self.model_error = None

    # ---- /score ---------------------------------------------------------------------------------
    def score(self, req, started: float | None = None) -> dict:
        """The answer to one validated ScoreRequest (a dict shaped like ScoreResponse)."""
        started = started or time.perf_counter()
        model = self._model  # one model for the whole request, even if it is swapped meanwhile
        at = req.as_of or datetime.now(UTC)
        consent = req.consent
        visitor, user, client_session = self.ids.ids(
            req.visitor_id, req.user_id, req.client_session_id, consent.analytics, at
        )
        number, live = self.sessions.current(visitor, at)
        session_key = f"{visitor}#{number}"
        context = req.context
        features: dict = {}
        groups: list[str] = []
        fallback_reason = None if model else (self.model_error or "no model loaded")
        if live is None:
            features.update(dict.fromkeys(SNAPSHOT_COUNTS, 0))
        session_row, session_ts, personalised, history, history_ts = {}, None, False, {}, None
        user = user or (live.user if live is not None and consent.analytics else None)
        product = live.last_product if live is not None else None
        wanted = [(SESSION_VIEW, session_key)]
        if consent.personalisation and user:
            wanted.append((USER_VIEW, user))
        if product:
            wanted.append((PRODUCT_VIEW, product))
        try:
            got = self.reader.read_many(wanted)  # one statement for every view
            session_row, session_ts = got[SESSION_VIEW]
            if session_row:
                features.update({k: session_row.get(k) for k in SNAPSHOT_FEATURES})
                groups.append("session")
            personalised = bool(consent.personalisation and user)
            if personalised:
                history, history_ts = got[USER_VIEW]
                groups.append("user_history")
                features.update(
                    {k: history.get(k) for k in ("lifetime_purchase_count", "avg_order_value_90d", "sessions_last_30d")}
                )
            if product:
                signals = got[PRODUCT_VIEW][0]
                if signals:
                    groups.append("product_signals")
                    features.update(signals)
        except OnlineStoreUnavailable as exc:
            fallback_reason = f"online store unavailable: {exc}"
            personalised, history = False, {}
        # Request-time features at the scoring time (one definition, features/request_time.py).
        start = live.state._first if live is not None else None
        if (
            start is None
            and session_row
            and session_ts is not None
            and session_row.get("seconds_since_start") is not None
        ):
            start = session_ts - timedelta(seconds=float(session_row["seconds_since_start"]))
        if personalised:  # this session counted as the batch will count it (request_time.py)
            features.update(user_history_in_session(history, history_ts, start))
        timezone = live.timezone if live is not None else context.timezone
        # Without analytics consent the batch sees the visitor-day's times shifted (bronze's privacy
        # rule): the local-time features are taken at the same shifted time; durations are unchanged.
        shift = self.ids.time_shift(visitor, at) if not consent.analytics else timedelta(0)
        now_features = request_time_features(
            at + shift, start + shift if start else None, timezone, history.get("last_purchase_at")
        )
        for name, value in now_features.items():
            if value is not None or name == "days_since_last_purchase":
                features[name] = value
        if live is None and features.get("seconds_since_start") is None:
            features["seconds_since_start"] = 0.0
        features["device"] = (
            (live.state.device if live is not None else None) or features.get("device") or context.device
        )
        features["channel"] = (
            (live.state.channel if live is not None else None) or features.get("channel") or context.channel
        )

        vector = {name: features.get(name) for name in (model.champion.features if model else ())}
        answer = {
            "request_id": req.request_id or self._request_id(),
            "session_key": session_key,
            "new_session": live is None and "session" not in groups,
            "model_version": model.champion.version if model else None,
            "feature_groups": groups,
            "personalised": personalised,
        }
        if fallback_reason is None:
            score = model.champion.predict(vector)
            answer |= {
                "probability": score.probability,
                "raw_score": score.raw,
                "reasons": model.champion.reasons(score, vector),
                "fallback": False,
                "fallback_reason": None,
                "decision": self._decide(model, features, live, shift),
            }
        else:
            answer |= {
                "probability": self._prior(features.get("device"), model),
                "raw_score": None,
                "reasons": [],
                "fallback": True,
                "fallback_reason": fallback_reason,
                "decision": self._no_offer("fallback", model),
            }
        latency_ms = (time.perf_counter() - started) * 1000
        if self.log is not None:
            self._log(req, answer, vector, client_session, latency_ms, at)
        return answer

    def _prior(self, device: str | None, model=None) -> float:
        model = model or self._model
        priors = model.priors if model else getattr(self, "priors", {})
        return float(priors.get("device", {}).get(device, priors.get("overall", DEFAULT_PRIOR)))

    def _no_offer(self, reason: str, model=None) -> dict:
        model = model or self._model
        uplift = model.uplift if model else None
        return {
            "offer_discount": False,
            "p0": None,
            "p1": None,
            "margin": uplift.margin if uplift else 0.0,
            "discount": uplift.discount if uplift else 0.0,
            "expected_gain": None,
            "cutoff": uplift.cutoff if uplift else 0.0,
            "reason": reason,
        }

    def _decide(self, model, features: dict, live, shift: timedelta) -> dict:
        uplift = model.uplift
        if uplift is None:
            return self._no_offer("no uplift model", model)
        # Pre-treatment covariates: what was known at the session's first event (its time shifted as
        # the batch sees it, for a visitor without consent).
        first = live.state._first if live is not None else None
        tz = live.timezone if live is not None else None
        at_start = request_time_features(first + shift, None, tz) if tz and first else {}
        covariates = {
            "device": features.get("device"),
            "channel": features.get("channel"),
            "country": live.country if live is not None else None,
            "local_hour": at_start.get("local_hour", features.get("local_hour")),
            "is_weekend": at_start.get("is_weekend", features.get("is_weekend")),
            **{k: features.get(k) for k in ("lifetime_purchase_count", "avg_order_value_90d", "sessions_last_30d")},
            "days_since_last_purchase": features.get("days_since_last_purchase"),
        }
        p0, p1 = uplift.p0_p1(covariates)
        gain = expected_gain(p0, p1, uplift.margin, uplift.discount)
        return {
            "offer_discount": gain > uplift.cutoff,
            "p0": p0,
            "p1": p1,
            "margin": uplift.margin,
            "discount": uplift.discount,
            "expected_gain": gain,
            # JSON has no infinity: a depth of "everyone" / "no one" is said in `reason` instead.
            "cutoff": uplift.cutoff if math.isfinite(uplift.cutoff) else None,
            "reason": "policy" if math.isfinite(uplift.cutoff) else _DEPTH[uplift.cutoff > 0],
        }

    def _log(self, req, answer: dict, vector: dict, client_session, latency_ms: float, at: datetime) -> None:
        decision = answer["decision"]
        self.log.append(
            {
                "request_id": answer["request_id"],
                "scored_at": at,
                "visitor_id": req.visitor_id,  # raw: bronze pseudonymises (inference_log contract)
                "user_id": req.user_id,
                "client_session_id": req.client_session_id,
                "session_key": answer["session_key"],
                "analytics_consent": req.consent.analytics,
                "personalization_consent": req.consent.personalisation,
                "model_version": answer["model_version"],
                "fallback": answer["fallback"],
                "fallback_reason": answer["fallback_reason"],
                "feature_groups": ",".join(answer["feature_groups"]),
                "features": vector,
                "raw_score": answer["raw_score"],
                "calibrated_score": answer["probability"],
                "decision": "offer_discount" if decision["offer_discount"] else "no_discount",
                "uplift_p0": decision["p0"],
                "uplift_p1": decision["p1"],
                "margin": decision["margin"],
                "discount": decision["discount"],
                "latency_ms": latency_ms,
                "device": vector.get("device") or req.context.device,
            }
        )

    # ---- /events --------------------------------------------------------------------------------
    def events(self, batch) -> dict:
        """Apply a validated EventsRequest: sessions, push, landing."""
        placed = []
        for e in batch.events:
            visitor, user, client_session = self.ids.ids(
                e.visitor_id, e.user_id, e.client_session_id, e.analytics_consent, e.event_timestamp
            )
            placed.append(
                (
                    visitor,
                    {
                        "event_id": e.event_id,
                        "event_type": e.event_type,
                        "event_timestamp": e.event_timestamp,
                        "product_id": e.product_id,
                        "user_id": user,
                        "timezone": e.timezone,
                        "device": e.device,
                        "channel": e.channel,
                        "country": e.country,
                        "client_session_id": client_session,
                    },
                )
            )
        pushed = [0]

        def push(snapshots: list[dict]) -> None:
            if self.pusher is not None:
                pushed[0] += self.pusher.push(snapshots)

        keys = self.sessions.apply(placed, push)
        if self.landing is not None:
            self.landing.append([e.model_dump(mode="json") for e in batch.events])
        return {"accepted": len(keys), "sessions": keys, "snapshots_pushed": pushed[0]}
