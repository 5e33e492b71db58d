"""`TraCuuHoSo` at a steady rate, paused while the portal fails: the sweep's only portal calls.

The session, its renewal and the translation of the portal's answers are the sync's portal
client's (`services.sync.portal.PortalClient.call`). The rate is a ceiling (`Pacer`): starts
evenly spaced `1 / rate` apart on a schedule that does not drift, checked against the starts
themselves so that no second ever holds more than the configured number, with a 5% margin for
the way to the portal (aiolimiter's leaky bucket of one was tried first: each wake-up's delay
adds to the next gap, 1.1 ms a lookup on a loaded machine, a sweep 16% slower than its rate;
and the portal saw 41 lookups in a second at 40/s once the process was descheduled between a
start and its request). A transient failure (timeout, 5xx, 429, a retryable
error code, a session the portal refuses even after a new login) pauses every lookup: after
`pause_initial_seconds` one probe goes, each failed probe doubles the pause (the sync's
`CircuitBreaker`, opened by a single failure), and a success resumes them all. The dossier whose
lookup failed is asked again; a failure never makes it missing.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.common.logging import get_logger
from services.reconcile.compare import Known, State, Verdict, compare
from services.reconcile.options import ReconcileOptions
from services.sync.delivery import CircuitBreaker
from services.sync.errors import (
    DossierExistsError,
    DossierMissingError,
    PermanentError,
    TransientError,
)
from services.sync.mapping import SERVICE_LOOKUP
from services.sync.portal import PortalClient

log = get_logger(__name__)


@dataclass(slots=True)
class Tally:
    """What a run of lookups cost: calls made (failed ones included) and time paused."""

    lookups: int = 0
    pauses: int = 0
    paused_seconds: float = 0.0

    def take(self) -> Tally:
        """The tally so far, and start a new one (each batch records its own)."""
        taken = Tally(self.lookups, self.pauses, self.paused_seconds)
        self.lookups, self.pauses, self.paused_seconds = 0, 0, 0.0
        return taken


MARGIN = 1.05
"""The window of `n` starts is this much longer than `n / rate` (see `Pacer`)."""


class Pacer:
    """Starts at most `n` in any `n / rate` seconds (`n` = the rate rounded down, at least 1),
    evenly spaced, on a schedule that does not drift."""

    def __init__(self, rate: float) -> None:
        self._interval = MARGIN / rate
        self._window = max(1, math.floor(rate))
        # 5% over the exact span: a request held up to 50 ms on its way (a busy machine, the
        # network) does not make `n + 1` arrive at the portal within `n / rate` seconds; the
        # sweep runs at 95% of the configured rate.
        self._span = self._window / rate * MARGIN
        self._starts: deque[float] = deque(maxlen=self._window)
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Return at the caller's slot: the next on the schedule (a late wake-up does not push
        the later slots back), but never the `n + 1`-th start within `n / rate` seconds."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            now = loop.time()
            slot = max(now, self._next)
            if len(self._starts) == self._window:
                slot = max(slot, self._starts[0] + self._span)
            if slot > now:
                await asyncio.sleep(slot - now)
            self._next = slot + self._interval
            self._starts.append(max(loop.time(), slot))


class Lookups:
    """Looks dossiers up on the portal for one sweep at a time (see the module docstring)."""

    def __init__(self, client: PortalClient, share_path: str, options: ReconcileOptions) -> None:
        self._client = client
        self._share_path = share_path
        self._pacer = Pacer(options.lookups_per_second)
        self._slots = asyncio.Semaphore(options.concurrency)
        self._breaker = CircuitBreaker(
            1,
            options.pause_initial_seconds,
            max_reset_seconds=options.pause_max_seconds,
        )
        self.tally = Tally()
        self._failing = False

    async def rows(self, code: str, agency: str) -> list[Mapping[str, Any]] | None:
        """What the portal holds of the dossier ([] if nothing); None if it refused to say."""
        while True:
            wait = self._breaker.acquire()
            if wait > 0:
                await self._paused(wait)
                continue
            await self._pacer.wait()
            self.tally.lookups += 1
            try:
                body = await self._client.call(
                    self._share_path,
                    SERVICE_LOOKUP,
                    {"mahoso": code},
                    madonvi=agency,
                    extra={"mahoso": code},
                )
            except TransientError as exc:
                self._failed(exc)
                continue
            except DossierMissingError:
                self._answered()
                return []
            except DossierExistsError:
                self._answered()
                return [{"MaHoSo": code}]
            except PermanentError as exc:
                self._answered()  # the portal answered: it is up
                log.warning("portal refused a lookup", error=type(exc).__name__)
                return None
            except BaseException:
                self._breaker.abandon()
                raise
            self._answered()
            return _held(body.get("result"), code)

    def _failed(self, error: TransientError) -> None:
        self._breaker.failure()
        if not self._failing:
            self._failing = True
            self.tally.pauses += 1
            log.info("portal lookups failing: sweep paused", error=type(error).__name__)

    def _answered(self) -> None:
        self._breaker.success()
        if self._failing:
            self._failing = False
            log.info("portal answering again: sweep resumed")

    async def _paused(self, wait: float) -> None:
        started = time.monotonic()
        await asyncio.sleep(wait)
        self.tally.paused_seconds += time.monotonic() - started

    async def verdict(self, known: Known) -> Verdict:
        async with self._slots:
            rows = await self.rows(known.code, known.agency)
        if rows is None:
            return Verdict(State.UNCHECKED)
        return compare(known, rows)

    async def verdicts(self, batch: Sequence[Known]) -> list[Verdict]:
        """Every dossier of the batch looked up (`concurrency` at once, at the rate)."""
        return list(await asyncio.gather(*(self.verdict(k) for k in batch)))


def _held(result: object, code: str) -> list[Mapping[str, Any]]:
    """`TraCuuHoSo`'s `result`: its rows; a non-empty answer that is not rows still says the
    portal holds the dossier (DOMAIN.md §1)."""
    if isinstance(result, list):
        rows: list[Mapping[str, Any]] = [row for row in result if isinstance(row, Mapping)]
        return rows or ([{"MaHoSo": code}] if result else [])
    return [{"MaHoSo": code}] if result else []
