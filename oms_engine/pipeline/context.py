"""The :class:`~oms_engine.PluginContext` the core lends a connector while it works.

Everything a connector does through it (its own state, scheduled tasks,
callbacks) is kept aside until the call returns, and only then written to the
transaction: a connector that raises half-way leaves no trace, with no
savepoint on the hot path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ..clock import Clock
from ..fulfilment.callbacks import Callbacks
from ..storage.db import append
from ..storage.models import PluginState, ScheduledTask

_ABSENT = object()


class BufferedContext:
    def __init__(self, s: Session, clock: Clock, callbacks: Callbacks) -> None:
        self.s, self.clock, self.callbacks = s, clock, callbacks
        self._states: dict[tuple[str, str], Any] = {}
        self._tasks: list[dict[str, Any]] = []
        self._callbacks: list[tuple[str, Any]] = []

    # -- PluginContext ------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def state_get(self, namespace: str, key: str) -> Any:
        value = self._states.get((namespace, key), _ABSENT)
        if value is not _ABSENT:
            return value
        row = self.s.get(PluginState, (namespace, key))
        return None if row is None else row.value.get("v")

    def state_put(self, namespace: str, key: str, value: Any) -> None:
        self._states[(namespace, key)] = value

    def schedule(self, connector: str, at: datetime, payload: Any, key: str | None = None) -> None:
        self._tasks.append({"connector": connector, "key": key, "due_at": at, "payload": payload, "attempts": 0,
                            "last_error": ""})

    def receive_callback(self, source: str, payload: Any) -> None:
        if source not in self.callbacks.plugins.connectors:
            raise LookupError(f"unknown callback source '{source}'")
        self._callbacks.append((source, payload))

    # -- the core's side ------------------------------------------------------------
    def commit(self) -> None:
        """Write what the call did into the transaction."""
        for (namespace, key), value in self._states.items():
            row = self.s.get(PluginState, (namespace, key))
            if row is None:
                self.s.add(PluginState(namespace=namespace, key=key, value={"v": value}))
            else:
                row.value = {"v": value}
        for task in self._tasks:
            append(self.s, ScheduledTask, **task)
        for source, payload in self._callbacks:
            self.callbacks.receive(self.s, source, payload, flush=False)
        self.discard()

    def discard(self) -> None:
        self._states, self._tasks, self._callbacks = {}, [], []
