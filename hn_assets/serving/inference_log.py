"""The inference log: one JSON line per answered `/score`, landed in the `inference_log` feed.

The scoring service holds one `InferenceLogWriter` per worker process and calls `append(record)`
after computing each answer and before returning it. The records land as JSON lines under
`<landing root>/inference_log/` and become `bronze_inference_log` through the ordinary ingest: the
contract (`contracts.FEEDS["inference_log"]`), the quarantine and the privacy filter are those of
every other feed, so a malformed line is quarantined with its reason, ids are pseudonymised and
the clickstream's consent rules apply (docs/privacy.md, "The inference log").

Record (the contract's fields; `example_record()` shows one):
    request_id, scored_at (UTC datetime or ISO text; filled with now if missing), visitor_id and
    user_id as the store backend sent them (raw: bronze pseudonymises them, like every feed),
    client_session_id, session_key (the service's `<visitor token>#<n>`, already a pseudonym),
    analytics_consent, personalization_consent, model_version, fallback, fallback_reason,
    feature_groups (comma-separated), features (the feature vector the model saw: a dict, written
    as a JSON object text, or that text; values only, no ids), raw_score, calibrated_score,
    decision (contracts.DECISIONS), uplift_p0, uplift_p1, margin, discount, latency_ms, device.
`schema_version` is added when missing. Fields outside the contract are ignored by the ingest.
`append` does not check the record (that would cost the hot path); the ingest does, and
`contract_reasons` checks records the same way in tests.

Durability. `append` encodes the record (orjson) and hands the line to the kernel with one
`os.write` on an `O_APPEND` descriptor before it returns, so an answered request is in the file's
page cache. The page cache belongs to the kernel, not to the process: a worker killed with SIGKILL
right after answering loses nothing, and no fsync per record is needed for that (it would cost
~0.1-10 ms per answer on the hot path for no gain against a process crash). What a process crash
cannot cover is a machine crash or power loss, which loses the page cache: a background thread
`fdatasync`s the open file every `sync_interval_seconds` (default 1 s) and every file is fsynced
before it is published, so a machine crash loses at most about the last second of records; a torn
last line is quarantined, not glued to the next record. Anything stricter needs replication off
the machine (e.g. the Kafka path in docs/scale-out.md), not a per-record fsync.

Files. A worker writes to a hidden `.<worker>-<UTC start>-<pid>-<n>.jsonl.part` that the ingest,
the landing sensor and the `landing_<feed>` observation never list (`landing.discover` takes only
`.jsonl`/`.csv`/`.parquet` names not starting with `.`). The file is rotated when it reaches
`max_bytes` or `max_age_seconds` (default 64 MiB / 5 min, so records reach bronze within one
ingest after that): it is fsynced, closed and renamed (atomically) to
`<worker>-<UTC start>-<pid>-<n>.jsonl`, which the ingest takes and never sees grow. An empty file
is removed, never published. The open file is held with an exclusive `flock`: on start-up a writer
finalises its own worker id's stale `.part` files (left by a killed predecessor) that no live
process holds; `finalise_stale(landing, None)` does the same for worker ids that will not come back.

One writer per process, created in the worker (after any fork); it is thread-safe (a lock around
the write, uncontended on the hot path). `close()` (also run at exit) publishes the open file.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from hn_assets.contracts import SCHEMA_VERSION

log = logging.getLogger(__name__)
FEED = "inference_log"
SUFFIX = ".jsonl"
PART = ".part"
MAX_BYTES = 64 * 1024 * 1024
MAX_AGE_SECONDS = 300.0
SYNC_INTERVAL_SECONDS = 1.0
# A `.part` of an unknown worker is finalised by `finalise_stale(..., None)` only once it is this old
# (and unlocked): a file created an instant ago may not be locked by its writer yet.
STALE_AFTER_SECONDS = 60.0
_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY
_JSON_TEXT_FIELDS = ("features",)


def feed_folder(landing_dir: Path) -> Path:
    """`<landing root>/inference_log`; a path that already is the feed folder is taken as it is."""
    landing_dir = Path(landing_dir)
    return landing_dir if landing_dir.name == FEED else landing_dir / FEED


def _worker_name(worker_id: str) -> str:
    """The worker id as a file-name part: [A-Za-z0-9_] only, so `-` separates the name's parts."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", str(worker_id))
    if not name:
        raise ValueError("worker_id is empty")
    return name


