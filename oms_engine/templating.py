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

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .money import format_minor

_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, trim_blocks=True)
_env.filters["money"] = lambda amount, currency="": format_minor(int(amount), str(currency))


class TemplateProblem(Exception):
    pass


@lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    return _env.from_string(source)


def render(source: str, context: Mapping[str, Any], *, name: str = "<template>") -> str:
    try:
        return _compiled(source).render(**context).strip()
    except TemplateError as exc:
        raise TemplateProblem(f"template '{name}': {exc}") from None


def check(source: str, sample: Mapping[str, Any], *, name: str) -> None:
    render(source, sample, name=name)
