"""Load generators and server handling for the HTTP benchmarks (bench/scoring.py).

- `wrk_saturate`: saturation with `wrk -t2 -c32` (Debian package `wrk`; no wrk2 here), POST bodies
  drawn round-robin from a list by a generated Lua script, parsing req/s, latency and non-2xx.
- `open_loop`: an evenly spaced open-loop client (uvloop + raw asyncio streams over a few keep-alive
  connections) that times every request from its INTENDED send time into an HDR histogram, so a
  stalled server cannot hide its queue (no coordinated omission). It runs in its own process (its
  heap small, cyclic GC off) and may drive several streams at once (e.g. /score at 500 req/s and
  /events at 200 req/s). `python bench/_loadgen.py openloop SPEC.json` is that process.
- `Server`: a server process started with default SIGINT/SIGTERM handling restored (background
  jobs start with SIGINT ignored: STACK_NOTES), in its own process group, waited on until ready,
  and stopped by its PID (then its group, which only it and its workers are in).

Traffic goes to 127.0.0.1 only and every run is bounded in time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYTHON = sys.executable


# ---- ports and servers ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _restore_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def wait_ready(url: str, timeout: float, proc: subprocess.Popen | None = None) -> float:
    """Seconds until `url` answers 200 (raises on timeout or if `proc` exits first)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s")


@dataclass
class Server:
    """A server subprocess: `with Server(cmd, ready_url) as s:` starts it, waits, stops it by PID."""

    name: str
    cmd: list[str]
    ready_url: str
    env: dict[str, str] | None = None
    cwd: str | None = None
    timeout: float = 120.0
    log_path: Path | None = None
    proc: subprocess.Popen | None = field(default=None, init=False)
    startup_s: float | None = field(default=None, init=False)

    def start(self) -> Server:
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        began = time.monotonic()
        self.proc = subprocess.Popen(
            self.cmd,
            env={**os.environ, **(self.env or {})},
            cwd=self.cwd or str(REPO),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_restore_signals,
            start_new_session=True,  # its own process group: it and its workers, nothing else
        )
        try:
            wait_ready(self.ready_url, self.timeout, self.proc)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - began
        return self

    def stop(self) -> None:
        from hn_assets.serving.smoke import stop_process_group

        proc, self.proc = self.proc, None
        stop_process_group(proc)

    def rss_mb(self) -> dict[str, float]:
        """RSS of the main process and of each child (workers), MB."""
        import psutil

        main = psutil.Process(self.proc.pid)
        out = {f"main:{main.pid}": main.memory_info().rss / 2**20}
        for child in main.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                out[f"{child.name()}:{child.pid}"] = child.memory_info().rss / 2**20
        return out

    def worker_rss_mb(self) -> list[float]:
        """RSS of the worker processes (children running Python), MB."""
        import psutil

        rss = []
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                if "python" in child.name() or "bentoml" in " ".join(child.cmdline()):
                    rss.append(child.memory_info().rss / 2**20)
            except psutil.NoSuchProcess:
                pass
        return rss

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# ---- how busy the machine was with other work --------------------------------------------------------
class CpuMeter:
    """CPU used during a phase, in cores: the whole machine, and the part not used by the servers
    given, this process or its waited-for children (wrk, the open-loop client). On a shared machine
    a phase with other work running is reported as such rather than silently slower."""

    def __init__(self, *servers: Server):
        self.servers = servers

    @staticmethod
    def _busy() -> float:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    def _ours(self) -> float:
        import resource

        total = 0.0
        for usage in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            r = resource.getrusage(usage)
            total += r.ru_utime + r.ru_stime
        return total + self._servers()

    def _servers(self) -> float:
        import psutil

        total = 0.0
        for server in self.servers:
            if server.proc is None:
                continue
            try:
                procs = [psutil.Process(server.proc.pid)]
                procs += procs[0].children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            for p in procs:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.NoSuchProcess:
                    pass
        return total

    def __enter__(self) -> CpuMeter:
        self.t0, self.busy0, self.ours0 = time.monotonic(), self._busy(), self._ours()
        self.servers0 = self._servers()
        return self

    def __exit__(self, *exc) -> None:
        wall = time.monotonic() - self.t0
        busy, ours = self._busy() - self.busy0, self._ours() - self.ours0
        self.machine_cores = busy / wall
        self.other_cores = max(0.0, (busy - ours) / wall)
        self.server_cores = (self._servers() - self.servers0) / wall  # what the servers cost, on a busy machine too


