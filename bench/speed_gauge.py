"""How fast this machine runs right now: a control for the service benchmark's pairs.

    python -m bench.speed_gauge OUTPUT --seconds S    # what `SpeedGauge` starts

On this shared 2-core VM the same piece of pure-Python work takes 100 to 180 ms of CPU from
one second to the next with nothing else running (measured), so two bursts through the same
relay, seconds apart, differ by up to 15% for reasons of the host, not of the relay. The gauge
is a child process at nice 19 that times one fixed unit of work by its own CPU time (waiting
for a core is not slowness), about 20 times a second (2% of a core), and appends
`<monotonic seconds> <CPU nanoseconds>` lines to OUTPUT. The benchmark reads the mean over a
burst's window: a burst that ran while the host was slow has a slow gauge too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PERIOD_SECONDS = 0.05
UNIT_ITERATIONS = 5_000  # about 0.7 ms of CPU here


def unit_of_work() -> int:
    """Fixed interpreter work, the kind the relay's own code does most."""
    total = 0
    for i in range(UNIT_ITERATIONS):
        total += i * i % 7
    return total


def run(output: Path, seconds: float) -> None:
    os.nice(19)  # only what the benchmark leaves over
    give_up = time.monotonic() + seconds
    with output.open("a", buffering=1) as out:
        while time.monotonic() < give_up:
            started = time.thread_time_ns()
            unit_of_work()
            out.write(f"{time.monotonic():.6f} {time.thread_time_ns() - started}\n")
            time.sleep(PERIOD_SECONDS)


class SpeedGauge:
    """The gauge as a child process, and its readings over a window."""

    def __init__(self, output: Path, max_seconds: float = 3600) -> None:
        self.output = output
        output.write_text("")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.speed_gauge", str(output), "--seconds", str(max_seconds)],
            cwd=Path(__file__).resolve().parents[1],
        )

    def unit_ms(self, start: float, end: float) -> float | None:
        """Mean CPU milliseconds of one unit of work between two `time.monotonic()` stamps
        (None without readings: the gauge got no CPU at all, or is gone)."""
        readings = []
        for line in self.output.read_text().splitlines():
            stamp, _, nanoseconds = line.partition(" ")
            if nanoseconds and start <= float(stamp) <= end:
                readings.append(int(nanoseconds) / 1e6)
        return statistics.mean(readings) if readings else None

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Machine speed gauge (bench.service).")
    parser.add_argument("output", type=Path)
    parser.add_argument("--seconds", type=float, default=3600)
    args = parser.parse_args(argv)
    run(args.output, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
