"""The alert sink: a JSON log line always; a POST to a webhook when configured, checked against a
local HTTP receiver this test starts; a dead webhook never raises."""

import json
import logging
import socket
import threading
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from hn_assets.monitoring.alerts import AlertSink


class Receiver:
    """An HTTP server on a free local port that keeps every JSON body POSTed to it."""

    def __init__(self, status: int = 200):
        received, code = [], status

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append({"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)})
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.received = received
        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _lines(caplog):
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "hn_assets.alerts"]


def test_without_a_webhook_an_alert_is_one_json_log_line(caplog):
    caplog.set_level(logging.INFO, logger="hn_assets.alerts")
    alert = AlertSink().send("drift", "warning", "feature drift", drifted_share=0.6, features=["device"])
    assert alert["delivered"] is None
    (line,) = _lines(caplog)
    assert line["alert"] == "drift" and line["severity"] == "warning" and line["drifted_share"] == 0.6
    assert line["features"] == ["device"] and line["at"]


def test_with_a_webhook_the_alert_is_posted_as_json(caplog):
    caplog.set_level(logging.INFO, logger="hn_assets.alerts")
    with Receiver() as receiver:
        alert = AlertSink(receiver.url).send("run_failure", "error", "run r1 failed", run_id="r1")
    assert alert["delivered"] is True
    (posted,) = receiver.received
    assert posted["path"] == "/hooks/alerts" and posted["type"] == "application/json"
    assert posted["body"]["alert"] == "run_failure" and posted["body"]["run_id"] == "r1"
    assert [line["alert"] for line in _lines(caplog)] == ["run_failure"]  # logged as well


def test_a_failing_or_dead_webhook_is_logged_and_never_raises(caplog):
    caplog.set_level(logging.INFO, logger="hn_assets.alerts")
    with Receiver(status=500) as receiver:
        assert AlertSink(receiver.url).send("skew", "warning", "skew")["delivered"] is False
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    assert AlertSink(dead, timeout_seconds=1).send("skew", "warning", "skew")["delivered"] is False
    assert [line["alert"] for line in _lines(caplog)] == ["skew", "webhook_failed", "skew", "webhook_failed"]


def test_unknown_severity_is_refused():
    with pytest.raises(ValueError):
        AlertSink().send("drift", "loud", "x")


def test_the_retraining_schedule_runs_exactly_every_14_days():
    from hn_assets.defs.automation import FORTNIGHT_EPOCH, is_retraining_week

    mondays = [FORTNIGHT_EPOCH + timedelta(weeks=w) for w in range(-10, 120)]
    runs = [d for d in mondays if is_retraining_week(d)]
    assert {(b - a).days for a, b in zip(runs, runs[1:])} == {14}
    assert date(2027, 1, 4) - date(2026, 12, 21) == timedelta(days=14)  # across a year end
    assert is_retraining_week(date(2026, 12, 21)) != is_retraining_week(date(2026, 12, 28))
