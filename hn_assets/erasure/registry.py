"""The registry of stores an erasure runs over, the run itself and its report.

A store is anything that can hold a customer's data: it has a `name`, `scan(subject) -> count` of
what it holds of them, and `erase(subject) -> count` removed. The job builds the list (landing,
archive, bronze and its history, the warehouse, gold exports, the online store, training sets,
MLflow artifacts, reports); a later layer (the inference log, drift reference sets) adds its own
`Store` to that list, and the run, the verification and the report cover it with no other change.
Rejected: one erasure function per layer called in sequence, which every new layer would have to
edit and which could not verify the others.

Each store is scanned before it is erased (found), erased (removed) and scanned again at the end of
the job (remaining). The report holds the customer's token, never the raw id; the erasure passes
only when nothing remains anywhere.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from hn_assets.erasure.subject import Subject
from hn_assets.ingest.privacy import scrub_str


class Store(Protocol):
    name: str

    def scan(self, subject: Subject) -> int: ...

    def erase(self, subject: Subject) -> int: ...


class StoreAbsent(Exception):
    """The store does not exist in this installation (e.g. no online store materialised yet)."""


class CouldNotErase(Exception):
    """Part of what the store holds could not be removed; `removed` is what was."""

    def __init__(self, reason: str, removed: int = 0):
        super().__init__(reason)
        self.reason, self.removed = reason, removed


@dataclass
class StoreResult:
    store: str
    found: int | None = None
    removed: int = 0
    remaining: int | None = None
    status: str = "pending"  # erased | clean | absent | incomplete | failed
    detail: str = ""

    def settle(self) -> StoreResult:
        if self.status in ("absent", "failed"):
            return self
        if self.remaining:
            self.status = "incomplete"
        else:
            self.status = "erased" if self.found or self.removed else "clean"
        return self


def _notes(store) -> str:
    return "; ".join(getattr(store, "notes", []) or [])


def erase_all(stores: list[Store], subject: Subject) -> list[StoreResult]:
    """Scan then erase each store in order; a store that fails is reported, the others go on."""
    results = []
    for store in stores:
        result = StoreResult(store.name)
        try:
            result.found = store.scan(subject)
            result.removed = store.erase(subject)
        except StoreAbsent as exc:
            result.status, result.detail = "absent", str(exc)
        except CouldNotErase as exc:
            result.status, result.removed, result.detail = "failed", exc.removed, exc.reason
        except Exception as exc:  # noqa: BLE001 - one store's failure is reported; the others still run
            result.status, result.detail = "failed", f"{type(exc).__name__}: {str(exc)[:300]}"
        result.detail = "; ".join(filter(None, [result.detail, _notes(store)]))
        results.append(result)
    return results


def verify(stores: list[Store], subject: Subject, results: list[StoreResult]) -> list[StoreResult]:
    """Scan every store again: what remains of the subject after the erasure."""
    by_name = {r.store: r for r in results}
    settled = []
    for store in stores:
        result = by_name.get(store.name) or StoreResult(store.name)
        try:
            result.remaining = store.scan(subject)
        except StoreAbsent as exc:
            result.remaining = 0
            if result.status == "pending":
                result.status, result.detail = "absent", str(exc)
        except Exception as exc:  # noqa: BLE001 - a store that cannot be checked is not erased
            result.status = "failed"
            result.detail = "; ".join(filter(None, [result.detail, f"not verifiable: {type(exc).__name__}: {exc}"]))
        settled.append(result.settle())
    return settled


# What no store of this job covers, and why; stated in every report.
NOT_COVERED = (
    "Dagster's run storage keeps each run's config: `hn erase` passes only the token; a raw id typed into "
    "the launchpad's `customer_id` stays in that run's config.",
    "Sessions without analytics consent are linked to the customer only through the raw landing and archive "
    "files; once those are past their retention, such sessions cannot be found (by design) and stay as "
    "unlinkable anonymous sessions.",
    "Models already trained keep what they learnt; the next training run uses the erased data. MLflow run "
    "parameters, metrics and tags hold no rows and are not scanned.",
    "Copies outside HN_HOME and the lake (backups, exports, notebooks) are outside this job.",
)


def scrub(reason: str, raw_id: str | None = None) -> str:
    """The free-text reason without emails, phone numbers or the customer's raw id (the privacy
    module's scrubber, which keeps ISO dates such as "request of 2026-09-01" intact)."""
    text = scrub_str(reason)
    return text.replace(raw_id, "[customer]") if raw_id else text


@dataclass
class ErasureReport:
    run_id: str
    customer_token: str
    reason: str
    linked: dict[str, int]
    newly_listed: int
    stores: list[StoreResult]
    finished_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    not_covered: tuple[str, ...] = NOT_COVERED

    @property
    def complete(self) -> bool:
        return all(s.status in ("erased", "clean", "absent") for s in self.stores)

    @property
    def found_anywhere(self) -> bool:
        return any(s.found or s.removed for s in self.stores)

    def problems(self) -> list[str]:
        return [f"{s.store}: {s.status}, {s.remaining} remaining ({s.detail})" for s in self.stores if not _ok(s)]

    def to_dict(self) -> dict:
        return {**asdict(self), "complete": self.complete, "found_anywhere": self.found_anywhere}

    def to_markdown(self) -> str:
        lines = [
            f"# Erasure {self.run_id}",
            "",
            f"- customer (pseudonym): `{self.customer_token}`",
            f"- reason: {self.reason or '(none given)'}",
            f"- finished: {self.finished_at}",
            f"- linked keys: {_counts(self.linked)} ({self.newly_listed} newly listed)",
            f"- result: {'complete' if self.complete else 'INCOMPLETE'}",
        ]
        if not self.found_anywhere:
            lines.append(
                "- nothing was found in any store: check the id and that HN_PSEUDONYM_KEY is the key of the data"
            )
        lines += ["", "| store | found | removed | remaining | status | detail |", "|---|---|---|---|---|---|"]
        for s in self.stores:
            cells = [s.store, s.found, s.removed, s.remaining, s.status, s.detail.replace("|", "/")]
            lines.append("| " + " | ".join("" if c is None else str(c) for c in cells) + " |")
        lines += ["", "## Not covered", "", *(f"- {item}" for item in self.not_covered)]
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        as_json, as_markdown = folder / "erasure.json", folder / "erasure.md"
        as_json.write_text(json.dumps(self.to_dict(), indent=2, default=str))
        as_markdown.write_text(self.to_markdown())
        return as_json, as_markdown


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in counts.items())


def _ok(result: StoreResult) -> bool:
    return result.status in ("erased", "clean", "absent")
