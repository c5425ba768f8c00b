"""Serving the admin API: waitress, with worker threads and timeouts, answering in JSON even when it refuses.

Why waitress: its event loop reads every request, body included, before a
worker thread sees it, so a client that sends slowly (or stops half-way) holds
a socket, never a thread or the app's lock. Connections with no activity for
``channel_timeout`` seconds are closed, and at most ``connection_limit`` are
open at once. The app itself still serialises the requests that need it
(see ``_OneAtATime`` in :mod:`oms_engine.web.app`).

Waitress answers some requests without asking the app (an unreadable request
line, a body over the limit, headers too large): those answers are JSON too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import ErrorTask
from waitress.utilities import RequestEntityTooLarge

from ..orders.intake import MAX_PAYLOAD_BYTES
from .errors import PROBLEM_JSON, problem_document

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

log = logging.getLogger("oms.api")

DEFAULT_THREADS = 8
DEFAULT_CHANNEL_TIMEOUT = 30
DEFAULT_CONNECTION_LIMIT = 100
# After a stop, requests already being handled get this long to finish and be sent.
STOP_GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.2
# A body a little over the app's limit is read in full and refused by the app (413): answering before the
# body is read makes the sender's write fail with a connection reset, and it never sees why. Far over the
# limit, waitress answers at once.
_BODY_MARGIN = 1 << 20


class _JsonErrorTask(ErrorTask):  # type: ignore[misc]
    """Waitress's own refusals, as problem+json like every other answer of the API."""

    def execute(self) -> None:
        error = self.request.error
        if isinstance(error, RequestEntityTooLarge):
            message = f"the request body is larger than the limit of {MAX_PAYLOAD_BYTES:,} bytes"
        elif error.code >= 500:
            # Waitress puts a traceback here when expose_tracebacks is on; never show one.
            message = "internal server error; the details are in the server log"
        else:
            message = f"{error.reason}: {error.body}"
        body = json.dumps(problem_document(error.code, message)).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", PROBLEM_JSON))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _JsonErrorChannel(HTTPChannel):  # type: ignore[misc]
    error_task_class = _JsonErrorTask


class AdminServer:
    """The admin API on ``host:port`` (port 0: any free port) until :meth:`stop` is called."""

    def __init__(self, app: WSGIApplication, host: str = "127.0.0.1", port: int = 8080, *,
                 threads: int = DEFAULT_THREADS, channel_timeout: int = DEFAULT_CHANNEL_TIMEOUT,
                 connection_limit: int = DEFAULT_CONNECTION_LIMIT) -> None:
        self._map: dict[int, Any] = {}
        self._server = create_server(
            app, map=self._map, host=host, port=port, threads=threads,
            channel_timeout=channel_timeout,
            # Idle connections are looked for every cleanup_interval seconds: often
            # enough that one is closed within about 1.5 x channel_timeout.
            cleanup_interval=max(1, min(30, channel_timeout // 2)),
            connection_limit=connection_limit,
            max_request_body_size=MAX_PAYLOAD_BYTES + _BODY_MARGIN,
            expose_tracebacks=False, ident="oms",
            # poll(): select() cannot watch descriptors past 1024.
            asyncore_use_poll=True)
        # Taken now: the map changes with every connection, in the loop's thread.
        self._listening = [d for d in self._map.values() if isinstance(d, BaseWSGIServer)]
        for listener in self._listening:
            # Read by handle_accept for every new connection: the instance attribute wins.
            listener.channel_class = _JsonErrorChannel
        self._stopping = threading.Event()

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where it listens: (host, port) per socket, with the port the system chose for port 0."""
        return [(str(d.effective_host), int(d.effective_port)) for d in self._listening]

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    def serve_forever(self) -> None:
        """Serve until :meth:`stop`; then let requests in hand finish, and close every socket."""
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=_POLL_SECONDS, map=self._map, use_poll=True, count=1)
        finally:
            self._shut_down()

    def stop(self) -> None:
        """Safe from a signal handler or another thread."""
        self._stopping.set()
        for listener in self._listening:
            # Wakes the loop now rather than at its next poll timeout (closed already: it is stopping anyway).
            with contextlib.suppress(OSError):
                listener.pull_trigger()

    def _shut_down(self) -> None:
        for listener in self._listening:
            # Stop accepting, but keep the listener's trigger: workers use it to wake the loop.
            wasyncore.dispatcher.close(listener)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while time.monotonic() < deadline and any(_busy(c) for c in self._map.values()):
            wasyncore.loop(timeout=0.05, map=self._map, use_poll=True, count=1)
        self._server.task_dispatcher.shutdown(timeout=1)
        wasyncore.close_all(self._map)


def _busy(channel: Any) -> bool:
    """A connection with a request in hand or an answer not yet sent."""
    return isinstance(channel, HTTPChannel) and bool(channel.requests or channel.total_outbufs_len)
