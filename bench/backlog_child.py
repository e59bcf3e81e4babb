"""The draining process of measurement 4, run alone so its peak RSS is the drain's own.

Prints one JSON line: rows, transactions, cycles, seconds, and resident-set sizes at each
stage (after imports, after opening the spool, peak).

Peak RSS is the kernel's high-water mark of this process's address space (`VmHWM` in
/proc/self/status). `getrusage(...).ru_maxrss` is not used: Linux carries the parent's peak
RSS across fork/vfork + exec into the child's ru_maxrss, so a child started by a big parent
reports the parent's peak.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _rss_kib() -> int:
    """Peak resident set of this process so far, in KiB (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("VmHWM not found in /proc/self/status")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spool", type=Path, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--rows", type=int, required=True)
    args = parser.parse_args(argv)

    from bench.common import PhaseTimer, drain_all, open_spool
    from relay.db.engine import make_engine
    from relay.execution_log.sink import ExecutionLogSink
    from spool import Drainer, DrainPolicy

    rss_imports = _rss_kib()
    started = time.perf_counter()
    db, queue = open_spool(args.spool)  # includes the integrity check of the whole file
    open_seconds = time.perf_counter() - started
    rss_open = _rss_kib()
    engine = make_engine(args.url)
    try:
        sink = ExecutionLogSink(engine)
        phases = PhaseTimer(queue, sink)
        drainer = Drainer(queue, sink, DrainPolicy())
        totals = drain_all(drainer, args.rows)
        left = queue.stats().pending
    finally:
        engine.dispose()
        db.close()
    print(
        json.dumps(
            {
                "rows": totals.rows,
                "transactions": totals.transactions,
                "cycles": totals.cycles,
                "seconds": totals.seconds,
                "open_seconds": open_seconds,
                "left": left,
                "rss_after_imports_kib": rss_imports,
                "rss_after_open_kib": rss_open,
                "peak_rss_kib": _rss_kib(),
                "phases": phases.seconds,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
