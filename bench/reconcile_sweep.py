"""A per-dossier sweep over 100,000 dossiers at the configured lookup rate: it must finish in the
time the rate implies (within 10%), never exceed the rate, and survive a kill -9 halfway.

    uv run python -m bench.reconcile_sweep [--dossiers 100000] [--rate 200] [--batch 500]
                                           [--kill 1]

The simulator runs as its own process (`govsync simulate`), holding every dossier (put there
through the portal's own DongBoHoSoMC); the scores database is a SQLite file holding their facts.
Run 1: `govsync reconcile dossiers` uninterrupted: its duration against dossiers / rate. Run 2
(with --kill 1): the same sweep of a fresh database, SIGKILLed once half the dossiers were
looked up, started again: it waits for the dead sweep's lease, continues from the checkpoint;
the simulator's record of every lookup says how many dossiers were asked twice (at most the
batch in flight) and the most lookups in any one second (at most the rate). The sweep's own
CPU time per lookup says up to which rate one sweep process can hold its schedule. Writes a
JSON report to bench/results/.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import resource
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.common import ROOT, arguments, table, write_report
from services.localrun.broker import free_port
from services.scores.database import make_engine, migrate
from services.scores.store import ScoreStore
from tests.support.reconcile import AGENCY, PERIOD, plan, put_on_portal, seed

LEASE_SECONDS = 5


def _env(portal_url: str, database_url: str, rate: float, batch: int) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GOVSYNC_")} | {
        "GOVSYNC_SCORES_DATABASE_URL": database_url,
        "GOVSYNC_PORTAL_URL": portal_url,
        "GOVSYNC_PORTAL_PASSWORD": "secret",
        "GOVSYNC_PORTAL_DSTCODE": "DVCQG",
        "GOVSYNC_RECONCILE_LOOKUPS_PER_SECOND": str(rate),
        "GOVSYNC_RECONCILE_BATCH_SIZE": str(batch),
        "GOVSYNC_RECONCILE_CONCURRENCY": "64",
        "GOVSYNC_RECONCILE_LEASE_SECONDS": str(LEASE_SECONDS),
        "GOVSYNC_RECONCILE_LEASE_WAIT_SECONDS": str(3 * LEASE_SECONDS),
        "GOVSYNC_RECONCILE_RESEND": "false",
        "GOVSYNC_LOG_LEVEL": "WARNING",
    }


async def _sweep(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services", "reconcile", "dossiers",
        "--agency", AGENCY, "--period", PERIOD,
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _lookups(client: httpx.AsyncClient, since: int = 0) -> list[dict[str, Any]]:
    calls = (
        await client.get("/_sim/calls", params={"destination": "portal", "since": since})
    ).json()
    return [c for c in calls if c["service"] == "TraCuuHoSo"]


def _children_cpu() -> float:
    """CPU seconds of the child processes waited for so far: the difference around one sweep is
    that sweep's own (the simulator is still running, so not in it)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _busiest_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def _spent(result: dict[str, Any], times: list[float], rate: float) -> dict[str, float]:
    """Where the sweep's time went: before its first lookup, between lookups at the paced
    interval, in the gaps longer than three intervals (batch boundaries), after its last."""
    times = sorted(times)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    long = [g for g in gaps if g > 3 / rate]
    return {
        "before_first": round(times[0] - result["started_ms"] / 1000, 3),
        "after_last": round(result["finished_ms"] / 1000 - times[-1], 3),
        "paced": round(sum(gaps) - sum(long), 3),
        "long_gaps": round(sum(long), 3),
        "long_gap_count": len(long),
    }


def _database(tmp: Path, name: str, planned: list[Any]) -> str:
    url = f"sqlite:///{tmp / name}"
    engine = make_engine(url)
    migrate(engine)
    seed(ScoreStore(engine), planned)
    engine.dispose()
    return url


