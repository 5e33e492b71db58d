"""One per-dossier sweep of an agency and period: look every dossier up, re-send what differs,
check again. Resumable, one at a time per agency.

    lookup    the period's dossiers in code order, `batch_size` at a time; each batch's findings,
              counters and last code are one transaction (the checkpoint)
    resend    missing and different dossiers whose latest revision the portal sync acknowledged
              are re-published for it (`resend.py`); those it has not acknowledged yet are on
              their way already (`in_flight`), and are not
    recheck   after `recheck_delay_seconds`, those re-sent are looked up again (against
              govsync's view at that time), up to `recheck_attempts` times while any differ
    done      what still differs is the sweep's `remaining`; the portal's own count gives
              `unknown` where the agency's department is configured

A sweep that stops (a signal, a crash, kill -9) is continued by the next run for the same
agency and period, in the phase and at the code where it stopped. The agency's lease is renewed
every third of its length while the sweep runs, whatever the portal does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from services.common.logging import get_logger
from services.reconcile.compare import Known, State
from services.reconcile.errors import SweepBusyError
from services.reconcile.lookup import Lookups
from services.reconcile.options import ReconcileOptions
from services.reconcile.store import Finding, Looked, Phase, ReconcileStore, Resend, Sweep
from services.scores.periods import Period

log = get_logger(__name__)

LEASE_POLL_SECONDS = 0.5


class Resender(Protocol):
    async def resend(self, wanted: Mapping[str, tuple[bool, int]]) -> dict[str, str]:
        """Re-send each dossier (code -> (the portal holds nothing of it, its latest revision));
        says per code what was done (`Resend.SENT` or `Resend.NO_RECORD`)."""


PortalCount = Callable[[str, Period], Awaitable[int | None]]
"""The portal's count of the agency's received dossiers in the period, if it can be asked."""


class Stopped(Exception):  # noqa: N818 - a signal, not an error
    """The sweep was asked to stop; it continues from its checkpoint next time."""


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class Sweeper:
    store: ReconcileStore
    lookups: Lookups
    options: ReconcileOptions
    resender: Resender | None = None
    portal_count: PortalCount | None = None
    clock_ms: Callable[[], int] = _now_ms

    async def run(
        self,
        agency: str,
        period: Period,
        codes: Sequence[str],
        *,
        stop: asyncio.Event | None = None,
    ) -> Sweep:
        """Sweep (or continue sweeping) `agency`'s dossiers of `period`, held under `codes`.

        Raises `SweepBusyError` if another sweep of the agency holds the lease beyond
        `lease_wait_seconds`, `Stopped` if `stop` was set before it finished.
        """
        holder = uuid.uuid4().hex
        await self._acquire(agency, holder)
        lost = asyncio.Event()
        renewing = asyncio.create_task(self._renew(agency, holder, lost))
        try:
            return await self._sweep(agency, period, codes, stop, lost)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            await asyncio.to_thread(self.store.release, agency, holder)

    async def _acquire(self, agency: str, holder: str) -> None:
        lease_ms = int(self.options.lease_seconds * 1000)
        deadline = time.monotonic() + self.options.lease_wait_seconds
        while True:
            taken = await asyncio.to_thread(
                self.store.acquire, agency, holder, now_ms=self.clock_ms(), lease_ms=lease_ms
            )
            if taken:
                return
            if time.monotonic() >= deadline:
                raise SweepBusyError(f"another sweep of {agency} is running")
            await asyncio.sleep(LEASE_POLL_SECONDS)

    async def _renew(self, agency: str, holder: str, lost: asyncio.Event) -> None:
        lease_ms = int(self.options.lease_seconds * 1000)
        while True:
            await asyncio.sleep(self.options.lease_seconds / 3)
            kept = await asyncio.to_thread(
                self.store.acquire, agency, holder, now_ms=self.clock_ms(), lease_ms=lease_ms
            )
            if not kept:
                lost.set()
                return

    async def _sweep(
        self,
        agency: str,
        period: Period,
        codes: Sequence[str],
        stop: asyncio.Event | None,
        lost: asyncio.Event,
    ) -> Sweep:
        store = self.store
        sweep = await asyncio.to_thread(store.unfinished, agency, str(period))
        if sweep is None:
            population = await asyncio.to_thread(store.population, codes, period)
            sweep = await asyncio.to_thread(
                store.start, agency, str(period), population=population, now_ms=self.clock_ms()
            )
            log.info("sweep started", agency=agency, period=str(period), dossiers=population)
        else:
            log.info(
                "sweep continued",
                agency=agency,
                period=str(period),
                phase=sweep.phase,
                looked_up=sweep.looked_up,
            )

        def check() -> None:
            if lost.is_set():
                raise SweepBusyError(f"the lease of {agency} was taken over")
            if stop is not None and stop.is_set():
                raise Stopped(agency)

        if sweep.phase == Phase.LOOKUP:
            await self._look(sweep, period, codes, check)
            await asyncio.to_thread(store.set_phase, sweep.id, Phase.RESEND)
        check()
        if sweep.phase in (Phase.LOOKUP, Phase.RESEND):
            await self._resend(sweep)
            await asyncio.to_thread(store.set_phase, sweep.id, Phase.RECHECK)
        await self._recheck(sweep, check, stop)
        unknown = await self._unknown(sweep, agency, period, codes)
        done = await asyncio.to_thread(
            store.finish, sweep.id, now_ms=self.clock_ms(), unknown=unknown
        )
        log.info(
            "sweep finished",
            agency=agency,
            period=str(period),
            dossiers=done.looked_up,
            matched=done.matched,
            missing=done.missing,
            different=done.different,
            resent=done.resent,
            remaining=done.remaining,
            seconds=done.duration_seconds,
        )
        return done

    async def _look(
        self, sweep: Sweep, period: Period, codes: Sequence[str], check: Callable[[], None]
    ) -> None:
        store, size = self.store, self.options.batch_size

        def following(after: str) -> asyncio.Task[list[Known]]:
            return asyncio.create_task(
                asyncio.to_thread(store.batch, codes, period, after=after, limit=size)
            )

        self.lookups.tally.take()
        upcoming = following(sweep.checkpoint)
        try:
            while True:
                check()
                batch = await upcoming
                if not batch:
                    return
                # Read the next batch while this one is looked up: reading is not looking up,
                # and the lookups stay one batch at a time (the checkpoint's promise).
                upcoming = following(batch[-1].code)
                verdicts = await self.lookups.verdicts(batch)
                spent = self.lookups.tally.take()
                await asyncio.to_thread(
                    store.record_batch,
                    sweep.id,
                    [Looked(k, v) for k, v in zip(batch, verdicts, strict=True)],
                    checkpoint=batch[-1].code,
                    lookups=spent.lookups,
                    pauses=spent.pauses,
                    paused_seconds=spent.paused_seconds,
                )
        finally:
            upcoming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await upcoming

    async def _resend(self, sweep: Sweep) -> None:
        findings = await asyncio.to_thread(
            self.store.findings, sweep.id, states=(State.MISSING, State.DIFFERENT)
        )
        todo = [f for f in findings if f.resend is None]
        decided: dict[str, str] = {
            f.code: Resend.IN_FLIGHT for f in todo if f.ack_revision < f.revision
        }
        wanted = {
            f.code: (f.state == State.MISSING, f.revision) for f in todo if f.code not in decided
        }
        if not wanted:
            pass
        elif not self.options.resend or self.resender is None:
            decided |= dict.fromkeys(wanted, Resend.OFF)
        else:
            decided |= await self.resender.resend(wanted)
        if decided:
            await asyncio.to_thread(self.store.mark_resend, sweep.id, decided)

    async def _recheck(
        self, sweep: Sweep, check: Callable[[], None], stop: asyncio.Event | None
    ) -> None:
        for _ in range(self.options.recheck_attempts):
            findings = await asyncio.to_thread(self.store.findings, sweep.id)
            open_ = [f for f in findings if f.resend == Resend.SENT and f.now != State.MATCHED]
            if not open_:
                return
            await _sleep(self.options.recheck_delay_seconds, stop)
            check()
            await self._check_again(sweep, open_)

    async def _check_again(self, sweep: Sweep, findings: Sequence[Finding]) -> None:
        known = await asyncio.to_thread(self.store.known, [f.code for f in findings])
        batch = [known[f.code] for f in findings if f.code in known]
        self.lookups.tally.take()
        verdicts = await self.lookups.verdicts(batch)
        spent = self.lookups.tally.take()
        states = {k.code: str(v.state) for k, v in zip(batch, verdicts, strict=True)}
        await asyncio.to_thread(self.store.mark_after, sweep.id, states)
        await asyncio.to_thread(
            self.store.add_lookups,
            sweep.id,
            lookups=spent.lookups,
            pauses=spent.pauses,
            paused_seconds=spent.paused_seconds,
        )

    async def _unknown(
        self, sweep: Sweep, agency: str, period: Period, codes: Sequence[str]
    ) -> int | None:
        """Received dossiers the portal holds beyond those of govsync's it was found to hold."""
        if self.portal_count is None:
            return None
        held = await self.portal_count(agency, period)
        if held is None:
            return None
        missing = await asyncio.to_thread(self.store.findings, sweep.id, states=(State.MISSING,))
        ours = await asyncio.to_thread(self.store.received_population, codes, period)
        lost = await asyncio.to_thread(
            self.store.received_in, [f.code for f in missing if f.now != State.MATCHED], period
        )
        return max(0, held - (ours - lost))


async def _sleep(seconds: float, stop: asyncio.Event | None) -> None:
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
