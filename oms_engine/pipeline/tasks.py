"""Tasks: connectors' own timers (a simulated warehouse's next step, a carrier's next scan) that are due.

A task whose connector raises is retried with backoff, its error kept on the
task and recorded as an incident; after :data:`RETRY_LIMIT` attempts it is
given up (an incident says so). Either way the rest of the batch goes on.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from ..clock import Clock
from ..decisions.fact_builder import FactCache
from ..fulfilment.callbacks import Callbacks
from ..orders.incidents import record_incident
from ..plugin.faults import PluginFault, blame
from ..plugin.registry import PluginRegistry
from ..storage.claims import claim_rows
from ..storage.models import ScheduledTask
from .context import BufferedContext, plugin_states
from .stage import StageName, Unit, UnitKind

RETRY_LIMIT = 8


class TasksStage:
    name = StageName.TASKS

    def __init__(self, *, batch_size: int, clock: Clock, plugins: PluginRegistry, callbacks: Callbacks,
                 retry_seconds: int) -> None:
        self.batch_size, self.clock, self.plugins, self.callbacks = batch_size, clock, plugins, callbacks
        self.retry_seconds = retry_seconds
        self.current: Unit | None = None

    def run(self, s: Session, cache: FactCache) -> int:
        now = self.clock.now()
        rows = claim_rows(s, select(ScheduledTask.id, ScheduledTask.connector, ScheduledTask.key,
                                    ScheduledTask.payload, ScheduledTask.attempts)
                          .where(ScheduledTask.due_at <= now)
                          .order_by(ScheduledTask.due_at, ScheduledTask.id), self.batch_size)
        # The state each task names (its key) is read for the whole batch at once.
        plugin_states(s).preload((task.connector, task.key) for task in rows if task.key is not None)
        ctx = BufferedContext(s, self.clock, self.callbacks)
        done: list[int] = []
        for task in rows:
            self.current = Unit(UnitKind.TASK, task.id)
            try:
                connector = self.plugins.connectors.get(task.connector)
                with blame(self.plugins.connectors.plugin_of(task.connector), f"connector '{task.connector}' on_task"):
                    connector.on_task(task.payload, ctx)
            except PluginFault as fault:
                ctx.discard()
                self._failed(s, task.id, task.connector, task.key, task.attempts + 1, fault)
                continue
            ctx.commit()
            done.append(task.id)
        self.current = None
        for i in range(0, len(done), 500):
            s.execute(delete(ScheduledTask).where(ScheduledTask.id.in_(done[i:i + 500])),
                      execution_options={"synchronize_session": False})
        return len(rows)

    def _failed(self, s: Session, task_id: int, connector: str, key: str | None, attempts: int,
                fault: PluginFault) -> None:
        now = self.clock.now()
        what = f"task {task_id} of connector '{connector}'" + (f" for '{key}'" if key else "")
        if attempts >= RETRY_LIMIT:
            s.execute(delete(ScheduledTask).where(ScheduledTask.id == task_id),
                      execution_options={"synchronize_session": False})
            record_incident(s, order_id=None, stage="tasks", error=fault,
                            action=f"{what} given up after {attempts} attempts", at=now)
            return
        retry = now + timedelta(seconds=min(self.retry_seconds * 2 ** (attempts - 1), 86_400))
        s.execute(update(ScheduledTask).where(ScheduledTask.id == task_id)
                  .values(attempts=attempts, last_error=str(fault)[:4000], due_at=retry),
                  execution_options={"synchronize_session": False})
        if attempts == 1:
            record_incident(s, order_id=None, stage="tasks", error=fault,
                            action=f"{what} retried from {retry:%Y-%m-%d %H:%M:%S}", at=now)
