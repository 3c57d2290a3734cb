"""Running a built Bento for a moment: the smoke check of `purchase_intent_bento` and the benchmark.

- `sandbox(home, folder)`: an HN_HOME for a short-lived server that reads the store's features and
  writes nowhere in it. It links the store's gold exports, bronze (for the pseudonym key's
  fingerprint), secrets and MLflow read-only, and copies the Feast registry and SQLite online store,
  so the events a smoke check or a benchmark posts (landing files, pushed session features, live
  sessions, the inference log) stay in the sandbox and never reach the store's next batch. With
  Redis as the online store the pushes do reach the store's Redis (the sandbox cannot copy it).
- `ServedBento`: `bentoml serve <tag>` on a free local port, started with default SIGINT handling
  (background jobs start with it ignored: STACK_NOTES), waited on until `/readyz` answers, stopped
  by its PID (then its own process group, which holds only its workers).
- `smoke(url, ...)`: posts a session's events, scores it, checks every field of the answer.

No Dagster here: `hn_assets/defs/serving/` is the shell.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hn_assets.settings import REPO_ROOT

SERVICE_DIR = REPO_ROOT / "bentos" / "purchase_intent"
LINKED = ("secrets", "mlflow", "lake/gold")  # read-only for the server: linked, not copied
COPIED = ("feast/registry.db", "feast/online_store.db")  # written by /events pushes: copied


# ---- where things are -----------------------------------------------------------------------------
def bentoml_home(home: Path) -> Path:
    """BENTOML_HOME of a store: `$HN_HOME/bentoml` (docs/architecture.md, "Storage")."""
    return Path(home) / "bentoml"


def _module_file(module: str) -> Path | None:
    base = REPO_ROOT / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _platform_imports(path: Path) -> set[str]:
    """hn_assets modules a file imports (anywhere in it, also inside functions)."""
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "hn_assets")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "hn_assets":
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # submodules imported by name
    return found


def serving_sources() -> list[Path]:
    """The files that decide what the Bento does: its bentofile and service folder, the feature
    repo, and every platform module the service imports, directly or through other platform modules
    (static import closure). Editing any other module (a training asset, say) does not change it."""
    files = {p for p in SERVICE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    files |= {p for p in (REPO_ROOT / "feature_repo").glob("*") if p.suffix in (".py", ".yaml")}
    todo = [p for p in files if p.suffix == ".py"]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _platform_imports(path):
            parts = module.split(".")
            for i in range(1, len(parts) + 1):  # each package on the way is imported too
                file = _module_file(".".join(parts[:i]))
                if file is not None and file not in seen:
                    todo.append(file)
    return sorted(files | seen)


def source_fingerprint(files: list[Path] | None = None) -> str:
    """Changes whenever a file of `serving_sources()` changes: with the champion's version, the
    identity of a build (the Bento's version is `v<model version>-<fingerprint>`)."""
    digest = hashlib.sha256()
    for path in sorted(files if files is not None else serving_sources()):
        digest.update(str(path.relative_to(REPO_ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def bento_version(model_version: str, fingerprint: str) -> str:
    return f"v{model_version}-{fingerprint}"


def bento_exists(tag: str, home: Path) -> bool:
    """Whether the BentoML store at `home` holds the Bento `tag`."""
    from bentoml._internal.bento import BentoStore
    from bentoml.exceptions import NotFound

    folder = Path(home) / "bentos"
    if not folder.exists():
        return False
    try:
        BentoStore(str(folder)).get(tag)
    except NotFound:
        return False
    return True


# ---- the sandbox ----------------------------------------------------------------------------------
def _copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite file that another process may be writing (online backup API)."""
    import sqlite3

    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


@contextmanager
def sandbox(home: Path, folder: Path):
    """An HN_HOME at `folder` over the store at `home` (see the module docstring); removed afterwards."""
    home, folder = Path(home).resolve(), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for part in LINKED:
            if (home / part).exists():
                (folder / part).parent.mkdir(parents=True, exist_ok=True)
                (folder / part).symlink_to(home / part)
        if (home / "lake" / "bronze").exists():  # a lake on object storage: HN_LAKE_URI is inherited
            (folder / "lake" / "bronze").mkdir(parents=True, exist_ok=True)
            fingerprint = home / "lake" / "bronze" / "_pseudonym_key_fingerprint.json"
            if fingerprint.exists():
                shutil.copy2(fingerprint, folder / "lake" / "bronze" / fingerprint.name)
        for part in COPIED:
            if (home / part).exists():
                if part.endswith(".db") and "online" in part:
                    _copy_sqlite(home / part, folder / part)
                else:
                    (folder / part).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(home / part, folder / part)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---- a served Bento -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _bentoml() -> str:
    candidate = Path(sys.executable).parent / "bentoml"
    return str(candidate) if candidate.exists() else "bentoml"


def stop_process_group(proc: subprocess.Popen | None, interrupt_seconds: float = 10) -> None:
    """Stop a server started in its own process group: SIGINT (a graceful shutdown), then SIGTERM,
    then SIGKILL, and finally SIGKILL to the group for workers the main process left behind."""
    if proc is None:
        return
    if proc.poll() is None:
        for sig, wait in ((signal.SIGINT, interrupt_seconds), (signal.SIGTERM, 5)):
            try:
                proc.send_signal(sig)
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            proc.kill()
            proc.wait(5)
    with contextlib.suppress(ProcessLookupError, PermissionError):  # this group only
        os.killpg(proc.pid, signal.SIGKILL)


@dataclass
class ServedBento:
    """`with ServedBento(tag, hn_home, bentoml_home) as server:` serves `tag` on a free local port."""

    tag: str
    hn_home: Path
    bentoml_home: Path
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 180.0
    log_path: Path | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = field(default=None, init=False)
    startup_s: float | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServedBento:
        env = {
            **os.environ,
            **self.env,
            "HN_HOME": str(self.hn_home),
            "BENTOML_HOME": str(self.bentoml_home),
            "BENTOML_DO_NOT_TRACK": "true",
        }
        env.pop("DAGSTER_HOME", None)
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        began = time.monotonic()
        self.proc = subprocess.Popen(
            [_bentoml(), "serve", self.tag, "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            cwd=str(self.hn_home),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_default_signals,
            start_new_session=True,
        )
        try:
            self._wait_ready(began)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - began
        return self

    def _wait_ready(self, began: float) -> None:
        while time.monotonic() - began < self.timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bentoml serve {self.tag} exited with {self.proc.returncode} before ready")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"bentoml serve {self.tag}: /readyz not ready after {self.timeout:.0f} s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_process_group(proc, interrupt_seconds=15)

    def __enter__(self) -> ServedBento:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---- the smoke requests -----------------------------------------------------------------------------
def _post(url: str, body: dict, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def smoke(url: str, model_version: str | None, product_id: str | None = None, api_key: str | None = None) -> dict:
    """Post a new visitor's session (page view, product view, add to cart), score it, and check the
    answer: 200, the session the events went into, not new, no fallback, the champion's version, a
    probability in [0, 1], three reasons, the session features used. Returns
    {"passed", "failures", "score", "events", "latency_ms"}."""
    headers = {"X-API-Key": api_key} if api_key else {}
    visitor = f"smoke-{uuid.uuid4().hex[:12]}"
    now = datetime.now(UTC) - timedelta(seconds=5)
    kinds = ["page_view", "product_view", "add_to_cart"]
    events = [
        {
            "event_id": f"{visitor}-{i}",
            "event_type": kind,
            "event_timestamp": (now + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
            "visitor_id": visitor,
            "analytics_consent": True,
            "product_id": product_id if kind != "page_view" else None,
            "device": "desktop",
            "channel": "direct",
            "timezone": "Europe/Berlin",
        }
        for i, kind in enumerate(kinds)
    ]
    failures: list[str] = []
    status, posted = _post(url + "/events", {"events": events}, headers)
    if status != 200:
        failures.append(f"/events answered {status}: {str(posted)[:300]}")
    body = {
        "visitor_id": visitor,
        "consent": {"analytics": True, "personalisation": True},
        "context": {"device": "desktop", "channel": "direct", "timezone": "Europe/Berlin"},
    }
    began = time.perf_counter()
    status, score = _post(url + "/score", body, headers)
    latency_ms = round((time.perf_counter() - began) * 1000, 2)
    if status != 200:
        failures.append(f"/score answered {status}: {str(score)[:300]}")
    else:
        sessions = posted.get("sessions") or []
        expect = {
            "session_key": sessions[-1] if sessions else None,
            "new_session": False,
            "fallback": False,
            "model_version": model_version,
        }
        for name, value in expect.items():
            if value is not None and score.get(name) != value:
                failures.append(f"{name} is {score.get(name)!r}, expected {value!r}")
        probability = score.get("probability")
        if not isinstance(probability, int | float) or not 0.0 <= probability <= 1.0:
            failures.append(f"probability {probability!r} is not in [0, 1]")
        if len(score.get("reasons") or []) != 3:
            failures.append(f"{len(score.get('reasons') or [])} reasons, expected 3")
        if "session" not in (score.get("feature_groups") or []):
            failures.append(f"session features not used: feature_groups {score.get('feature_groups')!r}")
        if not isinstance(score.get("decision"), dict):
            failures.append("no discount decision")
    return {"passed": not failures, "failures": failures, "score": score, "events": posted, "latency_ms": latency_ms}
