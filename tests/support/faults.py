"""Fault-injection kit: service subprocesses, a Kafka TCP proxy, a steady producer, invariants.

The fault tests in `tests/reliability/test_faults_*.py` run `govsync ingest` and `govsync sync`
as real processes (so that `kill -9` and `/proc/<pid>/status` mean what they mean in
production), feed them a steady stream and check the delivery invariants afterwards:
every accepted event reaches each destination in its final state, no dossier regresses, ingest
revisions are contiguous per dossier.

`KafkaProxy` sits between the services and the broker. It rewrites the broker addresses in
Metadata and FindCoordinator answers to its own listeners, so every connection of a client
bootstrapped through it stays on it, and it can stop forwarding (a broker that no longer answers)
with any broker: the embedded one, testcontainers' or an external `GOVSYNC_TEST_KAFKA`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import struct
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from schemas.dossier import DossierStatus, RecordKind
from services.common.kafka import make_consumer, make_producer
from services.common.settings import KafkaSettings
from services.localrun.broker import free_port
from services.simulator.server import RunningSimulator
from services.simulator.simulator import PORTAL, Simulator
from tests.support.ingest import metric_value
from tests.support.kafka import Received, Topics, topic_partitions
from tests.support.records import record

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "urn:vn:gov:dvc:faults"
AGENCY = "000.00.00.G22"
# Statuses a dossier cycles through; none ends it, so ingest never evicts its state mid-test.
STATUS_CYCLE = (
    DossierStatus.ACCEPTED,
    DossierStatus.IN_PROCESS,
    DossierStatus.SUPPLEMENT_REQUESTED,
    DossierStatus.PAYMENT_REQUESTED,
)


# --- service processes ----------------------------------------------------------------------


SESSION_TIMEOUT_MS = 4000
HEARTBEAT_MS = 500


def _common_env(bootstrap: str) -> dict[str, str]:
    return os.environ | {
        "GOVSYNC_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "GOVSYNC_KAFKA_REQUEST_TIMEOUT_MS": "30000",
        "GOVSYNC_HTTP_HOST": "127.0.0.1",
        "GOVSYNC_LOG_LEVEL": "WARNING",
        # Gauges label only preset agencies (the rest are `other`); the figures read AGENCY's.
        "GOVSYNC_LABEL_AGENCIES": AGENCY,
        "GOVSYNC_CONSUMER_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
        "GOVSYNC_CONSUMER_HEARTBEAT_INTERVAL_MS": str(HEARTBEAT_MS),
    }


def ingest_env(bootstrap: str, topics: Topics, **extra: str) -> dict[str, str]:
    """Environment of `govsync ingest` on the test's topics (the HTTP port is set per process)."""
    return (
        _common_env(bootstrap)
        | topics.ingest_env()
        | {"GOVSYNC_TOPIC_PARTITIONS": "3", "GOVSYNC_MAX_BATCH_EVENTS": "100"}
        | extra
    )


def sync_env(
    bootstrap: str, topics: Topics, simulator: RunningSimulator, **extra: str
) -> dict[str, str]:
    """Environment of `govsync sync --target ...` against the in-process simulator."""
    return (
        _common_env(bootstrap)
        | topics.sync_env()
        | {
            "GOVSYNC_ALLOW_HTTP": "true",
            "GOVSYNC_PORTAL_URL": simulator.portal_url,
            "GOVSYNC_PORTAL_PASSWORD": simulator.simulator.password,
            "GOVSYNC_PORTAL_DSTCODE": "DVCQG",
            "GOVSYNC_PORTAL_BATCH_SIZE": "20",
            "GOVSYNC_PORTAL_LINGER_MS": "10",
            "GOVSYNC_PORTAL_TIMEOUT_SECONDS": "5",
            "GOVSYNC_NDXP_URL": simulator.ndxp_url,
            "GOVSYNC_NDXP_CLIENT_SECRET": simulator.simulator.client_secret,
            "GOVSYNC_NDXP_TIMEOUT_SECONDS": "5",
            "GOVSYNC_DELIVERY_MAX_IN_FLIGHT": "32",
            "GOVSYNC_DELIVERY_BACKOFF_INITIAL_SECONDS": "0.05",
            "GOVSYNC_DELIVERY_BACKOFF_MAX_SECONDS": "1",
            "GOVSYNC_DELIVERY_BREAKER_RESET_SECONDS": "0.5",
            "GOVSYNC_DELIVERY_COMMIT_INTERVAL_SECONDS": "0.5",
            "GOVSYNC_DELIVERY_REVOKE_DRAIN_SECONDS": "1",
            "GOVSYNC_SHUTDOWN_BUDGET_SECONDS": "10",
        }
        | extra
    )


