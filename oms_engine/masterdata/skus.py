"""Which catalogue SKU a channel's SKU sells: the channel's SKU mappings first, then the plugins.

An operator's mapping (``oms skus map CHANNEL CHANNEL_SKU SKU``, or a file)
wins over a plugin's rule; a SKU no mapping and no plugin names is taken as
it is, and an order whose SKU is then not in the catalogue is held with the
reason until it is mapped.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..storage.models import SkuMapping


def mapped_skus(s: Session, channel: str, channel_skus: Iterable[str]) -> dict[str, str]:
    """The active mappings of these channel SKUs: channel SKU -> catalogue SKU."""
    wanted = sorted(set(channel_skus))
    out: dict[str, str] = {}
    for i in range(0, len(wanted), 500):
        for channel_sku, sku in s.execute(select(SkuMapping.channel_sku, SkuMapping.sku).where(
                SkuMapping.channel == channel, SkuMapping.active.is_(True),
                SkuMapping.channel_sku.in_(wanted[i:i + 500]))):
            out[channel_sku] = sku
    return out
