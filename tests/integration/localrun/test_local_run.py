"""`govsync run` end to end: traffic through the real services, metrics against the ground truth."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from services.localrun.pipeline import LocalRun
from services.localrun.readings import rates, total
from services.localrun.settings import RunSettings
from services.localrun.traffic import official
from services.localrun.traffic.plans import Pattern, recoded
from services.localrun.traffic.truth import Outcome
from services.localrun.view import ViewState

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]
SERVICE_TASKS = {"ingest", "sync-portal", "sync-ndxp", "scores", "control"}


@pytest.mark.kafka
async def test_metrics_agree_with_the_generator_once_drained(kafka_broker: str) -> None:
    settings = RunSettings(
        seed=20260302, dossiers_per_second=20.0, edocuments_per_second=5.0, refresh_seconds=0.5
    )
    phases: list[str] = []

    def refresh(state: ViewState) -> None:
        phases.append(state.phase)

    local = LocalRun(settings, kafka=kafka_broker, duration=20.0, refresh=refresh)

    async with asyncio.timeout(90):
        running = asyncio.create_task(local.run(asyncio.Event()))
        page = await _scores_page(local, running)
        report = await running

    truth, snapshot = report.truth, report.snapshot
    assert truth.sent > 500
    assert report.drained
    assert snapshot.consumed == truth.sent
    for outcome in ("accepted", "duplicate", "stale", "dead_lettered"):
        assert snapshot.outcomes[outcome] > 0
    assert report.differences == []  # every count behind every rate, per agency
    # The scores service's page, read while the run went on, lists the run's agencies.
    for agency in settings.agencies:
        assert agency in page
    # Its scorecards (every agency, each month of the traffic and the period holding it all)
    # equal the truth's own reckoning from the plans, indicator by indicator and in points.
    now = datetime.now(UTC)
    shown, months = official.run_periods(truth, now)
    assert shown.name in snapshot.scorecards
    assert {m.name for m in months} <= set(snapshot.scorecards)
    for period, cards in snapshot.scorecards.items():
        asked, answered = snapshot.scores_read[period]
        truths = [official.scorecards(truth, official.span(period), at) for at in (asked, answered)]
        for agency in settings.agencies:
            if agency not in cards:  # nothing of it in this period (a backfill month, say)
                assert all(t.get(agency, official.Card()).total == 0 for t in truths)
                assert all(
                    not c.denominator
                    for t in truths
                    for c in t.get(agency, official.Card()).counts.values()
                ), (period, agency)
                continue
            card = cards[agency]
            assert any(abs(card.points - t[agency].total) < 1e-6 for t in truths if agency in t), (
                period,
                agency,
            )
            for indicator in official.SCORED:
                counts = [
                    (t[agency].counts[indicator].numerator, t[agency].counts[indicator].denominator)
                    for t in truths
                    if agency in t
                ]
                assert card.counts[indicator] in counts, (period, agency, indicator)
    assert all(snapshot.scorecards[shown.name][a].points > 0 for a in settings.agencies)
    # Per entry point: what ingest consumed equals what went in there, and the broken events
    # sent through the intakes were refused there (never dead-lettered).
    for entry in ("kafka", "http", "dvcqg"):
        assert snapshot.entries[entry]["accepted"] > 0
        assert snapshot.entries[entry] == {
            o.value: n for o, n in truth.entry_outcomes[entry].items()
        }
    assert snapshot.intake_refused["dvcqg"] == truth.refused["dvcqg"] > 0
    assert snapshot.intake_refused["http"] == truth.refused["http"]
    assert snapshot.entries["dvcqg"]["dead_lettered"] == 0
    assert sum(sum(c.values()) for c in snapshot.entries.values()) == (
        snapshot.consumed + snapshot.edocuments_consumed
    )
    # The run's agencies, and the new codes of those re-coded mid-life (a few dossiers move).
    received = {a for a, t in snapshot.agencies.items() if t.received}
    assert (
        set(settings.agencies) <= received <= {*settings.agencies, *map(recoded, settings.agencies)}
    )
    # E-documents: each counted once, the duplicates not; the digital-signature rate per agency
    # from the metrics equals the generator's (the counts behind it are in `differences` too).
    assert truth.edocument_sent > 50
    assert snapshot.edocuments_consumed == truth.edocument_sent
    assert snapshot.edocument_outcomes["duplicate"] == truth.edocument_outcomes[Outcome.DUPLICATE]
    for agency in settings.agencies:
        measured, expected = (
            rates(snapshot.agency(agency))["sig"],
            rates(truth.agency(agency))["sig"],
        )
        assert measured == expected
        assert measured.value is not None
    outgoing = total(snapshot.agencies.values())
    assert outgoing.edoc_outgoing_verified
    assert outgoing.edoc_outgoing_untrusted
    assert outgoing.edoc_outgoing_invalid
    assert outgoing.edoc_outgoing_unsigned
    assert outgoing.edoc_incoming_verified + outgoing.edoc_incoming_unsigned
    # NDXP takes every record. The portal takes no step for a dossier it holds no header of
    # (the sync's step gate): the first change of a dossier whose facts arrive late is a step
    # before any header, parked until the header comes. A dossier the run left at that first
    # change has its step still parked (its wait, 300 s, outlasts the run); every other record
    # is acknowledged or, its header refused, dead-lettered with its parked steps.
    steps_first = sum(p.pattern is Pattern.LATE_FACTS for p, _ in truth.progress.values())
    waiting = sum(
        p.pattern is Pattern.LATE_FACTS and sent == 1 for p, sent in truth.progress.values()
    )
    assert snapshot.acknowledged("ndxp") == snapshot.accepted
    refused = snapshot.sync["portal"]["dead_lettered"]
    assert snapshot.parked["portal"] == waiting
    assert snapshot.acknowledged("portal") + refused + waiting == snapshot.accepted
    assert refused <= steps_first
    for target in ("portal", "ndxp"):
        assert snapshot.quantile(target, 0.99) is not None
    # The destinations hold every dossier, each at the status the generator last sent.
    assert report.portal_dossiers == len(truth.final_status)
    assert report.ndxp_dossiers == len(truth.statuses)
    assert report.portal_status_mismatches == []
    assert report.regressions == 0
    # The view was refreshed while traffic flowed; every service task is gone.
    assert {"starting", "running", "draining", "stopped"} <= set(phases)
    assert not [t for t in asyncio.all_tasks() if t.get_name() in SERVICE_TASKS]


async def _scores_page(local: LocalRun, running: asyncio.Task[object]) -> str:
    """The scores service's front page for the run's period, once it lists the run's agencies
    (each as soon as one of its dossiers was received)."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        while not running.done():
            state = local.state
            if state is not None and state.endpoints.scores and state.phase == "running":
                period = official.run_periods(local.generator.truth, datetime.now(UTC))[0].name
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(
                        f"{state.endpoints.scores}/", params={"period": period}
                    )
                    listed = all(a in response.text for a in local.settings.agencies)
                    if response.status_code == 200 and listed:
                        return response.text
            await asyncio.sleep(0.5)
    return ""