class ServiceProcess:
    """One `python -m services ...` subprocess that a test starts, kills and restarts."""

    def __init__(self, name: str, args: Iterable[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.args = tuple(args)
        self.port = free_port()
        self.env = env | {"GOVSYNC_HTTP_PORT": str(self.port)}
        self.log = log
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.kills = 0
        self.max_rss_kb = 0
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=5)

    @classmethod
    def ingest(cls, env: dict[str, str], log_dir: Path, name: str = "ingest") -> ServiceProcess:
        return cls(name, ["ingest"], env, log_dir / f"{name}.log")

    @classmethod
    def sync(
        cls, target: str, env: dict[str, str], log_dir: Path, name: str | None = None
    ) -> ServiceProcess:
        name = name or f"sync-{target}"
        return cls(name, ["sync", "--target", target], env, log_dir / f"{name}.log")

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def assert_running(self) -> None:
        """Fail with the process's last log lines if it has exited on its own."""
        if not self.running:
            code = None if self.process is None else self.process.returncode
            raise AssertionError(f"{self.name} exited with {code}:\n{self.log_tail()}")

    async def start(self) -> None:
        assert not self.running, f"{self.name} is already running"
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts + 1} at {time.time():.3f}\n".encode())
            out.flush()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services", *self.args, cwd=ROOT, env=self.env,
                stdout=out, stderr=out,
            )  # fmt: skip
        self.starts += 1

    async def kill(self) -> None:
        """`kill -9`: no shutdown, no commit, no goodbye to the group."""
        assert self.process is not None
        self.sample_rss()
        self.process.send_signal(signal.SIGKILL)
        async with asyncio.timeout(10):
            await self.process.wait()
        self.kills += 1

    async def stop(self, within: float = 30.0) -> int:
        """SIGTERM and the exit code; a process that outlives `within` is killed and fails."""
        if self.process is None:
            return 0
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(within):
                return await self.process.wait()
        except TimeoutError:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
            raise AssertionError(f"{self.name} did not stop within {within}s") from None

    async def aclose(self) -> None:
        """Kill whatever still runs (after a failed test) and close the HTTP client."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await self.process.wait()
        await self._http.aclose()

    def rss_kb(self) -> int:
        """VmRSS of the process, in KiB, from /proc/<pid>/status (0 once it has exited)."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0  # a zombie (killed, not yet reaped) has no VmRSS line

    def sample_rss(self) -> int:
        rss = self.rss_kb() if self.running else 0
        self.max_rss_kb = max(self.max_rss_kb, rss)
        return rss

    async def ready_status(self) -> int | None:
        """The `/readyz` status code, or None when the server does not answer."""
        try:
            return (await self._http.get("/readyz")).status_code
        except httpx.TransportError:
            return None

    async def wait_ready(self, within: float = 60.0) -> float:
        """Seconds until `/readyz` says 200; fails early if the process exits."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(within):
                while True:
                    self.assert_running()
                    self.sample_rss()
                    if await self.ready_status() == 200:
                        return time.monotonic() - started
                    await asyncio.sleep(0.2)
        except TimeoutError:
            raise AssertionError(
                f"{self.name} not ready within {within}s:\n{self.log_tail()}"
            ) from None

    async def wait_not_ready(self, within: float) -> float:
        """Seconds until `/readyz` answers 503 (the server itself must keep answering)."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(within):
                while True:
                    self.assert_running()
                    if await self.ready_status() == 503:
                        return time.monotonic() - started
                    await asyncio.sleep(0.2)
        except TimeoutError:
            raise AssertionError(f"{self.name} still ready after {within}s") from None

    async def metrics(self) -> str:
        return (await self._http.get("/metrics")).text

    async def metric(self, name: str, **labels: str) -> float:
        return metric_value(await self.metrics(), name, **labels)


