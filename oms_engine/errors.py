"""The errors the OMS reports to a person: one clear line each, never a traceback.

Every error a command, the CLI or the admin API should show as it is derives
from :class:`OmsError`; anything else is a bug and is logged with its traceback.
"""

from __future__ import annotations


class OmsError(Exception):
    """A refusal or failure with a message meant for the person who caused it."""


class OrderNotFound(OmsError, LookupError):
    """No order has the number asked for."""


class InvoiceNotFound(OmsError, LookupError):
    """No invoice or credit note has the number asked for."""


class CaseNotFound(OmsError, LookupError):
    """No after-sales case has the number asked for."""


class CommandError(OmsError, ValueError):
    """A command on an order that the OMS refuses (wrong amount, already paid...)."""


class DatabaseNotReady(OmsError, RuntimeError):
    """The database cannot be reached or is not at the schema revision this code needs."""
