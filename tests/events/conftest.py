"""Fixtures of the event tests: a queue of the test's own on the real broker, and a proxy in front of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .support import Broker, Proxy, proxy_to_broker


@pytest.fixture
def broker() -> Iterator[Broker]:
    """An exchange and a queue bound to all of it (``broker.queue``), deleted afterwards."""
    b = Broker()
    b.bind()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    """A proxy to the broker on a port of its own, not started: the broker is unreachable through it until
    ``proxy.start()``."""
    with proxy_to_broker() as p:
        yield p
