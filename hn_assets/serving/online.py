"""The online store at serving speed: a lean read of Feast's SQLite tables, and the push path.

Reads (`LeanOnlineReader`): one indexed `SELECT` (a UNION ALL over the views asked) on the tables
Feast itself writes (`<project>_<view>`, rows `(entity_key, feature_name, value, event_ts)` with
the entity key in Feast's v3 serialisation and the value a `ValueProto`), decoded with protobuf
directly (each distinct value once): ~15-30 µs per request instead of ~0.5 ms per view through
`get_online_features(...).to_dict()` (STACK_NOTES). It reads what Feast wrote, so it is
consistent with materialisation and with every push: `tests/integration/test_scoring_service.py`
holds it equal to `get_online_features` for the same entities, before and after a push. One
connection per worker (query_only), on a store the service puts in WAL mode at start-up
(`use_wal`): reads never wait for pushes or materialisations. Redis (`HN_ONLINE_STORE=redis`)
has no lean path here: the reader then goes through the SDK (`SdkOnlineReader`), correct but
slower.

Writes (`SessionPusher`): in-session snapshots go to the views of the push source
`session_features_push` through Feast's online write path (the provider's `online_write_batch`,
where `store.push` ends), so every worker's next read sees them.
"""

from __future__ import annotations

import os
import sqlite3
import struct
from datetime import UTC, datetime
from pathlib import Path

SESSION_VIEW, USER_VIEW, PRODUCT_VIEW = "session_activity", "user_history", "product_signals"
JOIN_KEYS = {SESSION_VIEW: "session_key", USER_VIEW: "user_id", PRODUCT_VIEW: "product_id"}
PUSH_SOURCE = "session_features_push"


class OnlineStoreUnavailable(RuntimeError):
    """The online store cannot be read (file missing, locked, corrupt): the caller falls back."""


def _python_value(proto):
    kind = proto.WhichOneof("val")
    if kind is None or kind == "null_val":
        return None
    value = getattr(proto, kind)
    if kind == "unix_timestamp_val":
        # Feast writes a missing timestamp as INT64_MIN (NaT): None, as get_online_features gives.
        return None if value <= -(2**62) else datetime.fromtimestamp(value, tz=UTC)
    return value


def _event_time(ts) -> datetime | None:
    """Feast stores `event_ts` as epoch seconds (push) or as text (older writes)."""
    if ts is None or isinstance(ts, datetime):
        parsed = ts
    elif isinstance(ts, int | float) or str(ts).lstrip("-").replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(ts), tz=UTC)
    else:
        parsed = datetime.fromisoformat(str(ts))
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


_MISSING = object()
_DECODED_MAX = 200_000


def use_wal(sqlite_path: Path) -> str | None:
    """Put Feast's SQLite online store in WAL mode (a property of the file: Feast's own writers
    follow it). Readers then neither take the shared lock of the rollback journal (a read fell
    from ~60 to ~15 µs) nor wait for a push or a materialisation, which in turn never wait for
    readers. Returns the journal mode, None when the file is missing or busy (then unchanged)."""
    if not Path(sqlite_path).exists():
        return None
    try:
        conn = sqlite3.connect(str(sqlite_path), timeout=2)
        try:
            return conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return None


class WalCheckpointer:
    """Checkpoints a WAL database from a daemon thread every `interval` seconds (PASSIVE: it waits
    for no reader or writer, and none waits for it), for writers that run with
    `wal_autocheckpoint=0`. Why: with SQLite's automatic checkpoint, the commit that crosses 1,000
    WAL pages copies them into the database and fsyncs both files before it returns; on the ~180 MB
    online store that commit was a push inside an /events request (in-process: p99 12.9 ms, max
    37 ms per single event, against p50 1.3 ms). Here the copy and the fsyncs run off every
    request (SQLite releases the GIL meanwhile). Each worker runs one per file; two at once simply
    take turns (a busy PASSIVE checkpoint returns at once)."""

    def __init__(self, path: Path, interval: float = 1.0):
        import threading

        self.path, self.interval = str(path), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hn-wal-checkpoint", daemon=True)

    def start(self) -> WalCheckpointer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        import logging

        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        try:
            while not self._stop.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:  # busy or the file replaced: the next round retries
                    logging.getLogger(__name__).debug("checkpoint of %s failed", self.path, exc_info=True)
        finally:
            conn.close()


