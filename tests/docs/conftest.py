"""The admin API served on loopback, for the docs' request examples (tests/support/web.py)."""

from tests.support.web import api, serve

__all__ = ["api", "serve"]