# ---- request bodies -----------------------------------------------------------------------------
def write_bodies(bodies: list[bytes | str | dict], path: Path) -> Path:
    """One JSON body per line (the format both generators read)."""
    with open(path, "wb") as f:
        for body in bodies:
            if isinstance(body, dict):
                body = json.dumps(body, separators=(",", ":"))
            if isinstance(body, str):
                body = body.encode()
            assert b"\n" not in body, "one body per line"
            f.write(body + b"\n")
    return path


def read_bodies(path: str | Path) -> list[bytes]:
    return [line for line in Path(path).read_bytes().split(b"\n") if line]


# ---- wrk ------------------------------------------------------------------------------------------
LUA = r"""
local bodies = {}
local path = "%(path)s"
for line in io.lines("%(bodies)s") do bodies[#bodies + 1] = line end
local requests = {}
local i = 0
local headers = {["Content-Type"] = "application/json"%(extra_headers)s}
init = function(args)
  for k, body in ipairs(bodies) do requests[k] = wrk.format("POST", path, headers, body) end
  i = math.random(#requests) - 1
end
request = function()
  i = i %% #requests + 1
  return requests[i]
end
"""


@dataclass
class WrkResult:
    rps: float
    requests: int
    non_2xx: int
    socket_errors: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    raw: str

    @property
    def clean(self) -> bool:
        return self.non_2xx == 0 and self.socket_errors == 0


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def parse_wrk(out: str) -> WrkResult:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    return WrkResult(
        rps=rps,
        requests=requests,
        non_2xx=int(non.group(1)) if non else 0,
        socket_errors=sum(map(int, sock.groups())) if sock else 0,
        latency_p50_ms=_ms(lat["50"]) if "50" in lat else None,
        latency_p99_ms=_ms(lat["99"]) if "99" in lat else None,
        raw=out,
    )


def wrk_saturate(
    url: str,
    bodies_file: Path,
    duration: float = 10,
    threads: int = 2,
    connections: int = 32,
    headers: dict[str, str] | None = None,
    timeout: str = "5s",
) -> WrkResult:
    """Saturation throughput of POST `url` with bodies drawn round-robin from `bodies_file`.

    wrk counts responses with status > 399 as "Non-2xx or 3xx"; the services here send no 1xx/3xx.
    """
    from urllib.parse import urlsplit

    split = urlsplit(url)
    extra = "".join(f', ["{k}"] = "{v}"' for k, v in (headers or {}).items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % {"path": split.path or "/", "bodies": str(bodies_file), "extra_headers": extra})
    try:
        cmd = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{int(duration)}s",
            f"--timeout={timeout}",
            "--latency",
            "-s",
            script.name,
            f"{split.scheme}://{split.netloc}",
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    finally:
        os.unlink(script.name)
    return parse_wrk(out)


# ---- the open-loop client -------------------------------------------------------------------------
@dataclass
class Stream:
    """Evenly spaced POSTs of `bodies_file` to `url` at `rate` req/s over `connections` keep-alive connections."""

    name: str
    url: str
    bodies_file: str
    rate: float
    connections: int = 4
    headers: dict[str, str] = field(default_factory=dict)