class LeanOnlineReader:
    """Feature values of one entity per view, straight from Feast's SQLite online tables.

    Per request: one `stat` (a removed store file is noticed at once: SQLite would go on reading
    the unlinked inode) and one statement for all the views asked (`read_many`: a UNION ALL over
    the views' tables, so one lock round-trip, not one per view). Entity keys are Feast's v3
    serialisation of a single string key, built here without protobuf (checked byte for byte
    against `serialize_entity_key` at construction)."""

    def __init__(self, sqlite_path: Path, project: str, entity_key_serialization_version: int = 3):
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        self.path = Path(sqlite_path)
        self._path = str(self.path)
        self.project = project
        self._version = entity_key_serialization_version
        self._serialize, self._entity_key, self._value = serialize_entity_key, EntityKey, Value
        self._conn: sqlite3.Connection | None = None
        self._inode: tuple[int, int] | None = None
        self._proto = Value()
        self._decoded: dict[bytes, object] = {}
        self._sql = {
            view: f'SELECT feature_name, value, event_ts FROM "{project}_{view}" WHERE entity_key = ?'
            for view in JOIN_KEYS
        }
        self._many: dict[tuple[str, ...], str] = {}
        self._prefix = {view: self._key_prefix(key) for view, key in JOIN_KEYS.items()}
        for view in JOIN_KEYS:  # the lean key is Feast's key, or the reader is not used
            for sample in ("a", "visitor#12", "ü-ß"):
                if self.entity_key(view, sample) != self._feast_key(view, sample):
                    raise RuntimeError(f"entity key serialisation differs from Feast's for {view}")

    def _key_prefix(self, join_key: str) -> bytes:
        if self._version < 3:
            raise ValueError("entity key serialisation version 3 or later expected")
        k = join_key.encode()
        return struct.pack("<II", 1, 2) + struct.pack("<I", len(k)) + k + struct.pack("<I", 2)  # 2: STRING

    def _feast_key(self, view: str, value: str) -> bytes:
        key = self._entity_key(join_keys=[JOIN_KEYS[view]], entity_values=[self._value(string_val=value)])
        return self._serialize(key, entity_key_serialization_version=self._version)

    def entity_key(self, view: str, value: str) -> bytes:
        v = value.encode()
        return self._prefix[view] + len(v).to_bytes(4, "little") + v

    def _connection(self) -> sqlite3.Connection:
        """The open connection, after one stat of the file: missing -> unavailable; replaced (a
        new inode, e.g. a rebuilt store) -> reopened."""
        try:
            st = os.stat(self._path)
        except OSError as exc:
            self.close()
            raise OnlineStoreUnavailable(f"online store {self.path} does not exist") from exc
        inode = (st.st_dev, st.st_ino)
        if self._conn is not None and inode != self._inode:
            self.close()
        if self._conn is None:
            try:
                # Not `mode=ro`: a read-only connection cannot create the WAL index (-shm) of a
                # WAL database; query_only forbids writes all the same.
                conn = sqlite3.connect(self._path, timeout=5, check_same_thread=False)
                conn.execute("PRAGMA query_only = 1")
            except sqlite3.Error as exc:
                raise OnlineStoreUnavailable(f"cannot open {self.path}: {exc}") from exc
            self._conn, self._inode = conn, inode
        return self._conn

    def read(self, view: str, value: str) -> tuple[dict, datetime | None]:
        """({feature: value}, event time) of `value`'s row in `view`; ({}, None) when it has none.
        Raises OnlineStoreUnavailable when the store cannot be read."""
        return self.read_many(((view, value),))[view]

    def read_many(self, wanted) -> dict[str, tuple[dict, datetime | None]]:
        """`read` for several (view, value) pairs (distinct views) in one statement."""
        views = tuple(view for view, _ in wanted)
        sql = self._many.get(views)
        if sql is None:
            sql = " UNION ALL ".join(
                f'SELECT {i}, feature_name, value, event_ts FROM "{self.project}_{view}" WHERE entity_key = ?'
                for i, view in enumerate(views)
            )
            self._many[views] = sql
        try:
            rows = self._connection().execute(sql, [self.entity_key(v, x) for v, x in wanted]).fetchall()
        except sqlite3.Error as exc:
            self.close()
            raise OnlineStoreUnavailable(f"cannot read {', '.join(views)} from {self.path}: {exc}") from exc
        out = {view: ({}, None) for view in views}
        stamps: dict[int, object] = {}
        proto, decoded = self._proto, self._decoded
        for i, name, blob, event_ts in rows:
            value = decoded.get(blob, _MISSING)
            if value is _MISSING:  # values repeat (small counts, categories): decode each once
                proto.ParseFromString(blob)
                value = _python_value(proto)
                if len(decoded) >= _DECODED_MAX:
                    decoded.clear()
                decoded[blob] = value  # immutable values only (numbers, text, bool, datetime)
            out[views[i]][0][name] = value
            stamps[i] = event_ts
        for i, ts in stamps.items():
            out[views[i]] = (out[views[i]][0], _event_time(ts))
        return out

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn, self._inode = None, None


