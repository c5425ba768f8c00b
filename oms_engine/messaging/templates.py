"""Message templates rendered in Jinja2's sandbox.

Templates are edited by operations staff, so they must not reach Python:
the sandboxed environment refuses attribute access to internals, and
StrictUndefined turns a misspelt variable into an error at check time rather
than an empty SMS at send time.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import OmsError
from ..money import format_minor


def _money(amount: Any, currency: str = "") -> str:
    # Amounts are integer minor units; anything else is a template mistake, not a value to round.
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise TemplateError(f"money filter needs an integer amount in minor units, got {amount!r}")
    return format_minor(amount, str(currency))


_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)
_env.filters["money"] = _money

# What a template may use, with sample values: `oms rules check` renders every
# template against it, so a misspelt variable is found before an order needs it.
SAMPLE_CONTEXT: dict[str, Any] = {
    "order": {"number": "2611020712345678903", "status": "shipped", "payable": 12900, "currency": "CNY",
              "tracking_no": "SIM0123456789", "carrier": "sim_carrier", "warehouse": "WH-SH", "refund": 0,
              "hold_reason": ""},
    "customer": {"name": "Li Lei", "level": "gold"},
    "transition": {"event": "ship", "from_state": "packed", "to_state": "shipped", "actor": "wms:sim_wms",
                   "customer_visible": True, "label": "Shipped"},
    # An alert to operations (orders/late_steps.py): a step not reached in time.
    "late_step": {"step": "picking", "after": "dispatched", "limit": "24h", "limit_minutes": 1440,
                  "due_at": "2026-11-03T09:00:00", "late_by": "2h 5m", "raised_at": "2026-11-03T11:05:00"},
}


class TemplateProblem(OmsError):
    pass


@lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    return _env.from_string(source)


def _line(exc: BaseException) -> int | None:
    """The template's line an error is at: a syntax error says it; a failure while rendering is found in the
    traceback, where Jinja2 puts the template's own lines."""
    if isinstance(exc, TemplateSyntaxError) and exc.lineno:
        return exc.lineno
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _where(name: str, origin: str, exc: BaseException) -> str:
    line = _line(exc)
    if origin:
        return f"template '{name}' ({origin}{f':{line}' if line else ''})"
    return f"template '{name}'" + (f" (line {line})" if line else "")


def render(source: str, context: Mapping[str, Any], *, name: str = "<template>", origin: str = "") -> str:
    """``origin``: the template's file, which an error names with the line."""
    try:
        return _compiled(source).render(**context).strip()
    except TemplateError as exc:
        raise TemplateProblem(f"{_where(name, origin, exc)}: {exc.message or exc}") from None
    except Exception as exc:  # arithmetic on the order's data (a division by zero...) fails the template too
        raise TemplateProblem(f"{_where(name, origin, exc)}: {type(exc).__name__}: {exc}") from None


def check(source: str, *, name: str, sample: Mapping[str, Any] | None = None, origin: str = "") -> None:
    """Raise TemplateProblem when the template cannot render with the documented context."""
    render(source, sample if sample is not None else SAMPLE_CONTEXT, name=name, origin=origin)