@contextlib.asynccontextmanager
async def service_processes(*services: ServiceProcess) -> AsyncIterator[None]:
    """Make sure no process outlives the test, whatever happens in it."""
    try:
        yield
    finally:
        for service in services:
            await service.aclose()


async def wait_for(
    check: Callable[[], bool], *, within: float, what: str, interval: float = 0.1
) -> float:
    """Seconds until `check()` holds; `AssertionError` naming `what` after `within` seconds."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(within):
            while True:
                if check():
                    break
                await asyncio.sleep(interval)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {within}s") from None
    return time.monotonic() - started


# --- the Kafka proxy ------------------------------------------------------------------------

_METADATA = 3
_FIND_COORDINATOR = 10
# First flexible (compact, tagged) version of each answer we rewrite; aiokafka uses older ones.
_FLEXIBLE_FROM = {_METADATA: 9, _FIND_COORDINATOR: 3}


class _Reader:
    """Reads Kafka wire types from a response body."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, fmt: str) -> Any:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str | None:
        length = self.take(">h")
        if length < 0:
            return None
        value = self.data[self.pos : self.pos + length].decode()
        self.pos += length
        return value


def _string(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


class KafkaProxy:
    """A TCP proxy for a Kafka cluster that can black-hole all traffic on demand.

    Each broker address the cluster advertises gets a listener of its own on 127.0.0.1, and
    Metadata and FindCoordinator answers are rewritten to name those listeners, so a client
    bootstrapped at `bootstrap` never talks to the cluster directly. `blackhole()` stops reading
    from both sides of every connection, new ones included (a broker that hangs, like one
    stopped with SIGSTOP); `restore()` lets the held bytes through again.
    """

    def __init__(self, upstream_bootstrap: str) -> None:
        host, _, port = upstream_bootstrap.split(",")[0].rpartition(":")
        self._upstream = (host, int(port))
        self._listeners: dict[tuple[str, int], tuple[asyncio.Server, int]] = {}
        self._open = asyncio.Event()
        self._open.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.unrewritten = 0
        """Answers naming brokers in a version this proxy cannot rewrite (must stay 0)."""
        self.bootstrap = ""

    async def __aenter__(self) -> KafkaProxy:
        port = await self._listen(self._upstream)
        self.bootstrap = f"127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._open.set()
        for server, _ in self._listeners.values():
            server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server, _ in self._listeners.values():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await server.wait_closed()

    @property
    def blackholed(self) -> bool:
        return not self._open.is_set()

    def blackhole(self) -> None:
        self._open.clear()

    def restore(self) -> None:
        self._open.set()

    async def _listen(self, upstream: tuple[str, int]) -> int:
        known = self._listeners.get(upstream)
        if known is not None:
            return known[1]

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # Cancelled by `__aexit__`: end quietly, as asyncio's streams expect of a handler.
            with contextlib.suppress(asyncio.CancelledError):
                await self._connection(upstream, reader, writer)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = int(server.sockets[0].getsockname()[1])
        self._listeners[upstream] = (server, port)
        return port

    async def _connection(
        self,
        upstream: tuple[str, int],
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(client_writer)
        server_writer: asyncio.StreamWriter | None = None
        try:
            await self._open.wait()
            server_reader, server_writer = await asyncio.open_connection(*upstream)
            self._writers.add(server_writer)
            # The requests whose answers name brokers, by correlation id: those answers are
            # rewritten on their way back.
            pending: dict[int, tuple[int, int]] = {}

            async def request(body: bytes) -> bytes:
                api_key, api_version, correlation = struct.unpack_from(">hhi", body)
                if api_key in _FLEXIBLE_FROM:
                    pending[correlation] = (api_key, api_version)
                return body

            async def response(body: bytes) -> bytes:
                (correlation,) = struct.unpack_from(">i", body)
                asked = pending.pop(correlation, None)
                return body if asked is None else await self._rewrite(body, *asked)

            async with asyncio.TaskGroup() as group:
                group.create_task(self._forward(client_reader, server_writer, request))
                group.create_task(self._forward(server_reader, client_writer, response))
        except* (OSError, asyncio.IncompleteReadError, EOFError):
            pass
        finally:
            for writer in (client_writer, server_writer):
                if writer is not None:
                    self._writers.discard(writer)
                    writer.close()
            self._tasks.discard(task)

    async def _frame(self, reader: asyncio.StreamReader) -> bytes:
        await self._open.wait()
        size = struct.unpack(">i", await reader.readexactly(4))[0]
        body = await reader.readexactly(size)
        # A frame read just before the black hole opened is held until it closes.
        await self._open.wait()
        return body

    async def _forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        through: Callable[[bytes], Awaitable[bytes]],
    ) -> None:
        """Pass every frame from `reader` to `writer`, each as `through` makes it."""
        while True:
            body = await through(await self._frame(reader))
            writer.write(struct.pack(">i", len(body)) + body)
            await writer.drain()

    async def _rewrite(self, body: bytes, api_key: int, version: int) -> bytes:
        if version >= _FLEXIBLE_FROM[api_key]:
            self.unrewritten += 1
            return body
        data = _Reader(body, 4)  # after the correlation id (response header v0)
        out = bytearray(body[:4])
        if api_key == _METADATA:
            if version >= 3:
                out += struct.pack(">i", data.take(">i"))
            count = data.take(">i")
            out += struct.pack(">i", count)
            for _ in range(max(count, 0)):
                node = data.take(">i")
                host, port = data.string(), data.take(">i")
                local = await self._listen((host or "", port))
                out += struct.pack(">i", node) + _string("127.0.0.1") + struct.pack(">i", local)
                if version >= 1:
                    out += _string(data.string())
        else:
            if version >= 1:
                out += struct.pack(">i", data.take(">i"))
            error = data.take(">h")
            out += struct.pack(">h", error)
            if version >= 1:
                out += _string(data.string())
            node = data.take(">i")
            host, port = data.string(), data.take(">i")
            local = port if error else await self._listen((host or "", port))
            out += struct.pack(">i", node) + _string("127.0.0.1" if not error else host)
            out += struct.pack(">i", local)
        return bytes(out) + body[data.pos :]


# --- the steady stream ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentEvent:
    event_id: str
    dossier: str
    change: int
    status: int


def dossier_number(code: str) -> int:
    return int(code.rsplit("-", 1)[-1])


def source_facts(code: str, change: int) -> dict[str, Any]:
    """The facts change `change` of dossier `code` carries: some fixed by the dossier's number,
    one (digitised components) that turns on at its third change, so the figures depend on
    each dossier's latest change."""
    n = dossier_number(code)
    facts: dict[str, Any] = {
        "KenhThucHien": 2 if n % 2 == 0 else 1,
        "HoSoCoThanhPhanSoHoa": int(n % 4 == 0 and change >= 3),
        "TaiKhoanDuocXacThucVoiVNeID": int(n % 5 == 0),
    }
    if n % 3 == 0:
        facts["DanhSachLePhi"] = [{"TenPhiLePhi": "Lệ phí", "Gia": 50000}]
        facts["DuocThanhToanTrucTuyen"] = 1 if n % 6 == 0 else 0
    return facts


def expected_figures(sent: Iterable[SentEvent]) -> dict[tuple[str, str], int]:
    """What ingest's `govsync_dossiers_counted` must say of the stream once every event of
    `sent` is decided, counted here from the stream's own facts (`source_facts`): every
    dossier is received (the cycle's statuses all are), none finished."""
    latest: dict[str, int] = {}
    for event in sent:
        latest[event.dossier] = max(latest.get(event.dossier, 0), event.change)
    figures: Counter[tuple[str, str]] = Counter()
    for code, change in latest.items():
        n = dossier_number(code)
        for indicator in ("3.3", "4.2", "4.3", "4.4", "4.5b"):
            figures[(indicator, "denominator")] += 1
        figures[("3.3", "numerator")] += n % 2 == 0
        figures[("4.3", "numerator")] += n % 4 == 0 and change >= 3
        figures[("4.5b", "numerator")] += n % 5 == 0
        if n % 3 == 0:
            figures[("3.6", "denominator")] += 1
            figures[("3.6", "numerator")] += n % 6 == 0
    return {key: value for key, value in figures.items() if value}


async def counted_figures(*ingests: ServiceProcess) -> dict[tuple[str, str], int]:
    """`govsync_dossiers_counted` of the stream's agency, summed over the ingest processes."""
    figures: Counter[tuple[str, str]] = Counter()
    for ingest in ingests:
        for family in text_string_to_metric_families(await ingest.metrics()):
            for sample in family.samples:
                if sample.name == "govsync_dossiers_counted" and sample.labels["agency"] == AGENCY:
                    key = (sample.labels["indicator"], sample.labels["part"])
                    figures[key] += int(sample.value)
    return {key: value for key, value in figures.items() if value}


def source_event(code: str, change: int, status: int, at: datetime) -> bytes:
    """A CloudEvent carrying one DongBoHoSoMC item: change `change` of dossier `code`."""
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": f"{code}-{change}",
            "source": SOURCE,
            "type": "vn.gov.dvc.dossier.v1",
            "time": at.isoformat(),
            "agency": AGENCY,
            "data": {
                "MaHoSo": code,
                "TrangThaiHoSo": status,
                "GhiChu": f"thay đổi {change}",
                **source_facts(code, change),
            },
        }
    )


