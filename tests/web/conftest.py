"""The admin API served on loopback (tests/support/web.py)."""

from tests.support.web import api, api_any, serve

__all__ = ["api", "api_any", "serve"]