def encode(record: dict) -> bytes:
    """The record as one landing line (JSON, newline-terminated): `schema_version` and `scored_at`
    added when missing, `features` given as a dict (or anything JSON) written as its JSON text.
    The caller's dict is not changed."""
    features = record.get("features")
    if features is not None and type(features) is not str:
        record = {**record, "features": orjson.dumps(features, option=orjson.OPT_SERIALIZE_NUMPY).decode()}
    if "schema_version" not in record or "scored_at" not in record:
        record = {"schema_version": SCHEMA_VERSION, **record}
        if "scored_at" not in record:
            record["scored_at"] = datetime.now(UTC)
    return orjson.dumps(record, option=_OPTIONS)


class InferenceLogWriter:
    """Appends inference-log records for one worker (see the module docstring)."""

    def __init__(
        self,
        landing_dir: Path,
        worker_id: str,
        *,
        max_bytes: int = MAX_BYTES,
        max_age_seconds: float = MAX_AGE_SECONDS,
        sync_interval_seconds: float = SYNC_INTERVAL_SECONDS,
    ):
        self.folder = feed_folder(landing_dir)
        self.worker = _worker_name(worker_id)
        self.max_bytes, self.max_age, self.sync_interval = max_bytes, max_age_seconds, sync_interval_seconds
        self.folder.mkdir(parents=True, exist_ok=True)
        self.recovered = finalise_stale(self.folder, worker_id)
        self._lock = threading.Lock()
        self._retired: list[tuple[int, Path]] = []  # rotated files the background thread publishes
        self._seq = 0
        self._closed = False
        self._written = self._synced = 0
        self._open()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._background, name=f"inference-log-{self.worker}", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # ---- hot path -------------------------------------------------------------------------------
    def append(self, record: dict) -> None:
        """Write one record; when this returns, the line is in the kernel (see "Durability").
        Raises OSError if the write fails (e.g. disk full), ValueError after `close()`."""
        line = encode(record)
        with self._lock:
            if self._closed:
                raise ValueError("inference log writer is closed")
            fd = self._fd
            written = os.write(fd, line)
            while written < len(line):  # a short write to a regular file: write the rest
                written += os.write(fd, line[written:])
            self._bytes += written
            self._written += 1
            if self._bytes >= self.max_bytes:
                self._rotate_locked()

    # ---- files ----------------------------------------------------------------------------------
    def _open(self) -> None:
        """A new hidden `.part`, created exclusively and locked at once."""
        self._seq += 1
        stem = f"{self.worker}-{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{os.getpid()}-{self._seq:05d}{SUFFIX}"
        part = self.folder / f".{stem}{PART}"
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o640)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._fd, self._part, self._bytes = fd, part, 0
        self._deadline = time.monotonic() + self.max_age

    def _rotate_locked(self) -> None:
        """Swap in a new file; the old one is published by the background thread (its fsync stays
        off the hot path). Killed before that, it is a stale `.part` the next start publishes."""
        self._retired.append((self._fd, self._part))
        self._open()
        self._wake.set()

    def _publish(self, fd: int, part: Path) -> Path | None:
        try:
            empty = os.fstat(fd).st_size == 0
            if not empty:
                os.fsync(fd)
        finally:
            os.close(fd)
        if empty:
            part.unlink(missing_ok=True)
            return None
        return _rename_final(part)

    def _publish_retired(self) -> None:
        with self._lock:
            retired, self._retired = self._retired, []
        for fd, part in retired:
            try:
                self._publish(fd, part)
            except OSError:  # it stays a `.part`: the next start of this worker publishes it
                log.exception("could not publish %s", part)

    def _background(self) -> None:
        """Time-based rotation, publishing rotated files, and the periodic fdatasync."""
        tick = max(0.01, min(self.sync_interval, self.max_age, 1.0))
        next_sync = time.monotonic() + self.sync_interval
        while True:
            self._wake.wait(tick)
            self._wake.clear()
            try:
                with self._lock:
                    if self._closed:
                        return
                    now = time.monotonic()
                    if now >= self._deadline:
                        if self._bytes:
                            self._rotate_locked()
                        else:
                            self._deadline = now + self.max_age  # nothing to publish: keep the file
                    fd, written = self._fd, self._written
                if now >= next_sync:
                    next_sync = now + self.sync_interval
                    if written != self._synced:
                        # Before publishing: `fd` may have been retired since, but only this thread
                        # closes retired files (and close(), after joining it), so it is still open.
                        os.fdatasync(fd)
                        self._synced = written
                self._publish_retired()
            except Exception:  # the writer keeps appending; a stale .part is recovered at start
                log.exception("inference log background step failed")
                time.sleep(tick)

    def close(self) -> None:
        """Publish the open file and stop; idempotent. Appends after this raise ValueError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        self._thread.join()
        with self._lock:
            self._retired.append((self._fd, self._part))
        self._publish_retired()
        atexit.unregister(self.close)

    def __enter__(self) -> InferenceLogWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _final_name(part: Path) -> Path:
    return part.with_name(part.name.removeprefix(".").removesuffix(PART))


def _rename_final(part: Path) -> Path:
    """Rename `.x.jsonl.part` to `x.jsonl` atomically and make the rename durable."""
    final = _final_name(part)
    os.rename(part, final)
    dir_fd = os.open(part.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final


def finalise_stale(
    landing_dir: Path, worker_id: str | None, stale_after_seconds: float = STALE_AFTER_SECONDS
) -> list[Path]:
    """Publish `.part` files no live writer holds: those of `worker_id` (its killed predecessor's),
    or with None those of any worker that are older than `stale_after_seconds`. A file some process
    still holds (its flock) is left alone; an empty one is removed; a last line without its newline
    (a torn write after a machine crash) gets one, so the ingest quarantines it rather than joining
    it to another record. Returns the published files."""
    folder = feed_folder(landing_dir)
    prefix = "." if worker_id is None else f".{_worker_name(worker_id)}-"
    return publish_unheld(folder, f"{prefix}*{SUFFIX}{PART}", None if worker_id else stale_after_seconds)


def publish_unheld(folder: Path, pattern: str, older_than_seconds: float | None = None) -> list[Path]:
    """`finalise_stale` for any landing folder (the live clickstream appender uses it too): the
    `.part` files matching `pattern` that no process holds with its flock (and, when given, last
    written over `older_than_seconds` ago) are published."""
    if not folder.exists():
        return []
    published = []
    for part in sorted(folder.glob(pattern)):
        try:
            fd = os.open(part, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # published by another process meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer's file
            status = os.fstat(fd)
            if older_than_seconds is not None and time.time() - status.st_mtime < older_than_seconds:
                continue
            if not os.path.exists(part):
                continue  # published between our listing and our lock
            if status.st_size == 0:
                part.unlink(missing_ok=True)
                continue
            if os.pread(fd, 1, status.st_size - 1) != b"\n":
                os.write(fd, b"\n")
            os.fsync(fd)
            published.append(_rename_final(part))
        finally:
            os.close(fd)
    return published


# ---- the record's shape, for the service's code and tests --------------------------------------
def example_record(**overrides) -> dict:
    """One valid record (the contract's fields, as the service fills them); `overrides` replace
    or add fields."""
    record = {
        "schema_version": SCHEMA_VERSION,
        "request_id": "req-00000001",
        "scored_at": datetime.now(UTC),
        "visitor_id": "v000123",
        "user_id": "C0000042",
        "client_session_id": "cs-77",
        "session_key": "3f0c1b2a9d8e7f6a5b4c3d2e#4",
        "analytics_consent": True,
        "personalization_consent": True,
        "model_version": "7",
        "fallback": False,
        "fallback_reason": None,
        "feature_groups": "user_history,product_signals,session_activity",
        "features": {"page_views_so_far": 3, "cart_adds_so_far": 1, "seconds_since_session_start": 124.5},
        "raw_score": 0.31,
        "calibrated_score": 0.27,
        "decision": "no_discount",
        "uplift_p0": 0.27,
        "uplift_p1": 0.29,
        "margin": 180.0,
        "discount": 25.0,
        "latency_ms": 1.8,
        "device": "mobile",
    }
    record.update(overrides)
    return record


def contract_reasons(records: list[dict]) -> list[str | None]:
    """What the ingest's contract check says of each record, written as `append` writes it: None
    for a record bronze takes, else the quarantine reason. For tests; not for the hot path."""
    import tempfile

    from hn_assets.contracts import FEEDS
    from hn_assets.ingest.landing import LINE_COL, read_jsonl
    from hn_assets.ingest.validate import REASON_COL, check

    contract = FEEDS[FEED]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"check{SUFFIX}"
        path.write_bytes(b"".join(encode(r) for r in records))
        accepted, rejected = check(read_jsonl(path, contract), contract)
    reasons: list[str | None] = [None] * len(records)
    for line, reason in zip(rejected[LINE_COL].to_list(), rejected[REASON_COL].to_list()):
        reasons[line - 1] = reason
    assert accepted.height + rejected.height == len(records)
    return reasons