def normalized_record(code: str, change: int, status: int, at: datetime) -> bytes:
    """A `DossierRecord` as ingest would publish it: revision `change` of dossier `code`."""
    kind = RecordKind.DOSSIER
    n = int(code.rsplit("-", 1)[-1])
    return (
        record(code, change, kind, DossierStatus(status), n=n, agency=AGENCY)
        .model_dump_json()
        .encode()
    )


Encoder = Callable[[str, int, int, datetime], bytes]


class SteadyProducer:
    """Sends changes of `dossiers` dossiers at `rate` per second until stopped.

    Changes of one dossier come in order with increasing source times and a different status
    each time, so ingest accepts every one of them. Only changes the broker acknowledged are
    in `sent`: those are the "accepted events" the invariants are about.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        *,
        prefix: str,
        dossiers: int,
        rate: float,
        encode: Encoder = source_event,
        seed: int = 7,
    ) -> None:
        self._kafka = kafka
        self._topic = topic
        self._codes = [f"{prefix}-{n:05d}" for n in range(dossiers)]
        self._rate = rate
        self._encode = encode
        self._random = random.Random(seed)
        self._changes: Counter[str] = Counter()
        self._start = datetime.now(UTC)
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.sent: list[SentEvent] = []
        self.failed = 0

    @property
    def count(self) -> int:
        return len(self.sent)

    async def __aenter__(self) -> SteadyProducer:
        self._task = asyncio.create_task(self._run(), name="steady-producer")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop sending; returns once every send in flight is acknowledged."""
        self._stop.set()
        if self._task is not None:
            async with asyncio.timeout(60):
                await self._task

    def raise_if_failed(self) -> None:
        if self._task is not None and self._task.done():
            self._task.result()

    async def wait_sent(self, count: int, *, within: float) -> None:
        await wait_for(
            lambda: self.count >= count or self._task is None or self._task.done(),
            within=within,
            what=f"{count} events sent",
        )
        self.raise_if_failed()

    def _next(self) -> tuple[str, int, int, datetime]:
        code = self._random.choice(self._codes)
        self._changes[code] += 1
        change = self._changes[code]
        status = STATUS_CYCLE[change % len(STATUS_CYCLE)]
        return code, change, int(status), self._start + timedelta(seconds=change)

    async def _run(self) -> None:
        tick = 0.05
        async with make_producer(self._kafka, linger_ms=2) as producer:
            started = time.monotonic()
            due = 0
            in_flight: list[tuple[SentEvent, asyncio.Future[Any]]] = []
            while not self._stop.is_set():
                target = int((time.monotonic() - started) * self._rate)
                while due < target:
                    code, change, status, at = self._next()
                    event = SentEvent(f"{code}-{change}", code, change, status)
                    future = await producer.send(
                        self._topic, key=code.encode(), value=self._encode(code, change, status, at)
                    )
                    in_flight.append((event, future))
                    due += 1
                in_flight = self._settle(in_flight)
                # The pacing of the stream: the one sleep these tests allow themselves.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), tick)
            await asyncio.gather(*(f for _, f in in_flight), return_exceptions=True)
            self._settle(in_flight)

    def _settle(
        self, in_flight: list[tuple[SentEvent, asyncio.Future[Any]]]
    ) -> list[tuple[SentEvent, asyncio.Future[Any]]]:
        """Move acknowledged sends to `sent` in order; keep those still in flight."""
        for index, (event, future) in enumerate(in_flight):
            if not future.done():
                return in_flight[index:]
            if future.exception() is None:
                self.sent.append(event)
            else:
                self.failed += 1
        return []

    def finals(self) -> dict[str, SentEvent]:
        """The last change sent of every dossier."""
        last: dict[str, SentEvent] = {}
        for event in self.sent:
            last[event.dossier] = event
        return last