class SdkOnlineReader:
    """The same interface through `get_online_features` (Redis, or as the reference in tests)."""

    def __init__(self, store):
        self.store = store
        self._features = {
            view: [f"{view}:{f.name}" for f in store.get_feature_view(view).features] for view in JOIN_KEYS
        }

    def read(self, view: str, value: str) -> tuple[dict, datetime | None]:
        try:
            got = self.store.get_online_features(
                features=self._features[view], entity_rows=[{JOIN_KEYS[view]: value}]
            ).to_dict()
        except Exception as exc:
            raise OnlineStoreUnavailable(f"cannot read {view}: {exc}") from exc
        out = {k: v[0] for k, v in got.items() if k != JOIN_KEYS[view]}
        return ({} if all(v is None for v in out.values()) else out), None

    def read_many(self, wanted) -> dict[str, tuple[dict, datetime | None]]:
        return {view: self.read(view, value) for view, value in wanted}

    def close(self) -> None:
        pass


# Plain Python values Feast's type map turns into one field of a ValueProto (None: an empty Value),
# with samples `SessionPusher` checks against Feast's own conversion at start.
_LEAN = {
    "INT64": ("int64_val", (int,), (0, 7, -3, 2**40)),
    "INT32": ("int32_val", (int,), (0, 7, -3)),
    "DOUBLE": ("double_val", (float, int), (0.0, 1.5, -2.25, 3, 1e300)),
    "FLOAT": ("float_val", (float, int), (0.0, 1.5, 3)),
    "STRING": ("string_val", (str,), ("", "mobile", "ü-ß")),
    "BOOL": ("bool_val", (bool,), (True, False)),
}