def _broker_processes(port: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"tcp://127.0.0.1:{port}" in cmdline and "broker" in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def _command_env(tmp_path: Path) -> dict[str, str]:
    """The command's defaults, whatever the test run's own settings; its log under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSYNC_")}
    return env | {"GOVSYNC_RUN_LOG_FILE": str(tmp_path / "run.log")}


def test_the_command_runs_on_the_embedded_broker_and_exits_cleanly(tmp_path: Path) -> None:
    env = _command_env(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "services", "run", "--duration", "15"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output
    assert "Traceback" not in (tmp_path / "run.log").read_text()
    assert "metrics and generator agree" in done.stdout, output
    assert re.search(r"scores\s+http://127\.0\.0\.1:\d+/", done.stdout), output
    assert re.search(r"scores \S+ 000\.00\.20\.H57: points \d", done.stdout), output
    assert re.search(r"entry dvcqg: consumed [1-9]", done.stdout), output
    broker = re.search(r"broker\s+127\.0\.0\.1:(\d+) \(embedded\)", done.stdout)
    assert broker is not None, output
    assert _broker_processes(broker.group(1)) == []


def _session_members(session: int) -> list[str]:
    """Processes still in the session the command was started in (itself excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == session:
            continue
        try:
            # Fields after the command name (which may hold spaces): state ppid pgrp session ...
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(entry.name)
    return found


@pytest.mark.parametrize(
    ("presses", "verdict"),
    [
        pytest.param(1, "metrics and generator agree", id="once-drains"),
        # At once: whether the last counts were still in flight depends on the moment.
        pytest.param(2, None, id="twice-stops-at-once"),
    ],
)
def test_ctrl_c_stops_everything_without_a_traceback(
    tmp_path: Path, presses: int, verdict: str | None
) -> None:
    env = _command_env(tmp_path)
    lines: list[str] = []
    flowing = threading.Event()
    # A session of its own, signalled as a whole: what a terminal's Ctrl-C does.
    with subprocess.Popen(
        [sys.executable, "-m", "services", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                if re.search(r"running\] sent=\d+ in=[1-9]", line):
                    flowing.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert flowing.wait(90), "".join(lines)
            for _ in range(presses):
                os.killpg(process.pid, signal.SIGINT)
                time.sleep(0.3)
            returncode = process.wait(timeout=90)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            reader.join(10)
    output = "".join(lines)
    assert returncode == 0, output
    assert "Traceback" not in output
    assert "Traceback" not in (tmp_path / "run.log").read_text()
    assert "govsync run: stopped" in output, output
    assert verdict is None or verdict in output, output
    assert _session_members(process.pid) == []
