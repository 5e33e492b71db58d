"""The chart rendered once per session with the default values and with the production values."""

from __future__ import annotations

import pytest

from tests.deploy.support import Rendered, production_values, render


@pytest.fixture(scope="session")
def default_render() -> Rendered:
    return render()


@pytest.fixture(scope="session")
def production_render() -> Rendered:
    return render(production_values())


@pytest.fixture(scope="session", params=["default", "production"])
def any_render(
    request: pytest.FixtureRequest, default_render: Rendered, production_render: Rendered
) -> Rendered:
    """Each of the two renderings in turn."""
    return default_render if request.param == "default" else production_render
