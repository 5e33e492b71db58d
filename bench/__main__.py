"""`python -m bench`: every benchmark in sequence, each in its own process (`make bench`).

Extra arguments are not forwarded; run one benchmark as `python -m bench.<name> --help` to
change its size. The exit code is the number of benchmarks that failed to run.
"""

from __future__ import annotations

import subprocess
import sys
import time

BENCHMARKS = (
    "bench.ingest_throughput",
    "bench.end_to_end",
    "bench.ingest_memory",
    "bench.sync_throughput",
    "bench.edxml_verify",
)


def main() -> int:
    failed = 0
    for module in BENCHMARKS:
        print(f"\n=== {module} ===", flush=True)
        started = time.monotonic()
        # A process each: no benchmark's memory, threads or event loop leaks into the next.
        code = subprocess.call([sys.executable, "-m", module])  # noqa: S603 - our own modules
        print(f"=== {module}: exit {code} in {time.monotonic() - started:.0f} s", flush=True)
        failed += code != 0
    return failed


if __name__ == "__main__":
    sys.exit(main())
