"""The alert sink: every alert is one structured JSON log line (logger `hn_assets.alerts`, always),
and a JSON POST to a webhook when one is configured (HN_ALERT_WEBHOOK_URL; Slack-, Teams- or
Alertmanager-style receivers take a JSON body). Delivery never raises: a webhook that is down is
logged as a second line (`"delivered": false` with the error), so an alert cannot fail the run or
sensor that raised it.

An alert: {"alert": kind, "severity": info|warning|error, "summary": text, "at": UTC ISO time,
"source": "hn-platform", **details}. Kinds used by the platform: `run_failure`, `check_failed`,
`drift`, `performance`, `retrain_requested`, `skew`.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime

LOGGER = logging.getLogger("hn_assets.alerts")
SEVERITIES = ("info", "warning", "error")


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


@dataclass(frozen=True)
class AlertSink:
    webhook_url: str | None = None
    timeout_seconds: float = 5.0

    def send(self, kind: str, severity: str, summary: str, **details) -> dict:
        """Log the alert (always) and POST it to the webhook (when configured); returns the alert
        with `delivered` (None without a webhook, else whether the POST got a 2xx)."""
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
        alert = {
            "alert": kind,
            "severity": severity,
            "summary": summary,
            "at": datetime.now(UTC).isoformat(),
            "source": "hn-platform",
            **_plain(details),
        }
        level = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}[severity]
        LOGGER.log(level, json.dumps(alert, sort_keys=True))
        delivered = None
        if self.webhook_url:
            delivered, error = self._post(alert)
            if not delivered:
                LOGGER.error(json.dumps({"alert": "webhook_failed", "for": kind, "delivered": False, "error": error}))
        return {**alert, "delivered": delivered}

    def _post(self, alert: dict) -> tuple[bool, str | None]:
        body = json.dumps(alert).encode()
        request = urllib.request.Request(
            self.webhook_url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                return 200 <= response.status < 300, None
        except Exception as exc:  # noqa: BLE001 - an alert must never fail its caller
            return False, repr(exc)[:300]
