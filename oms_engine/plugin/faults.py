"""Faults contained: a plugin that raises is named, and the OMS deals with the one piece of work.

Every call from the core into plugin code (a strategy, a fact provider, a
connector, a sender, an observer, a rule action, an SKU mapper) runs inside
:func:`blame`, which turns any exception into :class:`PluginFault` carrying
the plugin's name and its role. The pipeline catches PluginFault per order
(or per message, task, callback): the order is held, the message or task
retried, the callback rejected, with the fault recorded and shown by
``oms order show``; the rest of the batch goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import OmsError


class PluginFault(OmsError):
    """A plugin raised while the core called it."""

    def __init__(self, plugin: str, role: str, error: BaseException) -> None:
        self.plugin, self.role, self.error = plugin, role, error
        text = f"{type(error).__name__}: {error}"
        super().__init__(f"plugin '{plugin}' failed in {role}: {text}"[:2000])

    @property
    def short(self) -> str:
        """The reason shown on a held order."""
        return str(self)


@contextmanager
def blame(plugin: str, role: str) -> Iterator[None]:
    try:
        yield
    except PluginFault:
        raise
    except Exception as exc:
        raise PluginFault(plugin, role, exc) from exc
