"""The trust bundle of the test PKI, shared by the e-document tests."""

from __future__ import annotations

import pytest

from services.ingest.edocuments.trust import TrustBundle
from tests.support.pki import make_pki


@pytest.fixture(scope="module")
def bundle() -> TrustBundle:
    return TrustBundle.from_pem(make_pki().bundle_pem)
