"""What every benchmark shares: command line, broker, topics, processes, traffic, reports."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from services.localrun.broker import EmbeddedBroker, free_port, stop_process
from services.localrun.readings import Sample
from services.localrun.scrape import parse
from services.localrun.traffic.generator import SourceEvent, TrafficGenerator
from services.localrun.traffic.options import TrafficOptions
from tests.support.kafka import Topics

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "arch": platform.machine(),
    }


def arguments(doc: str | None, **defaults: float | str) -> argparse.Namespace:
    """The benchmark's command line: `--<name> N` for each keyword, typed as its default."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    for name, default in defaults.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=type(default),
            default=default,
            help=f"(default {default})",
        )
    return parser.parse_args()


def write_report(name: str, report: dict[str, Any]) -> Path:
    """Write the report, with the machine it ran on, to bench/results/, and say where."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps({"machine": machine(), **report}, indent=2, default=str))
    print(f"written {out}")
    return out


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[[_fmt(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@contextlib.contextmanager
def broker() -> Iterator[str]:
    """`GOVSYNC_BENCH_KAFKA` if set, else an embedded broker for the benchmark's length."""
    external = os.environ.get("GOVSYNC_BENCH_KAFKA")
    if external:
        yield external
        return
    with EmbeddedBroker() as embedded:
        yield embedded.bootstrap


def ingest_env(bootstrap: str, topics: Topics, *, partitions: int, **extra: str) -> dict[str, str]:
    """The environment of a `govsync ingest` process on `topics`, with the service's defaults."""
    return (
        {"GOVSYNC_KAFKA_BOOTSTRAP_SERVERS": bootstrap}
        | topics.ingest_env()
        | {"GOVSYNC_TOPIC_PARTITIONS": str(partitions)}
        | extra
    )


def generate_events(
    events: int,
    *,
    dossiers: int | None = None,
    seed: int = 1,
    options: TrafficOptions | None = None,
) -> tuple[list[SourceEvent], TrafficGenerator]:
    """About `events` events of realistic traffic, made on a virtual clock (as fast as possible).

    With `dossiers`, the arrival rate is chosen so that about that many dossiers carry them.
    """
    base = options or TrafficOptions()
    per_dossier = 5.3  # measured on the default shape: statuses, steps, duplicates, noise
    wanted = dossiers or max(1, int(events / per_dossier))
    virtual_seconds = 120.0
    shaped = TrafficOptions(
        **{
            **{f: getattr(base, f) for f in base.__dataclass_fields__},
            "dossiers_per_second": wanted / virtual_seconds,
        }
    )
    generator = TrafficGenerator(shaped, random.Random(seed))
    # The virtual clock ends about now: ingest ages finished dossiers by the wall clock, so
    # events dated months ago would be evicted at once whatever the retention.
    now = datetime.now(UTC) - timedelta(seconds=virtual_seconds + 60)
    out: list[SourceEvent] = []
    step = timedelta(milliseconds=100)
    while len(out) < events:
        now += step
        out.extend(generator.tick(now))
        if generator.truth.dossiers >= wanted and generator.in_flight == 0:
            break
    return out[:events], generator


async def produce_all(bootstrap: str, topic: str, events: Sequence[SourceEvent]) -> float:
    """Produce everything as fast as the broker takes it; returns the seconds it took."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    started = time.monotonic()
    try:
        pending = []
        for e in events:
            pending.append(
                await producer.send(topic, value=e.value, key=e.key, headers=list(e.headers))
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - started


class ServiceProcess:
    """A `govsync` subcommand in its own process, with its `/metrics` on a loopback port."""

    def __init__(
        self, args: Sequence[str], env: dict[str, str], *, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._args = list(args)
        self._env = env
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def simulator(cls, env: dict[str, str] | None = None) -> ServiceProcess:
        """`govsync simulate`, whose port is an argument (it has no `/readyz`: wait for
        `/_sim/stats`)."""
        port = free_port()
        return cls(["simulate", "--port", str(port)], env or {}, port=port)

    def start(self, log: Path | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSYNC_")}
        env |= {"GOVSYNC_HTTP_HOST": "127.0.0.1", "GOVSYNC_HTTP_PORT": str(self.port)}
        env |= {"GOVSYNC_LOG_LEVEL": "WARNING"} | self._env
        sink = log.open("ab") if log else subprocess.DEVNULL
        self.process = subprocess.Popen(  # noqa: S603 - our own command
            [sys.executable, "-m", "services", *self._args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )

    def rss_bytes(self) -> int:
        """VmRSS of the process, from /proc (what the kernel charges it for)."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, grace_seconds=30)
            self.process = None


@contextlib.asynccontextmanager
async def running(
    service: ServiceProcess, log: Path | None = None
) -> AsyncIterator[ServiceProcess]:
    service.start(log)
    try:
        yield service
    finally:
        await asyncio.to_thread(service.stop)


async def samples(client: httpx.AsyncClient, base: str) -> list[Sample]:
    try:
        response = await client.get(f"{base}/metrics")
    except httpx.TransportError:
        return []
    return parse(response.text) if response.status_code == 200 else []


def total(found: Sequence[Sample], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in found
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def wait_ready(
    client: httpx.AsyncClient, base: str, within: float = 60.0, *, path: str = "/readyz"
) -> None:
    """Until `path` answers 200."""
    async with asyncio.timeout(within):
        while True:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{base}{path}")).status_code == 200:
                    return
            await asyncio.sleep(0.1)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def latencies(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and the maximum of a latency sample, in seconds."""
    return {
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values, default=float("nan")),
    }
