"""Incidents: a fault on a piece of work, and what the OMS did about it.

One row per fault (a plugin that raised, a plan that did not add up), shown
with the order by ``oms order show`` and the admin API, so "why is this order
held?" and "why was this message retried?" have an answer with the plugin's
name and its error.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ..plugin.faults import PluginFault
from ..storage.db import append
from ..storage.models import Incident


def record_incident(s: Session, *, order_id: int | None, stage: str, error: BaseException, action: str,
                    at: datetime) -> None:
    plugin, hook = ("", "core")
    if isinstance(error, PluginFault):
        plugin, hook = error.plugin, error.role
    append(s, Incident, order_id=order_id, stage=stage, plugin=plugin[:200], hook=hook[:64],
           error=str(error)[:4000], action=action[:200], at=at)