class SessionPusher:
    """Writes in-session snapshots to the online store of every feature view fed by the push source
    `session_features_push`, as `store.push(..., to=PushMode.ONLINE)` does, without its per-call
    overhead: the views are resolved from the registry once, the values converted with Feast's own
    type map (`python_values_to_proto_values`, the conversion the push path applies to each
    column) and written with the provider's `online_write_batch`, the call the push path ends in.
    Measured: `store.push` of one snapshot cost ~15 ms of CPU, two thirds of it rebuilding feature
    views and services from the registry's protos (with typeguard checks) on every call and most
    of the rest pandas -> Arrow -> proto; this costs ~0.5 ms. Columns of plain values (int, float,
    str, bool, None) are converted here (`_lean_protos`, one Value per value; Feast's converter
    took ~0.6 ms of CPU per single-event push in its per-value type checks, and a single event
    went from 1.6 to 1.0 ms in-process with this), each type checked byte for byte against
    Feast's conversion at construction; any other value goes through Feast's converter.
    Rejected: `store.push` per event (/events managed ~70 requests/s), writing SQL into Feast's
    tables (the provider knows its store: SQLite or Redis).
    `tests/integration/test_scoring_service.py` holds the rows this writes equal, byte for byte,
    to the rows `store.push` writes for the same snapshot. A `feast apply` that changes these
    views needs a service restart (the views are read at start, as the reader's are).

    On SQLite the write connection runs with `synchronous=NORMAL` (WAL): a commit no longer waits
    for an fsync (~3-4 ms here); a power loss may lose the last pushes, which the next events and
    the batch layer rebuild (the online store is derived state). Its automatic checkpoint is off:
    a `WalCheckpointer` thread checkpoints instead, so no push pays for copying the WAL."""

    def __init__(self, store):
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.type_map import python_values_to_proto_values

        self.store, self.config = store, store.config
        self._entity_key, self._to_protos = EntityKey, python_values_to_proto_values
        self.views = [
            view
            for view in store.list_feature_views()
            if view.stream_source is not None and view.stream_source.name == PUSH_SOURCE
        ]
        if not self.views:
            raise ValueError(f"no feature view is fed by the push source {PUSH_SOURCE}")
        self.columns = [f.name for view in self.views for f in view.features]
        from feast.protos.feast.types.Value_pb2 import Value

        self._value = Value
        self._lean = {name: spec for name, spec in _LEAN.items() if self._lean_matches_feast(name, spec)}
        self.provider = store._get_provider()
        online = getattr(self.provider, "online_store", None)
        self.checkpointer = None
        if hasattr(online, "_get_conn") and self.config.online_store.type == "sqlite":
            conn = online._get_conn(self.config)
            conn.execute("PRAGMA synchronous=NORMAL")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                conn.execute("PRAGMA wal_autocheckpoint=0")
                self.checkpointer = WalCheckpointer(Path(online._get_db_path(self.config))).start()

    def _lean_matches_feast(self, type_name: str, spec) -> bool:
        from feast.value_type import ValueType

        samples = [*spec[2], None]
        feast = self._to_protos(samples, ValueType[type_name])
        lean = self._lean_protos(samples, spec)
        return lean is not None and [v.SerializeToString() for v in lean] == [v.SerializeToString() for v in feast]

    def _lean_protos(self, values: list, spec) -> list | None:
        """One Value per value, or None when a value is not plain (the caller then uses Feast's)."""
        field, types, _ = spec
        value, out = self._value, []
        for v in values:
            if v is None:
                out.append(value())
            elif type(v) in types and v == v:  # exact types (a bool is no int here); NaN: Feast's
                out.append(value(**{field: v}))
            else:
                return None
        return out

    def _protos(self, values: list, value_type) -> list:
        spec = self._lean.get(value_type.name)
        lean = self._lean_protos(values, spec) if spec is not None else None
        return lean if lean is not None else self._to_protos(values, value_type)

    def push(self, snapshots: list[dict]) -> int:
        """`snapshots`: dicts with session_key, as_of (aware) and the in-session features."""
        from feast.value_type import ValueType

        if not snapshots:
            return 0
        keys = self._protos([s["session_key"] for s in snapshots], ValueType.STRING)
        stamps = [s["as_of"] for s in snapshots]
        for view in self.views:
            join_key = view.entity_columns[0].name
            columns = {
                f.name: self._protos([s.get(f.name) for s in snapshots], f.dtype.to_value_type()) for f in view.features
            }
            rows = [
                (
                    self._entity_key(join_keys=[join_key], entity_values=[key]),
                    {name: values[i] for name, values in columns.items()},
                    stamps[i],
                    None,
                )
                for i, key in enumerate(keys)
            ]
            self.provider.online_write_batch(self.config, view, rows, progress=None)
        return len(snapshots)
