"""Pseudonymisation at the live edge: the bronze rules, applied to one request or event.

The rules are not restated here: each id field's treatment is read from the clickstream contract
(`Field.privacy`, `Field.without_consent`), and the tokens come from bronze's own `Pseudonymiser`
with the lake's key (`Settings.pseudonym_key`, checked against the bronze fingerprint), so an online
key meets the batch features of the same person. `tests/unit/test_serving_privacy.py` holds
`LiveIds` equal to `ingest.privacy.apply_privacy` on the same rows.

Without analytics consent: a `salt` field becomes the token of `<value>|<UTC day>` (the visitor is
known for the day only), a `drop` field is None, and a `shift` time moves by the day token's secret
offset (`time_shift`): the service computes local-time features at that time, as the batch does
from bronze's shifted events, so they agree in training and serving.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from hn_assets.contracts import FEEDS
from hn_assets.ingest.privacy import SHIFT_WINDOW, Pseudonymiser

CLICKSTREAM = FEEDS["clickstream_events"]
ID_FIELDS = ("visitor_id", "user_id", "client_session_id")


class LiveIds:
    """Tokens for the ids of a live request, by the clickstream contract's rules."""

    def __init__(self, key: bytes, contract=CLICKSTREAM):
        self._p = Pseudonymiser(key)
        self._rules = {f.name: f for f in contract.fields}
        self.token = lru_cache(maxsize=65536)(self._p.token)

    def field(self, name: str, value: str | None, consented: bool, at: datetime) -> str | None:
        """The value of field `name` as bronze would hold it for an event at `at`."""
        if value is None:
            return None
        rule = self._rules[name]
        if not consented and rule.without_consent == "drop":
            return None
        if not consented and rule.without_consent == "salt":
            value = f"{value}|{at.astimezone(UTC).date().isoformat()}"
            return self.token(value)
        if rule.privacy == "pseudonymise":
            return self.token(value)
        return value

    def ids(self, visitor_id: str, user_id: str | None, client_session_id: str | None, consented: bool, at: datetime):
        """(visitor token, user token or None, client session id or None)."""
        return (
            self.field("visitor_id", visitor_id, consented, at),
            self.field("user_id", user_id, consented, at),
            self.field("client_session_id", client_session_id, consented, at),
        )

    def time_shift(self, visitor_token: str, at: datetime) -> timedelta:
        """Bronze's shift of the times of a visitor-day without consent (`privacy._shift_without_consent`:
        the offset of `<day token>|<UTC day>`), for `visitor_token` as `ids` returns it without consent."""
        key = f"{visitor_token}|{at.astimezone(UTC).date().isoformat()}"
        return timedelta(milliseconds=self._p.shift_ms(key, int(SHIFT_WINDOW.total_seconds() * 1000)))
