"""`govsync run`: the whole pipeline locally in one process, with traffic and a live view.

The parts live beside it in `services.localrun` (traffic, readings, view, pipeline); this
module is the command's edge: settings, logging, signals, the console and the exit code.
Options beyond `--kafka` and `--duration` are `GOVSYNC_RUN_*` variables (`RunSettings`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live

from services.common.lifecycle import install_stop_handlers, run_async
from services.common.logging import configure_logging, get_logger
from services.localrun.pipeline import LocalRun, RunReport
from services.localrun.settings import RunSettings
from services.localrun.view import (
    ViewState,
    endpoint_lines,
    print_final,
    render,
    summary_line,
)

log = get_logger(__name__)


def _log_to_file(settings: RunSettings) -> Path:
    """The services log JSON lines; on a live terminal view they go to a file instead."""
    path = settings.log_file or Path(tempfile.gettempdir()) / f"govsync-run-{os.getpid()}.log"
    configure_logging(settings.log_level, service="govsync-run")
    # One line per request to the simulator and per scrape would drown everything else.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    stream = path.open("a", encoding="utf-8")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(stream)
    return path


async def _run(local: LocalRun) -> RunReport:
    """The first Ctrl-C stops the traffic and drains the pipeline; a second one (or SIGTERM)
    stops at once."""
    stop, finish = asyncio.Event(), asyncio.Event()
    install_stop_handlers(stop, on_interrupt=lambda: (stop if finish.is_set() else finish).set())
    return await local.run(stop, finish)


def main(*, kafka: str | None = None, duration: float | None = None) -> int:
    """Run until Ctrl-C (or `duration` seconds of traffic); 0 on a clean stop, 1 on a failure."""
    settings = RunSettings()
    kafka = kafka or os.environ.get("GOVSYNC_KAFKA_BOOTSTRAP_SERVERS") or None
    duration = duration if duration is not None else settings.duration
    console = Console()
    live_view = settings.live if settings.live is not None else console.is_terminal
    log_path = _log_to_file(settings)
    last_line = [0.0]
    shown_endpoints = [False]

    def plain(state: ViewState) -> None:
        if not shown_endpoints[0]:
            shown_endpoints[0] = True
            for line in endpoint_lines(state.endpoints):
                console.print(line, highlight=False, soft_wrap=True)
        now = time.monotonic()
        # The final state is printed once by `print_final`.
        if now - last_line[0] >= settings.refresh_seconds and state.phase != "stopped":
            last_line[0] = now
            console.print(summary_line(state), highlight=False, soft_wrap=True)

    console.print(
        f"govsync run: logs in {log_path}; Ctrl-C drains and stops, twice stops at once",
        highlight=False,
        soft_wrap=True,
    )
    try:
        if live_view:
            with Live(console=console, auto_refresh=False, transient=True) as live:
                local = LocalRun(
                    settings,
                    kafka=kafka,
                    duration=duration,
                    refresh=lambda state: live.update(render(state), refresh=True),
                    log_file=str(log_path),
                )
                report = run_async(_run(local))
        else:
            local = LocalRun(
                settings, kafka=kafka, duration=duration, refresh=plain, log_file=str(log_path)
            )
            report = run_async(_run(local))
    except KeyboardInterrupt:
        # A Ctrl-C before the handlers were installed (during the broker's start).
        console.print("govsync run: interrupted", highlight=False)
        return 0
    except Exception as exc:
        log.error("local run failed", error=type(exc).__name__, exc_info=exc)
        console.print(
            f"govsync run failed: {type(exc).__name__}: {exc} (details in {log_path})",
            highlight=False,
            soft_wrap=True,
        )
        return 1
    if local.state is not None:
        print_final(console, local.state, live=live_view)
    if report.agree:
        verdict = "metrics and generator agree"
    elif report.drained:
        verdict = f"metrics and generator DIFFER in {len(report.differences)} counts"
    else:
        verdict = "stopped without draining: the last counts were still in flight"
    console.print(
        f"govsync run: stopped after {report.elapsed:.0f}s; {verdict};"
        f" the portal holds {report.portal_dossiers} dossiers",
        highlight=False,
        soft_wrap=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