async def _run(dossiers: int, rate: float, batch: int, kill: bool) -> dict[str, Any]:
    planned = plan(dossiers, prefix="H29.BENCH")
    port = free_port()
    simulator = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services", "simulate", "--port", str(port),
        cwd=ROOT, env=os.environ | {"GOVSYNC_LOG_LEVEL": "WARNING"},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    report: dict[str, Any] = {"dossiers": dossiers, "rate": rate, "batch": batch}
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            async with asyncio.timeout(30):
                while True:
                    try:
                        await client.get("/_sim/stats")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.2)
            started = time.monotonic()
            await put_on_portal(base, planned, batch=500)
            report["portal_fill_seconds"] = round(time.monotonic() - started, 1)
            with tempfile.TemporaryDirectory(prefix="govsync-bench-") as tmp:
                started = time.monotonic()
                url = _database(Path(tmp), "one.sqlite3", planned)
                report["database_fill_seconds"] = round(time.monotonic() - started, 1)
                env = _env(f"{base}/portal", url, rate, batch)
                before = (await client.get("/_sim/stats")).json()["calls"]
                cpu_before = _children_cpu()
                sweep = await _sweep(env)
                out, _ = await sweep.communicate()
                cpu = _children_cpu() - cpu_before
                result = json.loads(out.decode().strip().splitlines()[-1])
                calls = await _lookups(client, before)
                implied = dossiers / rate
                report["uninterrupted"] = {
                    "exit": sweep.returncode,
                    "matched": result["matched"],
                    "seconds": result["duration_seconds"],
                    "implied_seconds": implied,
                    "ratio": result["duration_seconds"] / implied,
                    "lookups": len(calls),
                    "busiest_second": _busiest_second([c["at"] for c in calls]),
                    "spent": _spent(result, [c["at"] for c in calls], rate),
                    "cpu_seconds": round(cpu, 1),
                    "cpu_ms_per_lookup": round(1000 * cpu / max(1, len(calls)), 3),
                }
                if kill:
                    report["killed"] = await _killed(client, Path(tmp), planned, base, rate, batch)
    finally:
        simulator.send_signal(signal.SIGTERM)
        await simulator.wait()
    return report


async def _killed(
    client: httpx.AsyncClient,
    tmp: Path,
    planned: list[Any],
    base: str,
    rate: float,
    batch: int,
) -> dict[str, Any]:
    url = _database(tmp, "two.sqlite3", planned)
    env = _env(f"{base}/portal", url, rate, batch)
    before = (await client.get("/_sim/stats")).json()["calls"]
    first = await _sweep(env)
    half = len(planned) // 2
    while True:
        stats = (await client.get("/_sim/stats")).json()
        if stats["calls"] - before >= half:
            break
        await asyncio.sleep(0.5)
    first.send_signal(signal.SIGKILL)
    await first.wait()
    killed_at = (await client.get("/_sim/stats")).json()["calls"] - before
    restarted = time.monotonic()
    second = await _sweep(env)
    out, _ = await second.communicate()
    result = json.loads(out.decode().strip().splitlines()[-1])
    calls = await _lookups(client, before)
    per_code = Counter(c["dossiers"][0] for c in calls if c["dossiers"])
    return {
        "exit": second.returncode,
        "killed_after_lookups": killed_at,
        "matched": result["matched"],
        "looked_up": result["looked_up"],
        "second_run_seconds": round(time.monotonic() - restarted, 1),
        "dossiers_looked_up": len(per_code),
        "looked_up_twice": sum(1 for n in per_code.values() if n == 2),
        "looked_up_more": sum(1 for n in per_code.values() if n > 2),
        "busiest_second": _busiest_second([c["at"] for c in calls]),
    }


def main() -> None:
    args = arguments(__doc__, dossiers=100_000, rate=200.0, batch=500, kill=1)
    report = asyncio.run(_run(args.dossiers, args.rate, args.batch, bool(args.kill)))
    one = report["uninterrupted"]
    rows = [
        [
            "uninterrupted: seconds (implied)",
            f"{one['seconds']:.1f} ({one['implied_seconds']:.1f})",
        ],
        ["uninterrupted: duration / implied", f"{one['ratio']:.3f}"],
        ["uninterrupted: busiest second (rate)", f"{one['busiest_second']} ({args.rate:g})"],
        ["uninterrupted: matched", one["matched"]],
        [
            "uninterrupted: sweep CPU seconds (ms a lookup)",
            f"{one['cpu_seconds']:g} ({one['cpu_ms_per_lookup']:g})",
        ],
        *(
            [f"uninterrupted: seconds {part}", f"{seconds:g}"]
            for part, seconds in one["spent"].items()
        ),
    ]
    if "killed" in report:
        two = report["killed"]
        rows += [
            ["kill -9: killed after lookups", two["killed_after_lookups"]],
            ["kill -9: matched / looked up", f"{two['matched']} / {two['looked_up']}"],
            ["kill -9: asked twice (batch)", f"{two['looked_up_twice']} ({args.batch})"],
            ["kill -9: asked more than twice", two["looked_up_more"]],
            ["kill -9: busiest second (rate)", f"{two['busiest_second']} ({args.rate:g})"],
        ]
    print(table(["reconcile sweep", "value"], rows))
    write_report("reconcile_sweep", report)


if __name__ == "__main__":
    main()
