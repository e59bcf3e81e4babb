"""Measurement 4: draining a large backlog (1,000,000 rows): time and peak RSS.

The spool is filled here in big transactions (filling is not what is measured); the drain
runs in a child process (`bench.backlog_child`) so the peak RSS is the drain's alone. The child
reports its own VmHWM; the parent also samples the child's RSS with psutil as a cross-check.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.common import Scratch, fill_spool, open_spool
from bench.data import REPO_ROOT, RowFactory
from bench.pg import BenchPostgres

_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class BacklogResult:
    rows: int
    fill_seconds: float
    spool_bytes: int
    drain_seconds: float
    wall_seconds: float
    transactions: int
    cycles: int
    open_seconds: float
    peak_rss_mib: float  # the child's VmHWM (kernel high-water mark of its own memory)
    sampled_peak_rss_mib: float  # max of the parent's psutil samples of the child
    rss_after_imports_mib: float
    rss_after_open_mib: float
    phases: dict[str, float]  # seconds per drain step

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.drain_seconds if self.drain_seconds > 0 else 0.0


def _wait_child(proc: subprocess.Popen[bytes], deadline_seconds: float) -> int:
    """Wait for the child while sampling its RSS; kill it past the deadline.

    Returns the largest RSS sample in bytes (a cross-check of the child's own VmHWM).
    """
    give_up_at = time.monotonic() + deadline_seconds
    watched = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        with contextlib.suppress(psutil.Error):  # it may exit between poll() and the sample
            peak = max(peak, watched.memory_info().rss)
        if time.monotonic() > give_up_at:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"backlog drain did not finish within {deadline_seconds:.0f} s")
        time.sleep(_POLL_SECONDS)
    return peak


def run_backlog(
    pg: BenchPostgres, scratch: Scratch, rows: int, deadline_seconds: float
) -> BacklogResult:
    directory = scratch.fresh("backlog")
    path = directory / "spool.db"
    factory = RowFactory(100, seed=4)
    db, queue = open_spool(path)
    started = time.perf_counter()
    try:
        filled = fill_spool(db, queue, factory.backlog(rows))
    finally:
        db.close()
    fill_seconds = time.perf_counter() - started
    spool_bytes = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
    pg.reset()
    output = directory / "child.json"
    with output.open("wb") as out:
        wall = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.backlog_child",
                "--spool",
                str(path),
                "--url",
                pg.url,
                "--rows",
                str(filled),
            ],
            cwd=REPO_ROOT,
            stdout=out,
        )
        sampled_peak = _wait_child(proc, deadline_seconds)
        wall_seconds = time.perf_counter() - wall
    if proc.returncode != 0:
        raise RuntimeError(f"backlog drain child failed with exit code {proc.returncode}")
    report = json.loads(Path(output).read_text().strip().splitlines()[-1])
    in_table = pg.row_count()
    if report["rows"] != filled or in_table != filled or report["left"]:
        raise RuntimeError(
            f"backlog drain wrote {report['rows']} of {filled} rows; table has {in_table}"
        )
    return BacklogResult(
        rows=filled,
        fill_seconds=fill_seconds,
        spool_bytes=spool_bytes,
        drain_seconds=float(report["seconds"]),
        wall_seconds=wall_seconds,
        transactions=int(report["transactions"]),
        cycles=int(report["cycles"]),
        open_seconds=float(report["open_seconds"]),
        peak_rss_mib=report["peak_rss_kib"] / 1024,
        sampled_peak_rss_mib=sampled_peak / (1024 * 1024),
        rss_after_imports_mib=report["rss_after_imports_kib"] / 1024,
        rss_after_open_mib=report["rss_after_open_kib"] / 1024,
        phases={str(k): float(v) for k, v in report["phases"].items()},
    )