# --- invariants -----------------------------------------------------------------------------


@dataclass(slots=True)
class IngestCheck:
    """What ingest published for the stream, against what the stream sent."""

    sent: int
    published: int
    lost: list[str] = field(default_factory=list)
    """Accepted event ids with no normalised record."""
    revision_faults: list[str] = field(default_factory=list)
    """Dossiers whose revisions have a gap, restart or two events for one revision."""
    fault_details: dict[str, str] = field(default_factory=dict)
    """Per faulty dossier: what is wrong, its revisions' events and the changes sent."""
    finals: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Dossier code to (revision, status) of its last normalised record."""
    repeats: int = 0
    """Records published more than once (replays after a crash or a handover)."""


async def collect(
    kafka: KafkaSettings, topic: str, event_ids: set[str], *, within: float
) -> list[Received]:
    """Read `topic` from the start until a record of every one of `event_ids` is there.

    Returns what was read when `within` runs out too: the caller counts what is missing.
    """
    consumer = make_consumer(kafka, group_id=None)
    received: list[Received] = []
    missing = set(event_ids)
    async with consumer:
        partitions = await topic_partitions(kafka, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                quiet = 0
                while missing or quiet < 2:
                    batch = await consumer.getmany(timeout_ms=500)
                    quiet = 0 if batch else quiet + 1
                    for tp, messages in batch.items():
                        for m in messages:
                            received.append(
                                Received(
                                    tp.topic, tp.partition, m.offset, m.key, m.value,
                                    dict(m.headers),
                                )
                            )  # fmt: skip
                            missing.discard(str(orjson.loads(m.value or b"{}").get("event_id")))
    return received


async def count_records(kafka: KafkaSettings, topic: str, *, idle: float = 1.0) -> int:
    """How many records `topic` holds (read from the start until `idle` seconds bring none)."""
    consumer = make_consumer(kafka, group_id=None)
    count = 0
    async with consumer:
        partitions = await topic_partitions(kafka, topic)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        async with asyncio.timeout(60):
            while batch := await consumer.getmany(timeout_ms=int(idle * 1000)):
                count += sum(len(m) for m in batch.values())
    return count


@contextlib.asynccontextmanager
async def sampling_rss(
    services: Sequence[ServiceProcess], interval: float = 0.5
) -> AsyncIterator[None]:
    """Sample the VmRSS of `services` every `interval` seconds while the block runs (a list
    that grows meanwhile is sampled as it is at each turn)."""

    async def sample() -> None:
        while True:
            for service in services:
                service.sample_rss()
            await asyncio.sleep(interval)

    task = asyncio.create_task(sample())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def check_ingest(sent: list[SentEvent], records: list[Received]) -> IngestCheck:
    """Every accepted event has its record; each dossier's revisions are 1..n, one event each."""
    decoded = [orjson.loads(r.value or b"") for r in records]
    by_event = Counter(str(r["event_id"]) for r in decoded)
    check = IngestCheck(sent=len(sent), published=len(decoded))
    check.lost = sorted({e.event_id for e in sent} - set(by_event))
    check.repeats = sum(by_event.values()) - len(by_event)
    events_of: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in decoded:
        code = str(r["dossier_code"])
        events_of[code][int(r["revision"])].add(str(r["event_id"]))
        last = check.finals.get(code)
        if last is None or int(r["revision"]) > last[0]:
            check.finals[code] = (int(r["revision"]), int(r["status"]))
    sent_per_dossier = Counter(e.dossier for e in sent)
    for code, revisions in events_of.items():
        wrong = []
        if sorted(revisions) != list(range(1, len(revisions) + 1)):
            wrong.append("not 1..n")
        if any(len(ids) != 1 for ids in revisions.values()):
            wrong.append("a revision with several events")
        if len(revisions) < sent_per_dossier[code]:
            wrong.append(f"{len(revisions)} revisions for {sent_per_dossier[code]} events sent")
        if wrong:
            check.revision_faults.append(code)
            published = {r: sorted(ids) for r, ids in sorted(revisions.items())}
            check.fault_details[code] = f"{'; '.join(wrong)}: {published}"
    return check


