"""The local run's clients of ingest's intakes: part of the traffic goes through them.

`PortalAdapter` is for the portal-compatible intake (`/dvcqg`), `HttpIntake` for `/v1/events`.

It behaves like the existing portal adapters of DOMAIN.md §1: log in with the run's account,
then one `{session, madonvi, service, isUpdating, data}` call per change, DongBoHoSoMC before
the CapNhatTienDoHoSoMC steps that follow it, waiting for each answer so a dossier's order
holds. A session the intake no longer takes (`error_code` -2) is renewed once and the call
sent again. A call the generator broke on purpose must be refused; any other refusal is
logged and counted, since the ground truth then expects an event that never arrived.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import orjson

from services.common.logging import get_logger
from services.localrun.traffic.generator import SourceEvent

log = get_logger(__name__)

SESSION_REFUSED = -2


def _ok(answer: object) -> bool:
    return isinstance(answer, dict) and str(answer.get("error_code")).strip() == "0"


@dataclass(slots=True)
class AdapterTally:
    """What the adapter saw: calls answered 0, refused as planned, refused unexpectedly."""

    accepted: int = 0
    refused: int = 0
    unexpected: int = 0


class PortalAdapter:
    """Calls `{base_url}/api/auth/login` and `{base_url}/api/integration` (base: `.../dvcqg`)."""

    def __init__(
        self, client: httpx.AsyncClient, base_url: str, *, username: str, password: str
    ) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._session: str | None = None
        self.tally = AdapterTally()

    async def _login(self) -> str:
        response = await self._client.post(
            f"{self._base}/api/auth/login",
            json={"username": self._username, "password": self._password},
        )
        answer = response.json()
        if not _ok(answer) or not isinstance(answer.get("session"), str):
            raise RuntimeError(f"the run's account cannot log in: {answer.get('message')}")
        self._session = str(answer["session"])
        return self._session

    async def _post(self, body: bytes) -> tuple[int, object]:
        response = await self._client.post(
            f"{self._base}/api/integration",
            content=body,
            headers={"content-type": "application/json"},
        )
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    def _body(self, event: SourceEvent, session: str) -> bytes:
        if event.madonvi is None:
            return event.value  # a body broken on purpose: not JSON at all
        # The first header of a dossier creates it (its first revision); the rest update.
        updating = event.service != "DongBoHoSoMC" or event.sequence > 1
        envelope = {
            "session": session,
            "madonvi": event.madonvi,
            "service": event.service,
            "isUpdating": "True" if updating else "False",
            "data": [orjson.Fragment(event.value)],
        }
        return orjson.dumps(envelope)

    async def send(self, event: SourceEvent) -> None:
        """One call, answered before the next is sent."""
        session = self._session or await self._login()
        status, answer = await self._post(self._body(event, session))
        if isinstance(answer, dict) and answer.get("error_code") == SESSION_REFUSED:
            status, answer = await self._post(self._body(event, await self._login()))
        accepted = status == 200 and _ok(answer)
        if event.refused and not accepted:
            self.tally.refused += 1
            return
        if accepted and not event.refused:
            self.tally.accepted += 1
            return
        self.tally.unexpected += 1
        message = answer.get("message") if isinstance(answer, dict) else None
        log.warning(
            "portal-compatible intake answered unexpectedly",
            service=event.service,
            status=status,
            planned_refusal=event.refused,
            answer=str(message)[:300] if message else None,
        )


class HttpIntake:
    """Posts structured CloudEvents to ingest's `/v1/events` with the run's API key, one at a
    time per dossier; 202 means ingest's worker will decide it like a Kafka record."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, *, api_key: str) -> None:
        self._client = client
        self._url = f"{base_url.rstrip('/')}/v1/events"
        self._headers = {"X-API-Key": api_key, "content-type": "application/cloudevents+json"}
        self.tally = AdapterTally()

    async def send(self, event: SourceEvent) -> None:
        response = await self._client.post(self._url, content=event.value, headers=self._headers)
        accepted = response.status_code == 202
        if accepted != event.refused:
            self.tally.refused += event.refused
            self.tally.accepted += accepted
            return
        self.tally.unexpected += 1
        log.warning(
            "HTTP intake answered unexpectedly",
            status=response.status_code,
            planned_refusal=event.refused,
            answer=response.text[:300],
        )
