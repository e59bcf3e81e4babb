"""Subprocess for the SIGKILL test: appends from N threads, printing each acknowledged id."""

from __future__ import annotations

import sys
import threading

from spool import DurableQueue, SpoolDatabase

LIMIT_PER_THREAD = 5_000


def main() -> None:
    path, threads = sys.argv[1], int(sys.argv[2])
    queue = DurableQueue(SpoolDatabase(path), "outbox")
    print_lock = threading.Lock()

    def append_forever(worker: int) -> None:
        for n in range(LIMIT_PER_THREAD):
            receipt = queue.append(f"company-{worker}", b"x" * 700 + str(n).encode())
            with print_lock:  # printed only after the append returned: acknowledged
                print(receipt.record_id, flush=True)

    workers = [threading.Thread(target=append_forever, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
