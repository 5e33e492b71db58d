"""The PAR staff's pages in a real browser: headless Chromium (Debian's `chromium`) loads them
from the running service and the test reads what a person would see.

`GOVSYNC_UPDATE_SCREENSHOT=1` also writes the scorecard's screenshot to docs/scores.png.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from lxml import html
from prometheus_client import CollectorRegistry

from services.common.httpapp import serve
from services.scores import pages
from services.scores.api import create_app
from services.scores.changes import AckChange, Batch, DossierChange
from services.scores.crosswalk import parse_crosswalk
from services.scores.database import make_engine, migrate
from services.scores.scoreboard import Scoreboard
from services.scores.store import ScoreStore
from tests.support.scores_cases import AGENCY, NOVEMBER, NOW_AFTER

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
DOCS = Path(__file__).resolve().parents[3] / "docs"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def scoreboard(tmp_path: Path) -> Iterator[Scoreboard]:
    engine = make_engine(f"sqlite:///{tmp_path / 'scores.sqlite3'}")
    migrate(engine)
    store = ScoreStore(engine)
    store.prepare()
    store.apply(
        Batch(
            dossiers=[DossierChange(c.code, 1, c.facts) for c in NOVEMBER],
            acks=[AckChange(c.code, 1, c.portal_holds) for c in NOVEMBER],
        )
    )
    yield Scoreboard(store, parse_crosswalk(""), clock=lambda: NOW_AFTER)
    engine.dispose()


@pytest.fixture
async def base_url(scoreboard: Scoreboard) -> AsyncIterator[str]:
    async def ready() -> dict[str, bool]:
        return {"database": True}

    app = create_app(scoreboard, registry=CollectorRegistry(), readiness=ready)
    app.include_router(pages.router(scoreboard))
    port = _free_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, host="127.0.0.1", port=port, stop=stop))
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client, asyncio.timeout(20):
        while True:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    break
            await asyncio.sleep(0.1)
    yield url
    stop.set()
    await task


async def _chromium(tmp_path: Path, *args: str) -> bytes:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1280,1800",
        *args,
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    async with asyncio.timeout(90):
        out, _ = await process.communicate()
    assert process.returncode == 0, f"chromium exited {process.returncode}"
    return out


def _texts(tree: html.HtmlElement, xpath: str) -> list[str]:
    return [" ".join(e.text_content().split()) for e in tree.xpath(xpath)]


async def test_scorecard_as_a_person_sees_it(base_url: str, tmp_path: Path) -> None:
    url = f"{base_url}/scores/{AGENCY}?period=2026-11"
    dom = html.fromstring(await _chromium(tmp_path, "--dump-dom", url))
    assert _texts(dom, "//h1")[0].startswith(f"{AGENCY} — Tháng 11/2026")
    assert "Chính thức" in _texts(dom, "//h1")[0]
    # 2.4 + 10.909 + 3.0 + 0.8 + 0.25 + 0 + 0.2 = 17.56 of 44 (tests/support/scores_cases.py)
    assert _texts(dom, "//*[@id='total']") == ["Tổng điểm: 17,56 / 44"]
    rows = {
        cells[0]: cells
        for cells in (
            _texts(row, "./td")
            for row in dom.xpath("//table[@id='scorecard']//tr[@data-indicator]")
        )
    }
    assert rows["2.1"][1] == "Tỷ lệ hồ sơ xử lý trước hạn, đúng hạn"
    assert rows["2.1"][2:5] == ["6 / 11", "54,55%", "10,91 / 20"]
    assert rows["2.1"][6] == "5 hồ sơ"  # the dossiers that cost points, linked
    assert rows["1.4"][2:5] == ["4 / 10", "40,00%", "2,40 / 6"]
    assert rows["3.3"][2:5] == ["3 / 10", "12,00%", "—"]
    assert rows["4.3"][5] == "Điểm tối đa từ 80%"
    assert rows["2.2"][2:4] == ["6 hồ sơ", "5,51 ngày"]
    groups = _texts(dom, "//table[@id='scorecard']//tr[@class='group']")
    assert groups[:2] == ["Công khai, minh bạch", "Tiến độ, kết quả giải quyết"]
    trend = [
        cells[0]
        for cells in (_texts(r, "./td") for r in dom.xpath("//table[@id='trend']/tbody/tr"))
    ]
    assert trend == [f"2026-{m:02d}" for m in range(1, 13)]
    shot = tmp_path / "scores.png"
    await _chromium(tmp_path, f"--screenshot={shot}", url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000
    if os.environ.get("GOVSYNC_UPDATE_SCREENSHOT"):
        shutil.copyfile(shot, DOCS / "scores.png")


async def test_dossiers_that_cost_points_and_their_downloads(base_url: str, tmp_path: Path) -> None:
    dom = html.fromstring(
        await _chromium(tmp_path, "--dump-dom", f"{base_url}/scores/{AGENCY}/2026-11/2.1")
    )
    assert _texts(dom, "//*[@id='heading']") == ["Hồ sơ làm mất điểm: 5"]
    rows = [_texts(r, "./td") for r in dom.xpath("//table[@id='dossiers']/tbody/tr")]
    # Those that ended in November, by their end (D8 6 Nov 09:00, D3 6 Nov 10:00, D10 13 Nov,
    # D2 14 Nov), then those still open at its end.
    assert [(r[0], r[-1]) for r in rows] == [
        ("D8", "Yêu cầu bổ sung từ 2 lần trở lên (tính quá hạn)"),
        ("D3", "Giải quyết quá hạn"),
        ("D10", "Không có ngày hẹn trả và thời hạn giải quyết"),
        ("D2", "Giải quyết quá hạn"),
        ("D6", "Đang giải quyết, đã quá hạn"),
    ]
    assert rows[3][4] == "05/11/2026 08:00"  # D2's reception, local time
    links = {a.text_content().strip(): a.get("href") for a in dom.xpath("//a[@class='button']")}
    async with httpx.AsyncClient(base_url=base_url) as client:
        csv = await client.get(links["Tải CSV"])
        xlsx = await client.get(links["Tải Excel"])
    assert csv.status_code == 200
    assert len(csv.content.decode("utf-8-sig").splitlines()) == 6
    assert xlsx.content[:2] == b"PK"  # a zip: the workbook


async def test_every_agency_on_the_front_page(base_url: str, tmp_path: Path) -> None:
    dom = html.fromstring(await _chromium(tmp_path, "--dump-dom", f"{base_url}/?period=2026-11"))
    rows = [_texts(r, "./td") for r in dom.xpath("//table[@id='agencies']/tbody/tr")]
    assert rows == [[AGENCY, "17,56", "44", "10", "Chính thức"]]
