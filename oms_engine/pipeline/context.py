"""The :class:`~oms_engine.PluginContext` the core lends a connector while it works.

Everything a connector does through it (its own state, scheduled tasks,
callbacks) is kept aside until the call returns, and only then taken into the
transaction: a connector that raises half-way leaves no trace, with no
savepoint on the hot path. Plugin state is read for a whole batch at once
where the stage knows the keys (:meth:`PluginStates.preload`) and written with
one upsert per batch when the session drains.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ..clock import Clock
from ..fulfilment.callbacks import Callbacks
from ..storage.db import append, on_drain, restored_on_rollback
from ..storage.driver import execute_many
from ..storage.models import Exchange, PluginState, ScheduledTask

_ABSENT = object()
_KEY = "oms_plugin_states"


def _upsert(insert_: Any) -> Any:
    stmt = insert_(PluginState.__table__).values(namespace=bindparam("namespace"), key=bindparam("key"),
                                                 value=bindparam("value"))
    return stmt.on_conflict_do_update(index_elements=["namespace", "key"], set_={"value": stmt.excluded.value})


# Built once, per dialect: storage/driver.py keeps a statement's compiled form by the statement.
_UPSERTS = {"sqlite": _upsert(sqlite_insert), "postgresql": _upsert(pg_insert)}


class PluginStates:
    """The plugin state of one transaction: what was read, and what is to be written at drain."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.known: dict[tuple[str, str], Any] = {}    # value, or None when there is no row
        self.pending: dict[tuple[str, str], Any] = {}

    def preload(self, keys: Any) -> None:
        """Read these (namespace, key) states in a few queries, for the calls about to come."""
        by_namespace: dict[str, list[str]] = {}
        for ns, key in keys:
            if (ns, key) not in self.known:
                self.known[(ns, key)] = None
                by_namespace.setdefault(ns, []).append(key)
        # One namespace at a time: "namespace = ? AND key IN (...)" walks the primary key.
        for ns, names in sorted(by_namespace.items()):
            names.sort()
            for i in range(0, len(names), 500):
                for key, value in self.s.execute(select(PluginState.key, PluginState.value)
                                                 .where(PluginState.namespace == ns,
                                                        PluginState.key.in_(names[i:i + 500]))):
                    self.known[(ns, key)] = value.get("v")

    def get(self, namespace: str, key: str) -> Any:
        k = (namespace, key)
        if k not in self.known:
            row = self.s.execute(select(PluginState.value).where(PluginState.namespace == namespace,
                                                                 PluginState.key == key)).scalar()
            self.known[k] = None if row is None else row.get("v")
        return self.known[k]

    def put(self, namespace: str, key: str, value: Any) -> None:
        self.known[(namespace, key)] = value
        self.pending[(namespace, key)] = value

    def write(self, s: Session) -> None:
        if not self.pending:
            return
        rows = [{"namespace": ns, "key": key, "value": {"v": v}} for (ns, key), v in sorted(self.pending.items())]
        self.pending = {}
        execute_many(s.connection(), _UPSERTS[s.get_bind().dialect.name], rows)

    def snapshot(self) -> Any:
        return dict(self.known), dict(self.pending)

    def restore(self, snap: Any) -> None:
        self.known, self.pending = snap if snap is not None else ({}, {})


def plugin_states(s: Session) -> PluginStates:
    states: PluginStates | None = s.info.get(_KEY)
    if states is None or states.s is not s:
        states = s.info[_KEY] = PluginStates(s)
        on_drain(s, states.write)
        restored_on_rollback(s, _KEY)
    return states


class BufferedContext:
    def __init__(self, s: Session, clock: Clock, callbacks: Callbacks) -> None:
        self.s, self.clock, self.callbacks = s, clock, callbacks
        self._states: dict[tuple[str, str], Any] = {}
        self._tasks: list[dict[str, Any]] = []
        self._callbacks: list[tuple[str, Any]] = []
        # What the message at hand is, for the exchanges a connector records while it handles it.
        self.about: dict[str, Any] = {}

    # -- PluginContext ------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def state_get(self, namespace: str, key: str) -> Any:
        value = self._states.get((namespace, key), _ABSENT)
        if value is not _ABSENT:
            return value
        return plugin_states(self.s).get(namespace, key)

    def state_put(self, namespace: str, key: str, value: Any) -> None:
        self._states[(namespace, key)] = value

    def schedule(self, connector: str, at: datetime, payload: Any, key: str | None = None) -> None:
        self._tasks.append({"connector": connector, "key": key, "due_at": at, "payload": payload, "attempts": 0,
                            "last_error": ""})

    def receive_callback(self, source: str, payload: Any) -> None:
        if source not in self.callbacks.plugins.connectors:
            raise LookupError(f"unknown callback source '{source}'")
        self._callbacks.append((source, payload))

    def record_exchange(self, *, direction: str, kind: str, body: bytes, content_type: str = "",
                        correlation_id: str = "", status: int | None = None, note: str = "") -> None:
        # Written at once, not kept aside: what went over the wire stays on record when the call then fails.
        about = self.about
        append(self.s, Exchange, at=self.clock.now(), direction=str(direction)[:8], kind=str(kind)[:16],
               connector=about.get("connector", ""), warehouse=about.get("warehouse"),
               order_number=about.get("order_number", ""), topic=about.get("topic", ""),
               correlation_id=str(correlation_id)[:128], message_id=about.get("message_id"), status=status,
               content_type=str(content_type)[:100], body=bytes(body), note=str(note)[:4000])

    # -- the core's side ------------------------------------------------------------
    def commit(self) -> None:
        """Write what the call did into the transaction."""
        states = plugin_states(self.s)
        for (namespace, key), value in self._states.items():
            states.put(namespace, key, value)
        for task in self._tasks:
            append(self.s, ScheduledTask, **task)
        for source, payload in self._callbacks:
            self.callbacks.receive(self.s, source, payload, flush=False)
        self.discard()

    def discard(self) -> None:
        self._states, self._tasks, self._callbacks = {}, [], []
