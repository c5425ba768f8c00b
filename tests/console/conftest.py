"""The console over a fresh OMS: through Flask's test client (``console``), or served on loopback (``serve``,
tests/support/web.py) for the browser."""

from __future__ import annotations

import pytest

from oms_engine.engine import OMS
from tests.console.support import Console, console_app
from tests.support.web import serve

__all__ = ["console", "console_any", "serve"]


@pytest.fixture
def console(sqlite_oms: OMS) -> Console:
    return Console(console_app(sqlite_oms))


@pytest.fixture
def console_any(oms: OMS) -> Console:
    """The console over SQLite and PostgreSQL."""
    return Console(console_app(oms))