def destination_revisions(sim: Simulator, destination: str) -> dict[str, tuple[int, int]]:
    """Dossier code to (revision, status) as the simulated destination holds it."""
    if destination == PORTAL:
        return {code: (d.revision or 0, d.status or 0) for code, d in sim.state.portal.items()}
    return {
        code: (int(body.get("revision") or 0), int(body.get("status") or 0))
        for code, body in sim.state.ndxp.items()
    }


@dataclass(slots=True)
class Drain:
    """How the destinations caught up once the stream stopped."""

    drained: bool
    seconds: float
    late: dict[str, list[str]]
    """Per destination, the dossiers it still does not hold in their final state."""

    def lost(self) -> int:
        return sum(len(codes) for codes in self.late.values())


async def drain(
    sim: Simulator,
    finals: dict[str, tuple[int, int]],
    destinations: Iterable[str],
    running: Iterable[ServiceProcess],
    *,
    since: float,
    within: float,
    what: str,
) -> Drain:
    """Wait until every destination holds every dossier's final state (or `within` runs out),
    failing at once if one of the `running` services exits on its own."""
    services = list(running)
    late: dict[str, list[str]] = {d: [] for d in destinations}

    def delivered() -> bool:
        for service in services:
            service.assert_running()
        for destination in late:
            late[destination] = behind(sim, destination, finals)
        return not any(late.values())

    drained = True
    try:
        await wait_for(delivered, within=within, what=what)
    except AssertionError:
        drained = False
    return Drain(drained, time.monotonic() - since, late)