def open_loop(streams: list[Stream], duration: float, warmup: float = 2.0) -> dict[str, dict]:
    """Run the streams together in a fresh process; per stream: p50/p90/p99/p99.9/max (ms) measured
    from each request's intended send time, counts of 2xx / non-2xx / errors, achieved rate."""
    spec = {"streams": [s.__dict__ for s in streams], "duration": duration, "warmup": warmup}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        out = subprocess.run(
            [PYTHON, str(HERE / "_loadgen.py"), "openloop", f.name],
            capture_output=True,
            text=True,
            timeout=duration + warmup + GRACE_S + 60,
            preexec_fn=_restore_signals,
        )
    finally:
        os.unlink(f.name)
    if out.returncode != 0:
        raise RuntimeError(f"open-loop client failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


GRACE_S = 10.0  # after the schedule ends, requests still not sent are counted as errors (unsent)


def _client_main(spec_path: str) -> None:  # runs in the client process
    import asyncio
    import gc
    from urllib.parse import urlsplit

    from hdrh.histogram import HdrHistogram

    gc.disable()  # the client's own pauses must not show up as the server's latency
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    spec = json.loads(Path(spec_path).read_text())
    duration, warmup = float(spec["duration"]), float(spec["warmup"])

    class State:
        def __init__(self, s: dict):
            self.name = s["name"]
            split = urlsplit(s["url"])
            self.host, self.port = split.hostname, split.port or 80
            hdrs = {"Host": split.netloc, "Content-Type": "application/json", **s.get("headers", {})}
            head = "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
            self.requests = [
                f"POST {split.path or '/'} HTTP/1.1\r\n{head}Content-Length: {len(b)}\r\n\r\n".encode() + b
                for b in read_bodies(s["bodies_file"])
            ]
            self.interval = 1.0 / float(s["rate"])
            self.total = int((duration + warmup) * float(s["rate"]))
            self.first_recorded = int(warmup * float(s["rate"]))
            self.connections = int(s["connections"])
            self.next = 0
            self.hist = HdrHistogram(1, 120_000_000, 3)  # microseconds
            self.ok = self.non_2xx = self.errors = self.unsent = 0
            self.statuses: dict[int, int] = {}

    async def read_response(reader) -> tuple[int, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length:
            await reader.readexactly(length)
        return status, close

    async def worker(st: State, t0: float) -> None:
        clock = time.perf_counter  # uvloop's loop.time() has millisecond resolution
        reader = writer = None
        n = len(st.requests)
        deadline = t0 + st.total * st.interval + GRACE_S
        while True:
            i = st.next
            if i >= st.total:
                break
            if clock() > deadline:  # the server fell hopelessly behind: stop, count what was never sent
                st.unsent = st.total - max(i, st.first_recorded)
                st.next = st.total
                break
            st.next += 1
            intended = t0 + i * st.interval
            delay = intended - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(st.host, st.port)
                writer.write(st.requests[i % n])
                status, close = await asyncio.wait_for(read_response(reader), 5)
                if close:
                    writer.close()
                    reader = writer = None
            except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                if writer is not None:
                    writer.close()
                reader = writer = None
                if i >= st.first_recorded:
                    st.errors += 1
                continue
            if i < st.first_recorded:
                continue
            st.hist.record_value(max(1, int((clock() - intended) * 1e6)))
            st.statuses[status] = st.statuses.get(status, 0) + 1
            if 200 <= status < 300:
                st.ok += 1
            else:
                st.non_2xx += 1
        if writer is not None:
            writer.close()

    async def main() -> dict:
        states = [State(s) for s in spec["streams"]]
        t0 = time.perf_counter() + 0.2
        await asyncio.gather(*(worker(st, t0) for st in states for _ in range(st.connections)))
        out = {}
        for st in states:

            def pct(q: float, h=st.hist) -> float:
                return round(h.get_value_at_percentile(q) / 1000, 3)

            recorded = st.ok + st.non_2xx + st.errors
            out[st.name] = {
                "requests": recorded,
                "ok": st.ok,
                "non_2xx": st.non_2xx,
                "errors": st.errors + st.unsent,
                "unsent": st.unsent,
                "statuses": st.statuses,
                "rate": round(recorded / duration, 1),
                "p50_ms": pct(50),
                "p90_ms": pct(90),
                "p99_ms": pct(99),
                "p999_ms": pct(99.9),
                "max_ms": round(st.hist.get_max_value() / 1000, 3),
            }
        return out

    print(json.dumps(asyncio.run(main())))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "openloop":
        _client_main(sys.argv[2])
    else:
        sys.exit("usage: _loadgen.py openloop SPEC.json")
