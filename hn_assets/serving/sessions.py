"""Which session an event or a score request belongs to: the 30-minute rule, shared by workers.

A session is a run of one visitor's events with no gap over `session_rules().timeout` (dbt's
`int_events_sessionised`, the same dbt var); its key is `<visitor token>#<n>`, n counting the
visitor's sessions from 1. The service must number sessions as dbt will, so it starts from what the
batch knows (`BatchSessions`, read from gold `fct_sessions`): an event at t inside (or within the
timeout after) the visitor's batch session k belongs to k; otherwise n is one more than the batch
sessions that ended before t. That also places replayed or late events where dbt puts them.

Live state (`LiveSessions`) is one SQLite file shared by all workers (`$HN_HOME/serving/
sessions.db`, WAL): per visitor token the current session's number, its first and last event
times and the running in-session state (`online.session.SessionFeatures`, held equal to dbt). An
event is applied in one `BEGIN IMMEDIATE` transaction (read, update, push, write), so two workers
never interleave a session's events and the pushed snapshot is always the newest. State is in
this file and in the online store, never in a worker.

The workers take turns through an `flock` on `sessions.db.lock` before `BEGIN IMMEDIATE`
(`acquire`): the kernel wakes the waiting worker the moment the other one releases it, and the
event loop can ask without blocking (app.py applies a small batch on the loop only once it holds
the turn). Rejected: SQLite's busy handler alone, which polls with sleeps of 1, 2, 5, 10, 15, ...
ms whatever the other worker's transaction (~1 ms) needs, and cannot be asked without waiting.
Checkpoints of the WAL run in a background thread (`online.WalCheckpointer`), not in the commit
of whichever event crossed SQLite's 1,000-page mark.
"""

from __future__ import annotations

import bisect
import fcntl
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from hn_assets.contracts import session_rules
from hn_assets.online.session import COUNTED, SessionFeatures
from hn_assets.serving.online import WalCheckpointer


def _epoch(t: datetime) -> float:
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


class BatchSessions:
    """Per visitor token, the sessions dbt has built: numbers, starts and ends (epoch seconds)."""

    def __init__(self, sessions: dict[str, tuple[list[int], list[float], list[float]]] | None = None):
        self._by_visitor = sessions or {}

    @classmethod
    def from_gold(cls, fct_sessions_glob: str) -> BatchSessions:
        import polars as pl

        try:
            frame = (
                pl.scan_parquet(fct_sessions_glob)
                .select("visitor_id", "session_number", "session_start", "session_end")
                .sort("visitor_id", "session_number")
                .collect()
            )
        except Exception:  # noqa: BLE001 - no gold yet (a fresh store): every visitor is new
            return cls()
        out: dict = {}
        grouped = frame.group_by("visitor_id", maintain_order=True).agg(
            pl.col("session_number"),
            pl.col("session_start").dt.epoch("ms") / 1000.0,
            pl.col("session_end").dt.epoch("ms") / 1000.0,
        )
        for visitor, numbers, starts, ends in grouped.iter_rows():
            out[visitor] = (numbers, starts, ends)
        return cls(out)

    def number_at(self, visitor: str, t: float, timeout: float) -> int:
        """The session number dbt gives an event of `visitor` at epoch `t`."""
        known = self._by_visitor.get(visitor)
        if not known:
            return 1
        numbers, starts, ends = known
        i = bisect.bisect_right(starts, t) - 1  # the last batch session starting at or before t
        if i >= 0 and t <= ends[i] + timeout:
            return numbers[i]
        if i + 1 < len(starts) and starts[i + 1] - t <= timeout:
            return numbers[i + 1]  # just before a known session: dbt would merge it into that one
        return (numbers[i] if i >= 0 else 0) + 1

    def __len__(self) -> int:
        return len(self._by_visitor)


@dataclass
class LiveSession:
    visitor: str
    number: int
    first_ts: float
    last_ts: float
    state: SessionFeatures
    country: str | None = None
    client_session_id: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.visitor}#{self.number}"

    @property
    def timezone(self) -> str:
        return self.state.timezone

    @property
    def last_product(self) -> str | None:
        return self.state._last_product

    @property
    def user(self) -> str | None:
        return self.state._user


def _dump(s: LiveSession) -> bytes:
    st = s.state
    return orjson.dumps(
        {
            "tz": st.timezone,
            "device": st.device,
            "channel": st.channel,
            "max": st.max_snapshots,
            "first": st._first.timestamp() if st._first else None,
            "counts": st._counts,
            "viewed": sorted(st._viewed),
            "events": st._events,
            "last_product": st._last_product,
            "user": st._user,
            "closed": st._closed,
            "country": s.country,
            "client_session_id": s.client_session_id,
        }
    )


def _load(visitor: str, number: int, first_ts: float, last_ts: float, blob: bytes) -> LiveSession:
    d = orjson.loads(blob)
    st = SessionFeatures(timezone=d["tz"], device=d["device"], channel=d["channel"], max_snapshots=d["max"])
    st._first = datetime.fromtimestamp(d["first"], tz=UTC) if d["first"] is not None else None
    st._counts = {name: int(d["counts"].get(name, 0)) for name in COUNTED.values()}
    st._viewed = set(d["viewed"])
    st._events, st._last_product, st._user, st._closed = d["events"], d["last_product"], d["user"], d["closed"]
    return LiveSession(visitor, number, first_ts, last_ts, st, d.get("country"), d.get("client_session_id"))