def behind(sim: Simulator, destination: str, finals: dict[str, tuple[int, int]]) -> list[str]:
    """Dossiers the destination does not hold in their final (revision, status)."""
    held = destination_revisions(sim, destination)
    return sorted(code for code, final in finals.items() if held.get(code) != final)


def regressions(sim: Simulator, destination: str | None = None) -> int:
    return sum(
        1 for r in sim.state.regressions if destination is None or r.destination == destination
    )


def repeated_deliveries(sim: Simulator, destination: str) -> int:
    """Deliveries the destination accepted for a (dossier, revision) it had accepted before."""
    accepted: Counter[tuple[str, int | None]] = Counter()
    for call in sim.state.calls:
        if call.destination != destination or call.fault is not None:
            continue
        if destination == PORTAL:
            ok = call.service in ("DongBoHoSoMC", "CapNhatTienDoHoSoMC") and call.error_code == 0
        else:
            ok = call.service == "status" and call.http_status == 200
        if ok:
            accepted.update(zip(call.dossiers, call.revisions, strict=False))
    return accepted.total() - len(accepted)


# --- figures --------------------------------------------------------------------------------


@dataclass(slots=True)
class Figures:
    """The numbers every fault test prints at its end."""

    test: str
    events: int = 0
    crashes: int = 0
    lost: int = 0
    regressions: int = 0
    repeated: dict[str, int] = field(default_factory=dict)
    max_rss_mb: dict[str, float] = field(default_factory=dict)
    drain_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        repeated = ", ".join(f"{k} {v}" for k, v in self.repeated.items()) or "0"
        rss = ", ".join(f"{k} {v:.0f}" for k, v in self.max_rss_mb.items()) or "-"
        extra = "".join(f"; {k}: {v}" for k, v in self.extra.items())
        return (
            f"events {self.events}; crashes survived {self.crashes}; events lost {self.lost};"
            f" regressions {self.regressions}; repeated deliveries {repeated};"
            f" max RSS MiB {rss}; time to drain {self.drain_seconds:.1f}s{extra}"
        )

    def report(self, note: Callable[[str], None]) -> None:
        """Print the figures, hand them to the session summary, and append them to a file."""
        line = self.line()
        print(f"\n[{self.test}] {line}")  # noqa: T201 - the figures are the test's report
        note(line)
        path = os.environ.get("GOVSYNC_FAULT_FIGURES")
        if path:
            with Path(path).open("a") as out:
                out.write(json.dumps({"test": self.test, "line": line}, ensure_ascii=False) + "\n")
