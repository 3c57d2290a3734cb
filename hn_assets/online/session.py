"""In-session features, computed from a session's events as they arrive.

The one Python home of the logic that dbt's `fct_session_snapshots` computes in SQL: the live
service uses it to push fresh features, and a test holds the two equal on the same events.
Definitions (mirror the SQL): events are ordered by (timestamp, event id); a snapshot is taken at
each event strictly before the session's first begin_checkout or purchase, at most
`max_snapshots` of them; counts include the event at `as_of`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from hn_assets.contracts import session_rules

CHECKOUT_EVENTS = frozenset({"begin_checkout", "purchase"})
COUNTED = {
    "page_view": "page_views_so_far",
    "product_view": "product_views_so_far",
    "add_to_cart": "cart_adds_so_far",
    "remove_from_cart": "cart_removes_so_far",
    "search": "searches_so_far",
}

# The model inputs of a snapshot (the fields of the feature view `session_activity`, in its order);
# the first seven are counts, zero before a session's first event.
SNAPSHOT_FEATURES = (
    "events_so_far",
    "page_views_so_far",
    "product_views_so_far",
    "distinct_products_so_far",
    "cart_adds_so_far",
    "cart_removes_so_far",
    "searches_so_far",
    "seconds_since_start",
    "local_hour",
    "is_weekend",
    "device",
    "channel",
)
SNAPSHOT_COUNTS = SNAPSHOT_FEATURES[:7]


@dataclass(frozen=True)
class Event:
    event_id: str
    event_type: str
    event_timestamp: datetime  # timezone-aware, UTC
    product_id: str | None = None
    user_id: str | None = None


@dataclass
class SessionFeatures:
    """Running state of one session; `add` returns the snapshot at that event (or None after checkout)."""

    timezone: str
    device: str | None = None
    channel: str | None = None
    max_snapshots: int = field(default_factory=lambda: session_rules().max_snapshots)
    _first: datetime | None = None
    _counts: dict = field(default_factory=lambda: dict.fromkeys(COUNTED.values(), 0))
    _viewed: set = field(default_factory=set)
    _events: int = 0
    _last_product: str | None = None
    _user: str | None = None
    _closed: bool = False

    def add(self, event: Event) -> dict | None:
        if self._closed or event.event_type in CHECKOUT_EVENTS:
            self._closed = True
            return None
        self._events += 1
        if self._events > self.max_snapshots:
            return None
        self._first = self._first or event.event_timestamp
        if event.event_type in COUNTED:
            self._counts[COUNTED[event.event_type]] += 1
        if event.event_type == "product_view" and event.product_id is not None:
            self._viewed.add(event.product_id)
        self._last_product = event.product_id or self._last_product
        self._user = event.user_id or self._user
        local = event.event_timestamp.astimezone(ZoneInfo(self.timezone))
        return {
            "snapshot_index": self._events,
            "as_of": event.event_timestamp,
            "user_id": self._user,
            "last_product_id": self._last_product,
            "events_so_far": self._events,
            **self._counts,
            "distinct_products_so_far": len(self._viewed),
            "seconds_since_start": round((event.event_timestamp - self._first).total_seconds(), 3),
            "local_hour": local.hour,
            "is_weekend": local.isoweekday() >= 6,
            "device": self.device,
            "channel": self.channel,
        }


def session_snapshots(
    events: list[Event],
    timezone: str,
    device: str | None = None,
    channel: str | None = None,
    max_snapshots: int | None = None,
) -> list[dict]:
    """Every snapshot of a session, in event order (the rows dbt writes to fct_session_snapshots)."""
    state = SessionFeatures(
        timezone=timezone, device=device, channel=channel, max_snapshots=max_snapshots or session_rules().max_snapshots
    )
    ordered = sorted(events, key=lambda e: (e.event_timestamp, e.event_id))
    return [s for s in (state.add(e) for e in ordered) if s is not None]
