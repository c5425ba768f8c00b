"""Which catalogue SKU a channel's SKU sells: the channel's SKU mappings first, then the plugins.

An operator's mapping (``oms skus map CHANNEL CHANNEL_SKU SKU``, or a file)
wins over a plugin's rule; a SKU no mapping and no plugin names is taken as
it is, and an order whose SKU is then not in the catalogue is held with the
reason until it is mapped.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import Session

from ..storage.driver import fetch
from ..storage.models import SkuMapping

_M = SkuMapping.__table__.c
_ANY = select(exists().where(_M.channel == bindparam("channel")))
_MAPPED = select(_M.channel_sku, _M.sku).where(_M.channel == bindparam("channel"), _M.active.is_(True),
                                              _M.channel_sku.in_(bindparam("skus", expanding=True)))


def mapped_skus(s: Session, channel: str, channel_skus: Iterable[str]) -> dict[str, str]:
    """The active mappings of these channel SKUs: channel SKU -> catalogue SKU."""
    conn = s.connection()
    # Most channels send the catalogue's own SKUs: one probe of the key, and nothing more to read.
    if not fetch(conn, _ANY, {"channel": channel})[0][0]:
        return {}
    wanted = sorted(set(channel_skus))
    out: dict[str, str] = {}
    for i in range(0, len(wanted), 500):
        out.update(fetch(conn, _MAPPED, {"channel": channel, "skus": wanted[i:i + 500]}))
    return out
