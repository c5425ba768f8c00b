"""The admin API served on loopback (tests/support/web.py), for webhook deliveries to channel accounts."""

from tests.support.web import serve

__all__ = ["serve"]
