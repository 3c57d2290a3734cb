"""Cost of one inference-log append on the scoring hot path (hn_assets/serving/inference_log.py).

Times each call separately (perf_counter_ns) and prints p50/p99/p99.9 per variant, in one run:
- reference: a plain in-memory `list.append` of the same record (what "free" costs here);
- `encode` only (orjson of the record, the CPU part of an append);
- `InferenceLogWriter.append` (encode + one os.write on an O_APPEND fd, rotation and the 1 s
  background fdatasync on), the real thing;
- for contrast, os.write + fsync per record (what durability against a machine crash per record
  would cost), on fewer records.

    .venv/bin/python bench/inference_log_append.py [--records 100000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import table
from hn_assets.serving.inference_log import InferenceLogWriter, encode, example_record


def _percentiles(samples_ns: list[int]) -> tuple[str, str, str]:
    ordered = sorted(samples_ns)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000
    return f"{pick(0.50):.2f}", f"{pick(0.99):.2f}", f"{pick(0.999):.2f}"


def _timed(call, records: list[dict]) -> list[int]:
    clock, out = time.perf_counter_ns, []
    for record in records:
        start = clock()
        call(record)
        out.append(clock() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    records = [example_record(request_id=f"req-{i:08d}") for i in range(args.records)]
    line_bytes = len(encode(records[0]))
    rows = []

    sink: list = []
    rows.append(("reference: list.append (in memory)", args.records, *_percentiles(_timed(sink.append, records))))
    rows.append(("orjson encode only", args.records, *_percentiles(_timed(encode, records))))
    with tempfile.TemporaryDirectory() as tmp:
        writer = InferenceLogWriter(Path(tmp), "bench")
        appended = _timed(writer.append, records)
        writer.close()
        files = len(list((Path(tmp) / "inference_log").glob("*.jsonl")))
        rows.append((f"InferenceLogWriter.append ({files} file(s))", args.records, *_percentiles(appended)))

        few = records[: min(2_000, args.records)]
        fd = os.open(Path(tmp) / "fsync.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)

        def write_and_fsync(record: dict) -> None:
            os.write(fd, encode(record))
            os.fsync(fd)

        synced = _timed(write_and_fsync, few)
        os.close(fd)
        rows.append(("contrast: os.write + fsync per record", len(few), *_percentiles(synced)))

    print(f"inference-log append, {line_bytes} bytes per record, {os.cpu_count()} cores, one thread")
    print(table(rows, ("variant", "records", "p50 µs", "p99 µs", "p99.9 µs")))


if __name__ == "__main__":
    main()
