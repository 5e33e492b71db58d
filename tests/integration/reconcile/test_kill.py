"""`govsync reconcile dossiers` killed with SIGKILL halfway: run again, it waits for the dead
sweep's lease to expire, continues from the checkpoint and finishes; no dossier is looked up
twice but those of the batch in flight, and the rate holds across both runs (the simulator's
record of every lookup)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from services.reconcile.store import ReconcileStore
from services.scores.database import make_engine, migrate
from services.scores.store import ScoreStore
from services.simulator.server import running_simulator
from services.simulator.simulator import Simulator
from tests.support.reconcile import AGENCY, PERIOD, lookups, plan, put_on_portal, seed

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
RATE, COUNT, BATCH = 100, 1000, 50


def _env(portal_url: str, database_url: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GOVSYNC_")} | {
        "GOVSYNC_SCORES_DATABASE_URL": database_url,
        "GOVSYNC_PORTAL_URL": portal_url,
        "GOVSYNC_PORTAL_PASSWORD": "secret",
        "GOVSYNC_PORTAL_DSTCODE": "DVCQG",
        "GOVSYNC_RECONCILE_LOOKUPS_PER_SECOND": str(RATE),
        "GOVSYNC_RECONCILE_BATCH_SIZE": str(BATCH),
        "GOVSYNC_RECONCILE_LEASE_SECONDS": "3",
        "GOVSYNC_RECONCILE_LEASE_WAIT_SECONDS": "20",
        "GOVSYNC_RECONCILE_RESEND": "false",
    }


async def _start(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services", "reconcile", "dossiers",
            "--agency", AGENCY, "--period", PERIOD,
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=out,
        )  # fmt: skip


async def test_kill_9_halfway_continues_from_the_checkpoint(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'scores.sqlite3'}"
    engine = make_engine(database_url)
    migrate(engine)
    planned = plan(COUNT)
    seed(ScoreStore(engine), planned)
    async with running_simulator(Simulator(seed=9)) as portal:
        await put_on_portal(portal.base_url, planned)
        env = _env(portal.portal_url, database_url)
        first = await _start(env, tmp_path / "first.log")
        try:
            async with asyncio.timeout(60):
                while len(lookups(portal.simulator)) < COUNT // 2:  # noqa: ASYNC110 - bounded
                    await asyncio.sleep(0.05)
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        killed_at = len(lookups(portal.simulator))
        second = await _start(env, tmp_path / "second.log")
        async with asyncio.timeout(120):
            out, _ = await second.communicate()
        assert second.returncode == 0, (tmp_path / "second.log").read_text()
        calls = lookups(portal.simulator)
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["phase"] == "done"
    assert result["matched"] == result["looked_up"] == COUNT
    counted = Counter(code for _, code in calls)
    assert set(counted) == {p.code for p in planned}
    twice = [code for code, n in counted.items() if n > 1]
    assert max(counted.values()) <= 2
    assert len(twice) <= BATCH  # the batch in flight when it was killed, no more
    assert COUNT // 2 <= killed_at < COUNT
    # One sweep, continued: its counters are those of every dossier once.
    sweeps = ReconcileStore(engine).history(AGENCY, PERIOD)
    assert [s.id for s in sweeps] == [result["id"]]
    times = sorted(at for at, _ in calls)
    busiest = max(sum(1 for t in times[i : i + RATE + 1] if t < start + 1.0)
                  for i, start in enumerate(times))  # fmt: skip
    assert busiest <= RATE
    engine.dispose()
