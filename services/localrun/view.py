"""What `govsync run` shows: a live `rich` view on a terminal, a plain summary line elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from services.localrun.readings import (
    INDICATORS,
    TARGETS,
    Rate,
    Snapshot,
    differences,
    rates,
    total,
)
from services.localrun.traffic.truth import AgencyTally, GroundTruth, Outcome


@dataclass(frozen=True, slots=True)
class Endpoints:
    broker: str
    ingest: str
    sync: dict[str, str]
    simulator: str
    log_file: str | None = None
    intakes: tuple[str, ...] = ()
    """Where a vendor's own client sends its first events, with the run's credentials."""


@dataclass(slots=True)
class ViewState:
    """Everything one frame shows; the pipeline updates it, the renderers only read it."""

    endpoints: Endpoints
    truth: GroundTruth
    snapshot: Snapshot = field(default_factory=Snapshot)
    elapsed: float = 0.0
    phase: str = "starting"
    """starting, running, draining, stopping or stopped."""


def _pct(rate: Rate) -> str:
    value = rate.value
    return "—" if value is None else f"{value * 100:5.1f}%"


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}s"


def _flow(state: ViewState) -> Table:
    snap, truth = state.snapshot, state.truth
    table = Table(title="Flow", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("")
    table.add_column("from metrics", justify="right")
    table.add_column("generator sent", justify="right")
    table.add_row("events in", f"{snap.consumed:,}", f"{truth.sent:,}")
    for outcome in Outcome:
        measured, sent = snap.outcomes[outcome.value], truth.outcomes[outcome]
        style = "green" if measured == sent else "yellow"
        table.add_row(
            f"  {outcome.value.replace('_', '-')}",
            Text(f"{measured:,}", style=style),
            f"{sent:,}",
        )
    if truth.edocument_sent or snap.edocuments_consumed:
        measured_docs = snap.edocuments_consumed
        table.add_row(
            "e-documents in (edXML)",
            Text(
                f"{measured_docs:,}",
                style="green" if measured_docs == truth.edocument_sent else "yellow",
            ),
            f"{truth.edocument_sent:,}",
        )
        dup_measured = snap.edocument_outcomes[Outcome.DUPLICATE.value]
        dup_sent = truth.edocument_outcomes[Outcome.DUPLICATE]
        table.add_row(
            "  of which duplicate",
            Text(f"{dup_measured:,}", style="green" if dup_measured == dup_sent else "yellow"),
            f"{dup_sent:,}",
        )
    for target in TARGETS:
        table.add_row(
            f"acknowledged by {target}",
            f"{snap.acknowledged(target):,}",
            f"{snap.accepted:,} records",
        )
    backlog = " / ".join(f"{snap.backlog[t]:,}" for t in TARGETS)
    table.add_row("backlog portal / ndxp", backlog, "")
    for target in TARGETS:
        table.add_row(
            f"latency p50 / p90 / p99 {target}",
            " / ".join(_seconds(snap.quantile(target, q)) for q in (0.5, 0.9, 0.99)),
            "",
        )
    return table


def shown_agencies(state: ViewState) -> list[str]:
    """Agencies with a rate on either side, or whose counts disagree; agencies outside the run
    that only sent documents in (no rate of their own) are left out while they agree."""
    found = []
    for agency in sorted(set(state.snapshot.agencies) | set(state.truth.agencies)):
        measured = state.snapshot.agencies.get(agency, AgencyTally())
        true = state.truth.agencies.get(agency, AgencyTally())
        has_rate = any(
            r.value is not None for r in (*rates(measured).values(), *rates(true).values())
        )
        if has_rate or measured != true:
            found.append(agency)
    return found


def _rates(state: ViewState) -> Table:
    table = Table(
        title="Scored rates per agency: from the metrics, and from the generator's tally",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("agency", no_wrap=True)
    table.add_column("received", justify="right", no_wrap=True)
    for indicator in INDICATORS:
        table.add_column(indicator.id, justify="right", no_wrap=True)
    agencies = shown_agencies(state)
    rows = [
        (
            a,
            state.snapshot.agencies.get(a, AgencyTally()),
            state.truth.agencies.get(a, AgencyTally()),
        )
        for a in agencies
    ]
    rows.append(("all", total(r[1] for r in rows), total(r[2] for r in rows)))
    for agency, measured, true in rows:
        m, t = rates(measured), rates(true)
        same = [m[i.id] == t[i.id] for i in INDICATORS]
        table.add_row(
            agency,
            f"{measured.received:,}",
            *(
                Text(_pct(m[i.id]), style="green" if ok else "yellow")
                for i, ok in zip(INDICATORS, same, strict=True)
            ),
            style="bold" if agency == "all" else None,
        )
        table.add_row(
            Text("  generator", style="dim"),
            Text(f"{true.received:,}", style="dim"),
            *(Text(_pct(t[i.id]), style="dim") for i in INDICATORS),
            end_section=True,
        )
    names = ", ".join(f"{i.id} {i.name}" for i in INDICATORS)
    table.caption = (
        f"{names}. Green: the counts behind the rate agree. 1.4 counts each received dossier"
        " once the portal has acknowledged it in a received status. sig: of the e-documents an"
        " agency sent, those whose signature chains to the run's trust bundle."
    )
    table.caption_justify = "left"
    return table


def endpoint_lines(e: Endpoints) -> list[str]:
    lines = [
        f"broker              {e.broker}",
        f"ingest metrics      {e.ingest}/metrics",
        *(f"{t + ' metrics':<20}{url}/metrics" for t, url in e.sync.items()),
        f"simulator           {e.simulator}/_sim/stats",
        f"                    {e.simulator}/_sim/portal/dossiers",
        f"                    {e.simulator}/_sim/ndxp/dossiers",
        f"                    {e.simulator}/_sim/calls",
    ]
    lines += [f"{'vendor intakes' if i == 0 else '':<20}{x}" for i, x in enumerate(e.intakes)]
    if e.log_file:
        lines.append(f"logs                {e.log_file}")
    return lines


def _endpoints(state: ViewState) -> Panel:
    lines = endpoint_lines(state.endpoints)
    return Panel("\n".join(lines), title="Where to look", title_align="left", expand=False)


def render(state: ViewState) -> RenderableType:
    agree = not differences(state.snapshot, state.truth)
    verdict = (
        Text("metrics agree with the generator", style="green")
        if agree
        else Text("in flight: metrics catch up with the generator", style="yellow")
    )
    head = Text.assemble(
        ("govsync run", "bold"),
        f"  {state.phase}  {state.elapsed:5.0f}s  ",
        verdict,
        "   Ctrl-C stops at once" if state.phase == "draining" else "   Ctrl-C drains and stops",
    )
    return Group(head, _flow(state), _rates(state), _endpoints(state))


def summary_line(state: ViewState) -> str:
    """One line for logs and pipes: the flow, the latency and whether the counts agree."""
    snap, truth = state.snapshot, state.truth
    outcomes = snap.outcomes
    agree = "yes" if not differences(snap, truth) else "not yet"
    return (
        f"[{state.elapsed:6.1f}s {state.phase}] sent={truth.sent} in={snap.consumed}"
        f" accepted={outcomes['accepted']} duplicate={outcomes['duplicate']}"
        f" stale={outcomes['stale']} dead_lettered={outcomes['dead_lettered']}"
        f" acked portal={snap.acknowledged('portal')} ndxp={snap.acknowledged('ndxp')}"
        f" edocs={snap.edocuments_consumed}/{truth.edocument_sent}"
        f" backlog={sum(snap.backlog.values())}"
        f" p50={_seconds(snap.quantile('portal', 0.5))}"
        f" p99={_seconds(snap.quantile('portal', 0.99))} agree={agree}"
    )


def rates_lines(state: ViewState) -> list[str]:
    """Per agency, each rate from metrics next to the generator's (plain text, final summary)."""
    lines = []
    for agency in shown_agencies(state):
        m = rates(state.snapshot.agencies.get(agency, AgencyTally()))
        t = rates(state.truth.agencies.get(agency, AgencyTally()))
        cells = " ".join(
            f"{i.id}={_pct(m[i.id]).strip()}/{_pct(t[i.id]).strip()}" for i in INDICATORS
        )
        lines.append(f"  {agency}: {cells}  (metrics/generator)")
    return lines


def print_final(console: Console, state: ViewState, *, live: bool) -> None:
    if live:
        console.print(render(state))
        return
    console.print(summary_line(state), highlight=False, soft_wrap=True)
    for line in rates_lines(state):
        console.print(line, highlight=False, soft_wrap=True)
    found = differences(state.snapshot, state.truth)
    for d in found[:20]:
        console.print(
            f"  differs: {d.where}: metrics {d.metrics}, generator {d.truth}",
            highlight=False,
            soft_wrap=True,
        )
