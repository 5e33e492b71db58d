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
from services.localrun.traffic import official
from services.localrun.traffic.truth import ENTRIES, AgencyTally, GroundTruth, Outcome


@dataclass(frozen=True, slots=True)
class Endpoints:
    broker: str
    ingest: str
    sync: dict[str, str]
    simulator: str
    log_file: str | None = None
    scores: str | None = None
    """The scores service: its pages (`/`), its API (`/v1/scores`) and `/metrics`."""
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
    period: str | None = None
    """The period of the official scores shown (the smallest holding all the traffic)."""


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


def _entries(state: ViewState) -> Table:
    snap, truth = state.snapshot, state.truth
    table = Table(
        title="Events per entry point: consumed by ingest (metrics) / sent by the generator",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("entry")
    for outcome in Outcome:
        table.add_column(outcome.value.replace("_", "-"), justify="right")
    table.add_column("refused at intake", justify="right")
    for entry in ENTRIES:
        cells = []
        for outcome in Outcome:
            a, b = snap.entries[entry][outcome.value], truth.entry_outcomes[entry][outcome]
            cells.append(Text(f"{a:,} / {b:,}", style="green" if a == b else "yellow"))
        a, b = snap.intake_refused[entry], truth.refused[entry]
        cells.append(Text(f"{a:,} / {b:,}", style="green" if a == b else "yellow"))
        table.add_row(entry, *cells)
    return table


def _scores(state: ViewState) -> Table | None:
    """The shown period's points per agency from the scores service beside the truth's."""
    period = state.period
    cards = state.snapshot.scorecards.get(period) if period else None
    if period is None or cards is None:
        return None
    asked, _ = state.snapshot.scores_read[period]
    truth = official.scorecards(state.truth, official.span(period), asked)
    table = Table(
        title=(
            f"Official scores for {period} (the period all the run's traffic falls in): points"
            " from the scores service (/v1/scores) / from the generator's plans"
        ),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("agency", no_wrap=True)
    table.add_column("points", justify="right", no_wrap=True)
    for indicator in official.SCORED:
        table.add_column(indicator, justify="right", no_wrap=True)
    for agency in sorted(set(cards) | set(truth)):
        card, true = cards.get(agency), truth.get(agency, official.Card())
        points = card.points if card else 0.0
        row: list[Text] = [
            Text(
                f"{points:.2f} / {true.total:.2f}",
                style="green" if abs(points - true.total) < 1e-6 else "yellow",
            )
        ]
        for indicator in official.SCORED:
            got = card.counts.get(indicator, (0, 0)) if card else (0, 0)
            want = (true.counts[indicator].numerator, true.counts[indicator].denominator)
            row.append(Text(f"{got[0]}/{got[1]}", style="green" if got == want else "yellow"))
        table.add_row(agency, *row)
    table.caption = (
        "Indicators as numerator/denominator from the scores service (green: equal to the"
        " generator's). 2.1 judges unfinished dossiers now. Every month of the run's traffic is"
        " compared too at the end."
    )
    table.caption_justify = "left"
    return table


def score_lines(state: ViewState) -> list[str]:
    """Per agency and period read, points from the scores service and from the truth."""
    lines = []
    for period, cards in state.snapshot.scorecards.items():
        asked, _ = state.snapshot.scores_read[period]
        truth = official.scorecards(state.truth, official.span(period), asked)
        for agency in sorted(set(cards) | set(truth)):
            card, true = cards.get(agency), truth.get(agency, official.Card())
            got = {i: card.counts.get(i, (0, 0)) if card else (0, 0) for i in official.SCORED}
            cells = " ".join(
                f"{i}={got[i][0]}/{got[i][1]}"
                f"|{true.counts[i].numerator}/{true.counts[i].denominator}"
                for i in official.SCORED
            )
            points = card.points if card else 0.0
            lines.append(
                f"  scores {period} {agency}: points {points:.2f} (truth {true.total:.2f})"
                f"  {cells}  (scores|truth)"
            )
    return lines


def entry_lines(state: ViewState) -> list[str]:
    snap, truth = state.snapshot, state.truth
    return [
        f"  entry {entry}: consumed {sum(snap.entries[entry].values())}"
        f" (sent to the topic {sum(truth.entry_outcomes[entry].values())}),"
        f" refused at intake {snap.intake_refused[entry]} (sent broken {truth.refused[entry]})"
        for entry in ENTRIES
    ]


def endpoint_lines(e: Endpoints) -> list[str]:
    lines = [
        f"broker              {e.broker}",
        f"ingest metrics      {e.ingest}/metrics",
        *(f"{t + ' metrics':<20}{url}/metrics" for t, url in e.sync.items()),
        *([f"scores              {e.scores}/  (API {e.scores}/v1/scores)"] if e.scores else []),
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
    parts: list[RenderableType] = [head, _flow(state), _entries(state), _rates(state)]
    scores = _scores(state)
    if scores is not None:
        parts.append(scores)
    return Group(*parts, _endpoints(state))


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
    for line in [*rates_lines(state), *entry_lines(state), *score_lines(state)]:
        console.print(line, highlight=False, soft_wrap=True)
    found = differences(state.snapshot, state.truth)
    for d in found[:20]:
        console.print(
            f"  differs: {d.where}: metrics {d.metrics}, generator {d.truth}",
            highlight=False,
            soft_wrap=True,
        )
