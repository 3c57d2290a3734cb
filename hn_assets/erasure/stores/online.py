"""The Feast online store (SQLite by default, or Redis): the subject's entity keys.

The keys are the customer's `user_id` token and their session keys `<visitor token>#<n>`; they are
found by decoding every stored entity key (Feast's own serialisation) and matching its values, so
no list of sessions has to be known in advance. SQLite is vacuumed afterwards: deleted rows
would otherwise stay readable in the database file's free pages. Rejected: Feast's
`delete_entity_values`, which Redis alone implements and which deletes a whole entity type.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl

from hn_assets.erasure.registry import StoreAbsent
from hn_assets.erasure.subject import Matcher, Subject

SERIALIZATION_VERSION = 3  # features/store.py: entity_key_serialization_version


def _entity_text(blob: bytes) -> str:
    """An entity key's values as one text (`|` separates ids, so each still matches as a piece)."""
    from feast.infra.key_encoding_utils import deserialize_entity_key

    key = deserialize_entity_key(bytes(blob), entity_key_serialization_version=SERIALIZATION_VERSION)
    return "|".join(str(getattr(v, v.WhichOneof("val") or "string_val", "")) for v in key.entity_values)


def _matching(blobs: list[bytes], matcher: Matcher) -> list[bytes]:
    if not blobs:
        return []
    texts = pl.Series("text", [_entity_text(b) for b in blobs])
    hit = texts.to_frame().select(matcher.text(pl.col("text")))["text"].to_list()
    return [b for b, h in zip(blobs, hit) if h]


class OnlineStore:
    """`config` is the Feast RepoConfig the feature-store resource builds."""

    def __init__(self, name: str, config):
        self.name, self.config = name, config
        self.notes: list[str] = []

    def scan(self, subject: Subject) -> int:
        return self._run(subject, delete=False)

    def erase(self, subject: Subject) -> int:
        return self._run(subject, delete=True)

    def _run(self, subject: Subject, delete: bool) -> int:
        kind = self.config.online_store.type
        if kind == "sqlite":
            return _sqlite(Path(self.config.online_store.path), subject.matcher, delete)
        if kind == "redis":
            return _redis(self.config, subject.matcher, delete)
        raise StoreAbsent(f"online store type {kind!r} is not supported by the erasure")


def _sqlite(path: Path, matcher: Matcher, delete: bool) -> int:
    """Matching entity keys (and rows whose text value holds a key) over every feature view table."""
    if not path.exists():
        raise StoreAbsent("no online_store.db (nothing materialised yet)")
    con = sqlite3.connect(path)
    try:
        found = 0
        for (table,) in con.execute("select name from sqlite_master where type = 'table'").fetchall():
            columns = {row[1] for row in con.execute(f'pragma table_info("{table}")')}
            if "entity_key" not in columns:
                continue
            blobs = [row[0] for row in con.execute(f'select distinct entity_key from "{table}"')]
            keys = _matching(blobs, matcher)
            found += len(keys)
            if delete and keys:
                con.executemany(f'delete from "{table}" where entity_key = ?', [(k,) for k in keys])
            if "value_text" in columns:
                found += _text_values(con, table, matcher, delete)
        con.commit()
        if delete:
            con.execute("vacuum")
        return found
    finally:
        con.close()


def _text_values(con, table: str, matcher: Matcher, delete: bool) -> int:
    rows = con.execute(f'select rowid, value_text from "{table}" where value_text is not null').fetchall()
    if not rows:
        return 0
    texts = pl.Series("text", [r[1] for r in rows], pl.String)
    hit = texts.to_frame().select(matcher.text(pl.col("text")))["text"].to_list()
    ids = [r[0] for r, h in zip(rows, hit) if h]
    if delete and ids:
        con.executemany(f'delete from "{table}" where rowid = ?', [(i,) for i in ids])
    return len(ids)


def _redis(config, matcher: Matcher, delete: bool) -> int:
    """Feast's Redis layout: one hash per entity, keyed `<serialised entity key><project>`."""
    from feast.infra.online_stores.redis import RedisOnlineStore

    client = RedisOnlineStore()._get_client(config.online_store)  # Feast's own connection-string parsing
    suffix = config.project.encode()
    keys = list(client.scan_iter(match=b"*" + suffix))
    entity_keys = {k[: -len(suffix)]: k for k in keys}
    hits = [entity_keys[b] for b in _matching(list(entity_keys), matcher)]
    if delete and hits:
        client.delete(*hits)
    return len(hits)
