"""Artifact folders: MLflow's artifact store, and the reports folder.

Artifacts are files of any kind. JSON is pruned element by element (a list item that holds a key
goes, the rest stays), text files line by line, Parquet row by row. A binary file (a pickle) that
holds a key cannot be edited safely: it is named in the report as not erased. Model candidates
(pickles) hold no rows; input examples do.

The input example a model is logged with (`models/registry.log_candidate`) holds feature values
only, no keys, so a token search cannot find the customer in it: its rows are also compared with
the customer's own training-set rows (`example_rows`, read before the training sets are erased),
and a row equal to one of them is removed. An identical row of another customer would go too,
which costs an example row, not data.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

import polars as pl

from hn_assets.erasure.registry import CouldNotErase, StoreAbsent
from hn_assets.erasure.subject import Matcher, Subject

TEXT_SUFFIXES = {".txt", ".md", ".csv", ".html", ".yaml", ".yml", ".log", ".py", ""}


class ArtifactFilesStore:
    def __init__(
        self,
        name: str,
        roots: Callable[[], tuple[list[Path], list[str]]],
        exclude: tuple[str, ...] = (),
        example_rows: Callable[[Subject], pl.DataFrame] | None = None,
    ):
        """`roots` gives (local folders, remote locations that cannot be searched here)."""
        self.name, self.roots, self.exclude, self.example_rows = name, roots, exclude, example_rows
        self.notes: list[str] = []

    def files(self) -> tuple[list[tuple[Path, Path]], list[str]]:
        local, remote = self.roots()
        if not local and not remote:
            raise StoreAbsent("no artifact store")
        found = [
            (root, path)
            for root in local
            if root.exists()
            for path in sorted(root.rglob("*"))
            if path.is_file() and not any(path.relative_to(root).parts[0] == e for e in self.exclude)
        ]
        return found, remote

    def scan(self, subject: Subject) -> int:
        return self._run(subject, write=False)

    def erase(self, subject: Subject) -> int:
        return self._run(subject, write=True)

    def _run(self, subject: Subject, write: bool) -> int:
        files, remote = self.files()
        rows = self.example_rows(subject) if self.example_rows else pl.DataFrame()
        match = _Match(re.compile(subject.matcher.pattern), _row_keys(rows), subject.matcher)
        total, binaries = 0, []
        for root, path in files:
            count, erasable = _file(path, match, write)
            total += count
            if count and not erasable:
                binaries.append(str(path.relative_to(root)))
        if write:
            self.notes = [f"not searched: {r}" for r in remote]
            if binaries:
                self.notes.append("binary files holding a key, not erased: " + ", ".join(binaries[:10]))
            if binaries or remote:
                raise CouldNotErase("; ".join(self.notes), removed=total - len(binaries))
        return total


class _Match:
    def __init__(self, pattern: re.Pattern, rows: set[tuple], matcher: Matcher):
        self.pattern, self.rows, self.matcher = pattern, rows, matcher

    def text(self, text: str) -> bool:
        return bool(self.pattern.search(text))

    def row(self, columns: list[str], values: list) -> bool:
        return bool(self.rows) and _canonical_row(dict(zip(columns, values)), self.rows)


def _file(path: Path, match: _Match, write: bool) -> tuple[int, bool]:
    """(how much of the file holds a key, whether it can be erased)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return _json_file(path, match, write)
        if suffix == ".parquet":
            return _parquet_file(path, match, write), True
        if suffix in TEXT_SUFFIXES:
            return _text_file(path, match, write), True
    except (ValueError, UnicodeDecodeError, pl.exceptions.PolarsError):
        pass  # not what its name says: treat as binary
    return int(bool(match.pattern.search(path.read_bytes().decode("latin-1")))), False


def _json_file(path: Path, match: _Match, write: bool) -> tuple[int, bool]:
    """List items holding a key are removed; a key left elsewhere (a plain value) is reported."""
    content = json.loads(path.read_text())
    pruned, removed = _prune(content, match)
    if write and removed:
        _replace(path, json.dumps(pruned).encode())
    left = match.text(json.dumps(pruned))
    return removed + left, not left


def _prune(value, match: _Match):
    """The JSON value without the list items that hold a key; returns (value, items removed)."""
    if isinstance(value, dict):
        if isinstance(value.get("columns"), list) and isinstance(value.get("data"), list):  # pandas "split"
            kept = [r for r in value["data"] if not _split_row_hits(value["columns"], r, match)]
            return {**value, "data": kept}, len(value["data"]) - len(kept)
        removed, out = 0, {}
        for key, item in value.items():
            out[key], n = _prune(item, match)
            removed += n
        return out, removed
    if isinstance(value, list):
        kept = [v for v in value if not match.text(json.dumps(v))]
        removed, out = len(value) - len(kept), []
        for item in kept:
            pruned, n = _prune(item, match)
            out.append(pruned)
            removed += n
        return out, removed
    return value, 0


def _split_row_hits(columns: list, row, match: _Match) -> bool:
    values = row if isinstance(row, list) else [row]
    return match.text(json.dumps(values)) or match.row([str(c) for c in columns], values)


def _text_file(path: Path, match: _Match, write: bool) -> int:
    lines = path.read_text().split("\n")
    kept = [line for line in lines if not match.text(line)]
    if write and len(kept) < len(lines):
        _replace(path, "\n".join(kept).encode())
    return len(lines) - len(kept)


def _parquet_file(path: Path, match: _Match, write: bool) -> int:
    frame = pl.read_parquet(path)
    hit = match.matcher.rows(frame)
    if write and hit.any():
        buffer = io.BytesIO()
        frame.filter(~hit).write_parquet(buffer)
        _replace(path, buffer.getvalue())
    return int(hit.sum())


def _replace(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.erasing")
    temporary.write_bytes(content)
    os.replace(temporary, path)


# ---- rows of the subject's training data, as comparable values --------------------------------
def _canonical(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return repr(float(value))
    return str(value)


def _row_keys(rows: pl.DataFrame) -> set[tuple]:
    """Each row as (column, canonical value) pairs, so an example row over a subset of the
    columns can be looked up (see `_canonical_row`)."""
    return {tuple(sorted((c, _canonical(v)) for c, v in row.items())) for row in rows.iter_rows(named=True)}


def _canonical_row(row: dict, keys: set[tuple]) -> bool:
    wanted = {(str(c), _canonical(v)) for c, v in row.items()}
    return any(wanted <= set(key) for key in keys)


# ---- where MLflow keeps artifacts ---------------------------------------------------------------
def mlflow_artifact_roots(tracking_uri: str) -> tuple[list[Path], list[str]]:
    """Every experiment's artifact location: local folders, and the remote ones (not searched)."""
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri.removeprefix("sqlite:///")).exists():
        return [], []  # no MLflow database yet (opening one would create it)
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    local, remote = [], []
    for experiment in MlflowClient(tracking_uri=tracking_uri).search_experiments(view_type=ViewType.ALL):
        location = experiment.artifact_location
        parsed = urlparse(location)
        if parsed.scheme in ("", "file"):
            local.append(Path(unquote(parsed.path)))
        else:
            remote.append(location)
    return sorted(set(local)), sorted(set(remote))