class LiveSessions:
    """The shared live session state (see the module docstring)."""

    def __init__(self, path: Path, batch: BatchSessions | None = None, timeout_seconds: float | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.batch = batch or BatchSessions()
        self.timeout = float(timeout_seconds if timeout_seconds is not None else session_rules().timeout_seconds)
        self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        # One writer transaction per worker at a time on the shared connection (this lock: the
        # threads of one worker), one per store (the flock: the workers; see the module docstring).
        # Re-entrant: the event loop may hold the turn (`acquire`) around a whole `apply`.
        self._write_lock = threading.RLock()
        self._flock = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self._depth = 0
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job, off the commit
        self._checkpointer = WalCheckpointer(self.path).start()
        self._read = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS live_sessions (visitor TEXT PRIMARY KEY, number INTEGER NOT NULL, "
            "first_ts REAL NOT NULL, last_ts REAL NOT NULL, state BLOB NOT NULL)"
        )

    def get(self, visitor: str, conn: sqlite3.Connection | None = None) -> LiveSession | None:
        """The visitor's live session (read connection unless `conn`: /score reads on its own
        connection, never inside an /events transaction)."""
        row = (
            (conn or self._read)
            .execute("SELECT number, first_ts, last_ts, state FROM live_sessions WHERE visitor = ?", (visitor,))
            .fetchone()
        )
        return _load(visitor, *row) if row else None

    def current(self, visitor: str, t: datetime) -> tuple[int, LiveSession | None]:
        """The visitor's session at scoring time t: (number, its live state or None for a session
        with no live events yet)."""
        at = _epoch(t)
        live = self.get(visitor)
        if live is not None and live.first_ts - self.timeout <= at and at - live.last_ts <= self.timeout:
            return live.number, live
        return self.batch.number_at(visitor, at, self.timeout), None

    def apply(self, events: list[tuple[str, dict]], on_snapshots) -> list[str]:
        """Apply events `(visitor token, event fields)` in one transaction: each is placed in its
        session, the session's state advanced with `SessionFeatures.add`; `on_snapshots(list)` is
        called with the snapshots (session_key added) inside the transaction (the push); returns the
        session key of each event. Event fields: event_id, event_type, event_timestamp (aware),
        product_id, user_id (token or None), timezone, device, channel, country, client_session_id."""
        self.acquire()
        try:
            return self._apply(events, on_snapshots)
        finally:
            self.release()

    def acquire(self, blocking: bool = True) -> bool:
        """Take the write turn: this worker's lock, then the store's flock. `blocking=False`
        returns False at once when another thread or worker has it, so the event loop can apply a
        small batch itself only when nothing can make it wait (app.py). Pair with `release`."""
        if not self._write_lock.acquire(blocking):
            return False
        if self._depth == 0:
            try:
                fcntl.flock(self._flock, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # only without blocking: the other worker's turn
                self._write_lock.release()
                return False
            except BaseException:
                self._write_lock.release()
                raise
        self._depth += 1
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self._flock, fcntl.LOCK_UN)
        self._write_lock.release()

    def _apply(self, events, on_snapshots) -> list[str]:
        from hn_assets.online.session import Event

        keys, snapshots, touched = [], [], {}
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for visitor, ev in events:
                at = _epoch(ev["event_timestamp"])
                live = touched.get(visitor) or self.get(visitor, conn)
                if live is None or not (live.first_ts - self.timeout <= at and at - live.last_ts <= self.timeout):
                    number = self.batch.number_at(visitor, at, self.timeout)
                    if live is not None and at > live.last_ts:
                        number = max(number, live.number + 1)
                    state = SessionFeatures(timezone=ev["timezone"], device=ev.get("device"), channel=ev.get("channel"))
                    live = LiveSession(visitor, number, at, at, state, ev.get("country"), ev.get("client_session_id"))
                live.first_ts, live.last_ts = min(live.first_ts, at), max(live.last_ts, at)
                snap = live.state.add(
                    Event(
                        ev["event_id"],
                        ev["event_type"],
                        ev["event_timestamp"].astimezone(UTC),
                        ev.get("product_id"),
                        ev.get("user_id"),
                    )
                )
                if snap is not None:
                    snapshots.append({"session_key": live.key, **snap})
                touched[visitor] = live
                keys.append(live.key)
            if snapshots:
                on_snapshots(snapshots)
            conn.executemany(
                "INSERT INTO live_sessions (visitor, number, first_ts, last_ts, state) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(visitor) DO UPDATE SET number = excluded.number, first_ts = excluded.first_ts, "
                "last_ts = excluded.last_ts, state = excluded.state",
                [(v, s.number, s.first_ts, s.last_ts, _dump(s)) for v, s in touched.items()],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return keys

    def close(self) -> None:
        self._checkpointer.stop()
        self._conn.close()
        self._read.close()
        os.close(self._flock)
